"""Random keys of stochastic estimators: the learners hand a fresh key to every ``init`` and
``step``, independent across environments, episodes, steps and seeds, reproducible from the
run's seed; deterministic estimators receive none."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _rtrrl_reference import Toy, ctrnn, jit_init, jit_step, make_rtrrl

from rtrrl import fit_sequence
from rtrrl.cells import CTRNN
from rtrrl.estimators import AbstractGradientEstimator, LocalMSE


class NoisyState(eqx.Module):
    previous: jax.Array
    x: jax.Array
    drawn_at_init: jax.Array  # a normal number drawn by `init`
    drawn_at_step: jax.Array  # a normal number drawn by the latest `step`


class NoisyOneStep(AbstractGradientEstimator):
    """The immediate-influence gradient (as LocalMSE) plus a record of its random draws."""

    stochastic = True

    def init(self, cell, hidden, x, *, key=None):
        assert key is not None, "a stochastic estimator must receive a key"
        draw = jax.random.normal(key, (), hidden.dtype)
        return NoisyState(hidden, x, draw, jnp.zeros((), hidden.dtype))

    def step(self, cell, hidden, x, state, *, key=None):
        assert key is not None, "a stochastic estimator must receive a key"
        draw = jax.random.normal(key, (), hidden.dtype)
        return cell(hidden, x), NoisyState(hidden, x, state.drawn_at_init, draw)

    def gradient(self, cell, state, cotangent):
        local = LocalMSE()
        fresh = local.init(cell, state.previous, state.x)
        _, after = local.step(cell, state.previous, state.x, fresh)
        return local.gradient(cell, after, cotangent)


def _draws(seed: int, num_envs: int = 3, num_steps: int = 12, end_at: int = 4):
    """Per step, the (init, step) draws of every environment of one RTRRL run."""
    env = Toy(end_at=end_at)
    alg = make_rtrrl(ctrnn(env), estimator=NoisyOneStep())
    state = jit_init(alg, env, jax.random.key(seed), num_envs)
    key = jax.random.key(1000 + seed)
    at_init, at_step = [], []
    for _ in range(num_steps):
        key, step_key = jax.random.split(key)
        state, _ = jit_step(alg, state, env, step_key)
        at_init.append(np.asarray(state.envs.estimator.drawn_at_init))
        at_step.append(np.asarray(state.envs.estimator.drawn_at_step))
    return np.stack(at_init), np.stack(at_step)  # (steps, envs) each


def test_rtrrl_gives_a_stochastic_estimator_fresh_keys_everywhere():
    at_init, at_step = _draws(seed=0)
    # Every (step, environment) draws a different number at `step`.
    assert len(np.unique(at_step)) == at_step.size
    # `init` runs at each episode start (every 4 steps here): each episode of each
    # environment draws anew, and the draw is kept for the rest of the episode.
    episodes = at_init[::4]
    assert len(np.unique(episodes)) == episodes.size
    assert np.array_equal(at_init[1:4], np.broadcast_to(at_init[0], at_init[1:4].shape))
    # Draws look standard normal (not a constant or a tiny range).
    assert 0.3 < np.std(at_step) < 3.0


def test_stochastic_draws_repeat_with_the_seed_and_change_with_it():
    first, again, other = _draws(seed=0), _draws(seed=0), _draws(seed=1)
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.intersect1d(first[1], other[1]).size


def test_fit_sequence_needs_a_key_for_a_stochastic_estimator_and_splits_it_per_step():
    cell = CTRNN(1, 3, key=jax.random.key(0))
    inputs = jax.random.normal(jax.random.key(1), (20, 1))
    targets = jnp.roll(inputs, 1, axis=0)

    with pytest.raises(ValueError, match="NoisyOneStep draws random numbers: pass key="):
        fit_sequence(cell, NoisyOneStep(), optax.sgd(0.1), inputs, targets)
    a = fit_sequence(cell, NoisyOneStep(), optax.sgd(0.1), inputs, targets, key=jax.random.key(2))
    b = fit_sequence(cell, NoisyOneStep(), optax.sgd(0.1), inputs, targets, key=jax.random.key(2))
    # Same key, same run; and the immediate-influence gradient learns like LocalMSE's.
    np.testing.assert_array_equal(a.losses, b.losses)
    exact = fit_sequence(cell, LocalMSE(), optax.sgd(0.1), inputs, targets)
    np.testing.assert_allclose(a.losses, exact.losses, rtol=1e-10, atol=1e-12)


def test_a_deterministic_estimator_gets_no_key():
    """An estimator written without a ``key`` parameter still works with the learners."""

    class NoKeys(AbstractGradientEstimator):
        def init(self, cell, hidden, x):
            return LocalMSE().init(cell, hidden, x)

        def step(self, cell, hidden, x, state):
            return LocalMSE().step(cell, hidden, x, state)

        def gradient(self, cell, state, cotangent):
            return LocalMSE().gradient(cell, state, cotangent)

    env = Toy(end_at=3)
    alg = make_rtrrl(ctrnn(env), estimator=NoKeys())
    state = jit_init(alg, env, jax.random.key(0), 2)
    for t in range(5):
        state, metrics = jit_step(alg, state, env, jax.random.key(t))
    assert bool(metrics.all_finite)
    cell = CTRNN(1, 3, key=jax.random.key(0))
    inputs = jnp.ones((5, 1))

    result = fit_sequence(cell, NoKeys(), optax.sgd(0.1), inputs, inputs)
    assert np.all(np.isfinite(result.losses))
