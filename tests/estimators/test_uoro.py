r"""UORO (Tallec & Ollivier 2017) against `jax.grad` of BPTT, in float64.

UORO's gradient is a random estimate whose expectation over the signs ``ν_t`` is exact. Two
checks of that:

- **exact expectation**: the update with the signs given (`uoro_update`) is run for *every*
  sign sequence of a tiny problem (``2^(signs per step · T)`` sequences, 64 here); their mean
  gradient is the expectation, which must equal BPTT to round-off;
- **Monte Carlo through the public `step`** (the signs drawn from the keys): the sample mean
  over many keys lies within a few standard errors of BPTT, and the draws really vary.

Then the interface: constant state structure, a key is required, complex parameters are
refused, and UORO runs inside `RTRRL` (from the CLI name ``uoro``) and `fit_sequence`.
"""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _test_cells import ComplexParams

from rtrrl import fit_sequence
from rtrrl.app.config import TrainConfig, build_algorithm, build_env
from rtrrl.cells import CTRNN, GRU, LRU, LSTM, AbstractCell, Identity, RandomSparse
from rtrrl.estimators import RTRL, UORO, IncompatibleCellError, UOROState
from rtrrl.estimators._uoro import uoro_gradient, uoro_update
from rtrrl.testing import bptt_gradient

T = 3


def make_cell(name: str) -> AbstractCell:
    key = jax.random.key(3)
    if name == "ctrnn":  # 2 signs per step
        cell = CTRNN(2, 2, key=key, tau_range=(1.5, 3.0))
        return eqx.tree_at(lambda c: c.weight, cell, cell.weight.at[:, -1].set(0.3))
    if name == "ctrnn-sparse":
        return CTRNN(2, 3, key=key, tau_range=(1.5, 3.0), wiring=RandomSparse(0.6))
    if name == "lru":  # one complex unit: 2 real signs per step
        return LRU(2, 1, key=key, output_size=2, r_min=0.5)
    if name == "lstm":  # state [h, c] of size 2
        return LSTM(2, 1, key=key)
    return GRU(2, 2, key=key)


def data(cell: AbstractCell, steps: int = T, seed: int = 0):
    kx, kc = jax.random.split(jax.random.key(seed))
    return (
        jax.random.normal(kx, (steps, cell.input_size)),
        jax.random.normal(kc, (steps, cell.feature_size)),
    )


def flat(tree) -> jax.Array:
    return jnp.concatenate([leaf.ravel() for leaf in jax.tree.leaves(tree)])


@eqx.filter_jit
def bptt(cell: AbstractCell, xs, cs) -> jax.Array:
    """The reference, `rtrrl.testing.bptt_gradient` (``jax.grad`` of ``Σ_t c_tᵀ output(h_t)``
    over the unrolled sequence), flattened."""
    return flat(bptt_gradient(cell, cell.init_hidden(), xs, cs))


@eqx.filter_jit
def summed_with_signs(cell: AbstractCell, xs, cs, signs) -> jax.Array:
    """``Σ_t uoro_gradient(state_t, c_t)`` with the signs ``ν_t = signs[t]`` given."""
    hidden = cell.init_hidden()

    def step_fn(carry, step):
        hidden, state = carry
        x, c, nu = step
        hidden, state = uoro_update(cell, hidden, x, state, nu)
        return (hidden, state), flat(uoro_gradient(cell, state, c))

    state = UORO().init(cell, hidden, xs[0])
    return jax.lax.scan(step_fn, (hidden, state), (xs, cs, signs))[1].sum(0)


@eqx.filter_jit
def summed_with_keys(estimator, cell: AbstractCell, xs, cs, keys) -> jax.Array:
    """``Σ_t estimator.gradient(state_t, c_t)`` through the public API, one key per step."""
    hidden = cell.init_hidden()

    def step_fn(carry, step):
        hidden, state = carry
        x, c, key = step
        hidden, state = estimator.step(cell, hidden, x, state, key=key)
        return (hidden, state), flat(estimator.gradient(cell, state, c))

    state = estimator.init(cell, hidden, xs[0], key=keys[0])
    return jax.lax.scan(step_fn, (hidden, state), (xs, cs, keys[1:]))[1].sum(0)


def all_sign_sequences(hidden: jax.Array, steps: int) -> jax.Array:
    """Every sequence of ``steps`` sign vectors shaped and typed like `hidden`."""
    n = hidden.shape[0] * (2 if jnp.iscomplexobj(hidden) else 1)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=steps * n)))
    signs = jnp.asarray(signs.reshape(-1, steps, n))
    if jnp.iscomplexobj(hidden):
        half = hidden.shape[0]
        return jax.lax.complex(signs[..., :half], signs[..., half:])
    return signs


@pytest.mark.parametrize("cell_name", ["ctrnn", "lru", "lstm", "gru"])
def test_average_over_every_sign_sequence_equals_bptt(cell_name):
    cell = make_cell(cell_name)
    xs, cs = data(cell)
    signs = all_sign_sequences(cell.init_hidden(), T)
    assert signs.shape[0] == 2 ** (2 * T)
    grads = jax.vmap(lambda s: summed_with_signs(cell, xs, cs, s))(signs)
    expected = bptt(cell, xs, cs)
    scale = float(jnp.max(jnp.abs(expected)))
    np.testing.assert_allclose(grads.mean(0), expected, rtol=1e-10, atol=1e-10 * scale)
    # ... while single sign sequences really are noisy estimates.
    assert float(jnp.max(jnp.abs(grads - expected))) > 1e-2 * scale
    # RTRL (the exact online form) agrees with the same reference.
    exact = summed_with_keys(RTRL(), cell, xs, cs, jax.random.split(jax.random.key(0), T + 1))
    np.testing.assert_allclose(exact, expected, rtol=1e-10, atol=1e-10 * scale)


@pytest.mark.parametrize("cell_name", ["ctrnn-sparse", "lru"])
def test_monte_carlo_mean_through_step_is_within_a_few_standard_errors(cell_name):
    cell, draws, steps = make_cell(cell_name), 4000, 4
    xs, cs = data(cell, steps, seed=1)
    keys = jax.random.split(jax.random.key(5), (draws, steps + 1))
    grads = jax.vmap(lambda k: summed_with_keys(UORO(), cell, xs, cs, k))(keys)
    expected = bptt(cell, xs, cs)
    mean, stderr = grads.mean(0), grads.std(0) / draws**0.5
    # Entries that a wiring mask removes are exactly zero in every draw.
    assert bool(jnp.all(jnp.where(expected == 0.0, grads == 0.0, True)))
    # Entries with no estimated part (the LRU's readout C) have no noise, up to round-off.
    noisy = stderr > 1e-9 * float(jnp.max(jnp.abs(expected)))
    assert int(noisy.sum()) > 0.5 * expected.size
    z = jnp.abs(mean - expected)[noisy] / stderr[noisy]
    assert float(jnp.max(z)) < 5.0, float(jnp.max(z))
    np.testing.assert_allclose(mean[~noisy], expected[~noisy], rtol=1e-10, atol=1e-12)


def test_step_needs_a_key_and_different_keys_give_different_estimates():
    cell = make_cell("ctrnn")
    xs, cs = data(cell)
    hidden = cell.init_hidden()
    state = UORO().init(cell, hidden, xs[0])  # init draws nothing: no key needed
    with pytest.raises(ValueError, match=r"UORO\.step draws random signs: pass key="):
        UORO().step(cell, hidden, xs[0], state)
    a = summed_with_keys(UORO(), cell, xs, cs, jax.random.split(jax.random.key(1), T + 1))
    b = summed_with_keys(UORO(), cell, xs, cs, jax.random.split(jax.random.key(2), T + 1))
    again = summed_with_keys(UORO(), cell, xs, cs, jax.random.split(jax.random.key(1), T + 1))
    np.testing.assert_array_equal(a, again)
    assert float(jnp.max(jnp.abs(a - b))) > 1e-6


@pytest.mark.parametrize("cell_name", ["ctrnn-sparse", "lru", "lstm", "identity"])
def test_state_keeps_its_structure_shapes_and_dtypes(cell_name):
    cell = Identity(2) if cell_name == "identity" else make_cell(cell_name)
    xs, cs = data(cell)
    hidden, key = cell.init_hidden(), jax.random.key(0)

    @eqx.filter_jit
    def fresh_and_stepped(cell):
        fresh = UORO().init(cell, hidden, xs[0], key=key)
        _, stepped = UORO().step(cell, hidden, xs[0], fresh, key=key)
        return fresh, stepped, UORO().gradient(cell, stepped, cs[0])

    fresh, stepped, grads = fresh_and_stepped(cell)
    assert type(fresh) is UOROState
    assert jax.tree.structure(fresh) == jax.tree.structure(stepped)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), fresh) == jax.tree.map(
        lambda a: (a.shape, a.dtype), stepped
    )
    params = eqx.filter(cell, eqx.is_inexact_array)
    assert jax.tree.structure(fresh.theta_tilde) == jax.tree.structure(params)
    assert fresh.h_tilde.shape == hidden.shape and fresh.h_tilde.dtype == hidden.dtype
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_complex_parameters_are_refused_naming_both(without_runtime_type_checks):
    cell = ComplexParams(jnp.ones((1,), jnp.complex128))
    with pytest.raises(IncompatibleCellError, match=r"UORO cannot serve ComplexParams"):
        UORO().init(cell, cell.init_hidden(), jnp.zeros(1))


@pytest.mark.parametrize("eps", [0.0, -1e-3, 2.0, True])
def test_eps_is_checked(eps, without_runtime_type_checks):
    with pytest.raises(ValueError, match="`eps` must be a number in"):
        UORO(eps=eps)


def test_cli_name_builds_and_one_rtrrl_step_is_finite():
    config = TrainConfig(env="CartPole-v1", estimator="uoro", hidden_size=4)
    env = build_env(config)
    alg = build_algorithm(config, env)(jax.random.key(0))
    assert isinstance(alg.estimator, UORO)
    state = eqx.filter_jit(lambda k: alg.init(k, env, num_envs=2))(jax.random.key(1))
    state, metrics = eqx.filter_jit(lambda s, k: alg.step(s, env, k))(state, jax.random.key(2))
    assert bool(metrics.all_finite)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state.envs.estimator))


def test_fit_sequence_needs_a_key_and_learns_finitely():
    cell = CTRNN(1, 3, key=jax.random.key(0))
    inputs = jax.random.normal(jax.random.key(1), (30, 1))
    targets = jnp.roll(inputs, 1, axis=0)
    with pytest.raises(ValueError, match="pass key="):
        fit_sequence(cell, UORO(), optax.sgd(0.05), inputs, targets)
    run = fit_sequence(cell, UORO(), optax.sgd(0.05), inputs, targets, key=jax.random.key(2))
    again = fit_sequence(cell, UORO(), optax.sgd(0.05), inputs, targets, key=jax.random.key(2))
    assert bool(jnp.all(jnp.isfinite(run.losses)))
    np.testing.assert_array_equal(run.losses, again.losses)
