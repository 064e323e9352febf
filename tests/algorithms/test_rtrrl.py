"""The RTRRL learner against independent references (Lemmel & Grosu 2025, Algorithm 1).

Every reference is recomputed here from recorded inputs, not from the learner's code:

- Traces: with the exact `RTRL()` estimator and an optimiser that does not move the
  parameters, the traces after ``T`` steps of one episode equal
  ``e_C = Σ_k (γλ_C)^{T-k} ∇_{θ_C} v_k``, ``e_A = Σ_k (γλ_A)^{T-k} ∇_{θ_A} log π(a_k)`` and
  ``e_R = Σ_k (γλ_R)^{T-k} ∇_{θ_R} (v_k + η_A log π(a_k))``, by `jax.grad` through the whole
  unrolled hidden trajectory over the recorded inputs (under feedback alignment the fixed
  matrices replace the heads' weights as the cotangents of the features).
- One update: with ``optax.sgd(1.0)`` the parameter change is the batch mean of the ascent
  directions ``δ ∇v``, ``δ ∇ log π + η_H ∇H``, ``δ ∇(v + η_A log π) + η_H ∇H``; with the
  default optimiser it is Adam's first step ``α_group · d / (|d| + ε)``.
- Linear TD(λ) (the `Identity` cell) with `DutchTrace` and SGD: the critic's weights after
  every step are those of the online λ-return algorithm, written here from its definition.
- TD errors ``δ = r - r̄ + γ (1 - terminated) v(h') - v(h)``, with ``h'`` read from the
  pre-reset observation at a time-limit cut; reward scaling by the population variance of
  all discounted returns seen (kept here as a plain list); the average-reward update.
- Episode ends reset the per-environment memory; ablations (frozen cell, no Meta-RL input);
  Gaussian actions are clipped before the environment sees them; `evaluate` against a
  hand-written greedy rollout.

The environment is a tiny deterministic one defined here (known rewards, chosen episode
ends). Float64; every configuration compiles its step once (cached across tests).
"""

import functools
import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _rtrrl_reference import (
    ALPHA_C,
    ATOL,
    BOUND,
    GAMMA,
    HIDDEN,
    LAMBDA_C,
    PLAIN,
    RETURN_EPSILON,
    RTOL,
    SGD_CRITIC,
    TRACE_CASES,
    Toy,
    assert_trees_close,
    categorical,
    ctrnn,
    env_slice,
    gaussian,
    input_size,
    jit_init,
    jit_step,
    leaves,
    lru,
    make_rtrrl,
    meta_input,
    param_change,
    record_episode,
    reference_direction,
    reference_td,
    reference_traces,
)

from rtrrl.agent import LinearDecay, ObservationNormalizer, ReturnRMS, ReturnStd
from rtrrl.algorithms import RTRRL
from rtrrl.algorithms._rtrrl_phases import entropy_over_batch
from rtrrl.cells import Identity
from rtrrl.estimators import RFLO, RTRL, Frozen, LocalMSE
from rtrrl.heads import Backprop, CategoricalActor, Critic, FeedbackAlignment, GaussianActor
from rtrrl.traces import DutchTrace


@pytest.fixture(autouse=True, scope="module")
def _fast_compiles():
    """Tiny programs: XLA's optimisation passes cost more compile time than they save."""
    before = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", before)


@pytest.mark.parametrize("case", list(TRACE_CASES))
def test_traces_equal_unrolled_gradients(case):
    """Exact RTRL, parameters held fixed: ``e_C, e_A, e_R`` after 5 steps are the discounted
    sums of `jax.grad` through the unrolled cell over the recorded inputs and actions."""
    env, cell, feedback, actor = TRACE_CASES[case]()
    alg = make_rtrrl(cell, estimator=RTRL(), feedback=feedback, actor=actor)
    states, inputs, actions = record_episode(alg, env, 5)
    first, last = states[0], states[-1]
    assert_trees_close(last.params, first.params, rtol=0, atol=0, what="params moved")
    (critic, actor, cell), features = reference_traces(
        first.params, first.feedback, inputs, actions
    )
    np.testing.assert_allclose(first.params.cell.output(last.envs.hidden[0]), features, rtol=RTOL)
    traces = jax.tree.map(lambda a: a[0], last.envs.traces)
    assert_trees_close(traces.critic, critic, what="critic trace")
    assert_trees_close(traces.actor, actor, what="actor trace")
    assert_trees_close(traces.cell, cell, what="cell trace")


def test_max_grad_norm_clips_each_step_gradient_before_the_traces():
    """With ``max_grad_norm = C`` each step's gradient ``g_k = (∇v_k, ∇ log π(a_k),
    ∇(v_k + η_A log π(a_k)))`` enters the traces scaled by ``min(1, C / ‖g_k‖)``, one factor for
    all three parts: the traces are the unrolled references with those weights. ``C`` is the
    median of the five norms, so some steps are clipped and some are not."""
    env, cell, feedback, actor = TRACE_CASES["ctrnn"]()
    unclipped = make_rtrrl(cell, estimator=RTRL(), feedback=feedback, actor=actor)
    states, inputs, actions = record_episode(unclipped, env, 5)
    params, fixed = states[0].params, states[0].feedback

    def step_gradient_norm(k: int) -> float:
        only_last = jnp.zeros((k + 1,)).at[k].set(1.0)
        parts = reference_traces(params, fixed, inputs[: k + 1], actions[: k + 1], only_last)[0]
        return float(np.sqrt(sum(np.sum(x**2) for x in leaves(parts))))

    norms = np.array([step_gradient_norm(k) for k in range(len(inputs))])
    limit = float(np.median(norms))
    scales = np.minimum(1.0, limit / norms)
    assert np.any(scales < 1.0) and np.any(scales == 1.0), norms

    clipped = make_rtrrl(
        cell, estimator=RTRL(), feedback=feedback, actor=actor, max_grad_norm=limit
    )
    states, inputs_clipped, actions_clipped = record_episode(clipped, env, 5)
    for got, expected in zip(actions_clipped, actions, strict=True):
        np.testing.assert_array_equal(got, expected)  # same keys, parameters never move
    (critic, actor_trace, cell_trace), _ = reference_traces(
        params, fixed, inputs, actions, jnp.asarray(scales)
    )
    traces = jax.tree.map(lambda a: a[0], states[-1].envs.traces)
    assert_trees_close(traces.critic, critic, what="critic trace")
    assert_trees_close(traces.actor, actor_trace, what="actor trace")
    assert_trees_close(traces.cell, cell_trace, what="cell trace")


def test_default_clips_at_one():
    """The paper's Table 1: gradient-norm clip 1.0 by default."""
    env = Toy()
    assert RTRRL(ctrnn(env), RFLO()).max_grad_norm == 1.0


def _online_lambda_return(x, rewards, theta0, lam):
    """Weights ``θ_h^h``, ``h = 1..T``, of the online λ-return algorithm on features ``x_0..x_T``
    (bias folded in) of an episode still running at ``T`` (Sutton & Barto 2018, eq. 12.9-12.10):
    every horizon replays the episode from ``θ_0`` towards truncated λ-returns whose n-step
    returns bootstrap with the final weights of earlier horizons."""
    num_steps, final = len(rewards), [theta0]

    def n_step_return(t, n):
        g = sum(GAMMA ** (i - 1) * rewards[t + i - 1] for i in range(1, n + 1))
        return g + GAMMA**n * final[t + n - 1] @ x[t + n]

    for h in range(1, num_steps + 1):
        theta = theta0
        for t in range(h):
            target = sum(
                (1 - lam) * lam ** (n - 1) * n_step_return(t, n) for n in range(1, h - t)
            ) + lam ** (h - t - 1) * n_step_return(t, h - t)
            theta = theta + ALPHA_C * (target - theta @ x[t]) * x[t]
        final.append(theta)
    return final[1:]


def test_linear_td_with_dutch_trace_is_true_online_td():
    """Linear TD(λ) (the `Identity` cell) with `DutchTrace` and plain SGD at ``α = lr_critic``:
    after every step the critic's weights are those of the online λ-return algorithm on the
    recorded inputs and rewards (van Seijen et al. 2016), so the value correction and ``V_old``
    are threaded through the learner correctly."""
    env = Toy()
    alg = make_rtrrl(
        Identity(input_size(env)),
        estimator=RTRL(),
        critic_trace=DutchTrace(),
        lr_critic=ALPHA_C,
        optimizer=SGD_CRITIC,
    )
    states, inputs, _ = record_episode(alg, env, 6, seed=8)
    last = env_slice(states[-1], 0)
    inputs.append(meta_input(last.obs, last.prev_action, last.prev_reward, False, env.action_space))
    features = np.concatenate([np.asarray(inputs), np.ones((len(inputs), 1))], axis=1)
    rewards = [float(s.envs.prev_reward[0]) for s in states[1:]]
    critic = states[0].params.critic
    theta0 = np.concatenate([critic.weight, critic.bias[None]])
    expected = _online_lambda_return(features, rewards, theta0, LAMBDA_C)
    for h, want in enumerate(expected, start=1):
        critic = states[h].params.critic
        got = np.concatenate([critic.weight, critic.bias[None]])
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"step {h}")


# --------------------------------------------------------------------------- one update


@pytest.mark.parametrize(
    ("feedback", "estimator"),
    [("backprop", RFLO()), ("alignment", RFLO()), ("backprop", LocalMSE())],
    ids=["backprop", "alignment", "backprop-localmse"],
)
def test_update_is_batch_mean_of_directions(feedback, estimator):
    """``optax.sgd(1.0)``, two environments: every parameter moves by the mean of the two
    reference directions (RFLO and LocalMSE are exact on an episode's first step: there is no
    history; LocalMSE adds the cell's entropy term over the batch, `mean_gradient`); fixed
    feedback matrices stay what `FeedbackAlignment.init` drew, step after step."""
    env = Toy(end_at=3)
    fb = Backprop() if feedback == "backprop" else FeedbackAlignment(key=jax.random.key(14))
    alg = make_rtrrl(
        ctrnn(env), feedback=fb, optimizer=PLAIN, actor=categorical(), estimator=estimator
    )
    state = jit_init(alg, env, jax.random.key(1), 2)
    # LocalMSE adds the entropy term over the batch; with one environment there is nothing to
    # average, and it keeps the per-environment term.
    assert alg.estimator.batches_gradient_mean(alg.cell) == isinstance(estimator, LocalMSE)
    assert entropy_over_batch(alg, state.params, 2) == isinstance(estimator, LocalMSE)
    assert not entropy_over_batch(alg, state.params, 1)
    assert not np.allclose(state.envs.obs[0], state.envs.obs[1])
    new, _ = jit_step(alg, state, env, jax.random.key(2))
    first, second = (
        reference_direction(alg, state, env, i, new.envs.prev_action[i]) for i in range(2)
    )
    expected = [(a + b) / 2 for a, b in zip(first, second, strict=True)]
    for got, want in zip(param_change(state, new), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert float(new.average_reward) == 0.0
    if feedback == "alignment":
        fixed = fb.init(state.params.actor, state.params.critic)
        for t in range(4):
            new, _ = jit_step(alg, new, env, jax.random.key(3 + t))
        assert not np.allclose(new.params.actor.weight, state.params.actor.weight)
        assert_trees_close(state.feedback, fixed, rtol=1e-14, what="drawn matrices")
        assert_trees_close(new.feedback, state.feedback, rtol=0, atol=0, what="changed")


def test_default_optimizer_is_adam_per_group():
    """Default optimiser: the first update is Adam's first step ``α · d / (|d| + 1e-8)`` of
    the reference direction ``d``, with ``α_R``, ``α_A``, ``α_C`` for cell, actor, critic."""
    env = Toy()
    rates = {"lr_cell": 0.005, "lr_actor": 0.01, "lr_critic": 0.02}
    alg = make_rtrrl(ctrnn(env), optimizer=None, actor=categorical(), **rates)
    state = jit_init(alg, env, jax.random.key(16), 1)
    new, _ = jit_step(alg, state, env, jax.random.key(17))
    direction = reference_direction(alg, state, env, 0, new.envs.prev_action[0])
    sizes = [len(leaves(getattr(state.params, group))) for group in ("cell", "actor", "critic")]
    steps = [rates["lr_cell"]] * sizes[0] + [rates["lr_actor"]] * sizes[1]
    steps += [rates["lr_critic"]] * sizes[2]
    for got, d, lr in zip(param_change(state, new), direction, steps, strict=True):
        np.testing.assert_allclose(got, lr * d / (np.abs(d) + 1e-8), rtol=1e-7, atol=ATOL)


def test_lr_schedule_scales_every_step_size_of_the_default_optimizer():
    """``lr_schedule=LinearDecay(4)``: the first update is Adam's first step at full size
    (multiplier 1 at update 0), exactly as without a schedule; the update at count 4 and
    after moves nothing (multiplier 0). A custom optimiser with a schedule is refused."""
    env = Toy()
    plain = make_rtrrl(ctrnn(env), optimizer=None, actor=categorical())
    decayed = make_rtrrl(
        ctrnn(env), optimizer=None, actor=categorical(), lr_schedule=LinearDecay(4)
    )
    state = jit_init(plain, env, jax.random.key(16), 1)
    first_plain, _ = jit_step(plain, state, env, jax.random.key(17))
    first_decayed, _ = jit_step(decayed, state, env, jax.random.key(17))
    for a, b in zip(
        param_change(state, first_plain), param_change(state, first_decayed), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=ATOL)
    late = eqx.tree_at(lambda s: s.opt_state.count, first_decayed, jnp.asarray(4, jnp.int32))
    after, _ = jit_step(decayed, late, env, jax.random.key(18))
    for change in param_change(late, after):
        np.testing.assert_array_equal(change, 0.0)
    with pytest.raises(ValueError, match="give the schedule to that optax optimiser"):
        make_rtrrl(ctrnn(env), lr_schedule=LinearDecay(4))


# --------------------------------------------------------------------------- TD errors


def _ending_run(num_steps: int = 5):
    """Two environments whose first episodes end at step 3, one in a terminal state, the other
    at a time limit; the deterministic actor makes every action known. Yields per step
    ``(state, next_state, metrics)``."""
    env = Toy(end_at=3)
    alg = make_rtrrl(ctrnn(env), optimizer=PLAIN, actor=categorical(deterministic=True))
    state = jit_init(alg, env, jax.random.key(3), 2)
    for t in range(1, num_steps + 1):
        new, metrics = jit_step(alg, state, env, jax.random.key(20 + t))
        yield t, alg, env, state, new, metrics
        state = new


def test_td_error_bootstraps_unless_terminal():
    """``δ`` of each environment (seen as the critic-bias change ``mean_i δ_i e_C,b,i`` under
    ``sgd(1.0)``, and as the mean squared error metric) bootstraps from ``v(h')`` on ordinary
    steps and at a time-limit cut, ``h'`` read from the pre-reset observation, and not from a
    terminal state."""
    action = jnp.ones((), jnp.int32)
    for t, alg, env, state, new, metrics in _ending_run():
        outcomes = [reference_td(alg, state, env, i, action) for i in range(2)]
        deltas, infos = [o[0] for o in outcomes], [o[2] for o in outcomes]
        if t == 3:
            assert sorted(bool(info.terminated) for info in infos) == [False, True]
            assert all(bool(info.terminated | info.truncated) for info in infos)
        # The state after an episode end holds stale traces, reset by the next step.
        previous = np.where(state.envs.episode_start, 0.0, state.envs.traces.critic.bias)
        traces = GAMMA * LAMBDA_C * previous + 1.0
        expected = np.mean(np.asarray(deltas) * np.asarray(traces))
        change = new.params.critic.bias - state.params.critic.bias
        np.testing.assert_allclose(change, expected, rtol=RTOL, err_msg=f"step {t}")
        np.testing.assert_allclose(metrics.td_error_sq, np.mean(np.square(deltas)), rtol=RTOL)
        assert int(metrics.episodes_finished) == (2 if t == 3 else 0)


def test_episode_end_resets_memory():
    """After the step that ends an episode (terminal or cut): fresh hidden state, no previous
    action or reward, ``episode_start``, ``V_old = 0``, and the next episode's first
    observation. The estimator state and traces are reset lazily, by the next step: that step
    gives exactly what it gives from a state whose estimator state and traces were reset."""
    for t, alg, env, _, new, _ in _ending_run(num_steps=3):
        for i in range(2):
            carry = env_slice(new, i)
            if t < 3:
                assert not bool(carry.episode_start)
                assert np.any(carry.hidden != 0) and np.any(carry.traces.cell.weight != 0)
                assert float(carry.prev_reward) != 0.0 and float(carry.previous_value) != 0.0
                continue
            assert bool(carry.episode_start)
            np.testing.assert_array_equal(carry.hidden, np.zeros(HIDDEN))
            assert np.any(carry.traces.cell.weight != 0)  # stale until the next step
            assert int(carry.prev_action) == 0 and float(carry.prev_reward) == 0.0
            assert float(carry.previous_value) == 0.0
            np.testing.assert_array_equal(carry.obs[1:], [-0.5, 0.0])  # a first observation
        if t < 3:
            continue
        reset = eqx.tree_at(
            lambda s: (s.envs.estimator, s.envs.traces),
            new,
            jax.tree.map(jnp.zeros_like, (new.envs.estimator, new.envs.traces)),
        )
        key = jax.random.key(99)
        lazy, _ = jit_step(alg, new, env, key)
        eager, _ = jit_step(alg, reset, env, key)
        assert_trees_close(lazy, eager, rtol=0, atol=0, what="lazy against eager reset")


@functools.cache
def _reward_run(num_steps: int = 6, rms: bool = False):
    """Two environments with reward scaling and an average reward (parameters fixed), with
    the reference statistics kept here: every discounted return ``G ← γ G + r`` (restarted
    after a terminal state) in one list, pooled with a prior sample of mean 0, variance 1.
    The scale is ``sqrt(Var[G] + ε)`` (`ReturnStd`) or ``sqrt(Var[G] + E[G]² + ε)``
    (`ReturnRMS`, ``rms=True``)."""
    env = Toy(end_at=3)
    alg = make_rtrrl(
        ctrnn(env),
        actor=categorical(),
        reward_scale=ReturnRMS() if rms else ReturnStd(),
        average_reward=True,
        eta_average_reward=0.3,
    )
    state = jit_init(alg, env, jax.random.key(5), 2)
    returns, samples, records = np.zeros(2), [], []
    for t in range(num_steps):
        new, metrics = jit_step(alg, state, env, jax.random.key(40 + t))
        actions = new.envs.prev_action  # the actions taken, unless an episode ended
        outcomes = [reference_td(alg, state, env, i, actions[i]) for i in range(2)]
        raws = np.array([float(raw) for _, raw, _ in outcomes])
        terminal = np.array([bool(info.terminated) for *_, info in outcomes])
        done = np.array([bool(info.terminated | info.truncated) for *_, info in outcomes])
        returns = GAMMA * returns + raws
        samples.extend(returns)
        values = np.array(samples)
        mean = np.sum(values) / (1 + len(values))
        var = (1.0 + mean**2 + np.sum((values - mean) ** 2)) / (1 + len(values))
        scale = np.sqrt(var + (mean**2 if rms else 0.0) + RETURN_EPSILON)
        deltas = [float(reference_td(alg, state, env, i, actions[i], scale)[0]) for i in range(2)]
        records.append((state, new, metrics, raws, done, var, scale, np.array(deltas)))
        returns = np.where(terminal, 0.0, returns)
        state = new
    return alg, env, records


def test_average_reward_moves_by_mean_td_error():
    """``r̄ ← r̄ + η mean(δ)`` over two environments, ``r̄`` subtracted inside ``δ``
    (checked on every step where no episode ends, so the actions are known)."""
    _, _, records = _reward_run()
    checked = 0
    for state, new, metrics, _, done, _, _, deltas in records:
        if done.any():
            continue
        expected = state.average_reward + 0.3 * np.mean(deltas)
        np.testing.assert_allclose(new.average_reward, expected, rtol=RTOL)
        np.testing.assert_allclose(metrics.td_error_sq, np.mean(deltas**2), rtol=RTOL)
        checked += 1
    assert checked >= 4 and float(records[-1][1].average_reward) != 0.0


def test_scale_rewards_divides_by_running_return_std():
    """The reward in ``δ`` and in the next input is ``r / sqrt(Var[G] + 1e-8)``, ``Var`` the
    population variance of all discounted returns of both environments so far (and a prior
    sample), ``G`` restarted after terminal states only."""
    _, _, records = _reward_run()
    for _, new, metrics, raws, done, var, scale, deltas in records:
        np.testing.assert_allclose(new.return_stats.var, var, rtol=1e-10)
        if done.any():
            continue
        np.testing.assert_allclose(new.envs.prev_reward, raws / scale, rtol=RTOL)
        np.testing.assert_allclose(metrics.td_error_sq, np.mean(deltas**2), rtol=RTOL)
    assert abs(records[-1][6] - 1.0) > 0.05


def test_return_rms_divides_by_root_mean_square_of_the_return():
    """`ReturnRMS`: the reward in ``δ`` and in the next input is ``r / sqrt(E[G²] + 1e-8)``
    over the same pooled returns; it is larger than the std here (the returns are positive)."""
    _, _, records = _reward_run(rms=True)
    _, _, std_records = _reward_run()
    for (_, new, metrics, raws, done, _, scale, deltas), std in zip(
        records, std_records, strict=True
    ):
        assert scale > std[6]
        if done.any():
            continue
        np.testing.assert_allclose(new.envs.prev_reward, raws / scale, rtol=RTOL)
        np.testing.assert_allclose(metrics.td_error_sq, np.mean(deltas**2), rtol=RTOL)


def test_observation_norm_feeds_running_standardised_observations():
    """`ObservationNormalizer(clip=1.5)` with the `Identity` cell (features = input): after each
    step, the observation part of the input is ``clip((o - m) / sqrt(v + 1e-8), ±1.5)`` with
    ``m``, ``v`` the mean and population variance of every observation read so far, this
    step's included, pooled with a prior of mean 0, variance 1 and weight 1e-4 (kept here as
    plain lists)."""
    env = Toy(end_at=4)
    alg = make_rtrrl(
        Identity(7),
        estimator=RTRL(),
        actor=CategoricalActor(7, 3, key=jax.random.key(3)),
        observation_norm=ObservationNormalizer(1.5),
    )
    state = jit_init(alg, env, jax.random.key(4), 3)
    seen, checked, clipped = [], 0, 0
    for t in range(5):
        seen.extend(np.asarray(state.envs.obs))
        new, _ = jit_step(alg, state, env, jax.random.key(70 + t))
        values, prior = np.array(seen), 1e-4
        mean = values.sum(axis=0) / (prior + len(values))
        var = (prior * (1.0 + mean**2) + np.sum((values - mean) ** 2, axis=0)) / (
            prior + len(values)
        )
        expected = np.clip((np.asarray(state.envs.obs) - mean) / np.sqrt(var + 1e-8), -1.5, 1.5)
        np.testing.assert_allclose(new.observation_stats.mean, mean, rtol=1e-10)
        np.testing.assert_allclose(new.observation_stats.var, var, rtol=1e-10)
        going = ~np.asarray(new.envs.episode_start)  # an ended episode's memory is reset
        read = np.asarray(new.envs.hidden[:, :3])[going]
        np.testing.assert_allclose(read, expected[going], rtol=1e-10, atol=1e-12)
        checked += going.sum()
        clipped += np.sum(np.abs(read) == 1.5)
        state = new
    assert checked >= 9 and clipped > 0


# --------------------------------------------------------------------------- ablations


def test_freeze_cell_keeps_cell_parameters():
    """A `Frozen` estimator (the echo-state ablation) under ``sgd(1.0)``: the cell never changes (the heads do), and the
    hidden state still follows the cell over the recorded inputs."""
    env = Toy()
    alg = make_rtrrl(ctrnn(env), optimizer=PLAIN, estimator=Frozen(), actor=categorical())
    states, inputs, _ = record_episode(alg, env, 3, seed=6)
    first, last = states[0], states[-1]
    assert_trees_close(last.params.cell, first.params.cell, rtol=0, atol=0, what="cell")
    assert not np.allclose(last.params.critic.weight, first.params.critic.weight)
    assert not np.allclose(last.params.actor.weight, first.params.actor.weight)
    hidden = first.params.cell.init_hidden()
    for x in inputs:
        hidden = first.params.cell(hidden, x)
    np.testing.assert_allclose(last.envs.hidden[0], hidden, rtol=RTOL)


def test_without_meta_rl_the_cell_reads_the_observation_only():
    """``meta_rl=False``: a cell of the observation's size; ``h_1 = cell(h_0, o_0)``, and the
    first TD error (the critic-bias change under ``sgd(1.0)``) uses observations only."""
    env = Toy()
    alg = make_rtrrl(ctrnn(env, meta_rl=False), meta_rl=False, optimizer=PLAIN, actor=categorical())
    state = jit_init(alg, env, jax.random.key(7), 1)
    new, metrics = jit_step(alg, state, env, jax.random.key(8))
    cell = state.params.cell
    np.testing.assert_allclose(
        new.envs.hidden[0], cell(cell.init_hidden(), state.envs.obs[0]), rtol=RTOL
    )
    td_error, _, _ = reference_td(alg, state, env, 0, new.envs.prev_action[0])
    np.testing.assert_allclose(metrics.td_error_sq, td_error**2, rtol=RTOL)
    change = new.params.critic.bias - state.params.critic.bias
    np.testing.assert_allclose(change, td_error, rtol=RTOL)


@pytest.mark.parametrize("meta_rl", [True, False])
def test_input_size_mismatch_is_refused(meta_rl):
    """A cell of the other input size is refused at `init`, naming both sizes and the input."""
    env = Toy()
    alg = make_rtrrl(ctrnn(env, meta_rl=not meta_rl), meta_rl=meta_rl)
    what = "observation, previous action, previous reward" if meta_rl else "observation"
    got, want = input_size(env, not meta_rl), input_size(env, meta_rl)
    match = rf"reads {got} inputs but Toy gives {want} \({what}\).*input_size={want}"
    with pytest.raises(ValueError, match=match):
        alg.init(jax.random.key(0), env)


# --------------------------------------------------------------------------- continuous actions


def test_gaussian_actions_are_clipped_for_the_environment():
    """A Gaussian actor whose mean lies near the bound 0.5: the environment receives (and
    reports in its observation) ``clip(a)``, the Meta-RL input's previous action is that
    executed ``clip(a)`` (it used to be the unclipped sample, which can be arbitrarily large and
    saturated the cell on MountainCarContinuous), and the learner stays finite."""
    env = Toy(continuous=True)
    alg = make_rtrrl(lru(env), estimator=RTRL(), actor=gaussian(0.5))
    state = jit_init(alg, env, jax.random.key(9), 1)
    clipped = inside = 0
    for t in range(8):
        state, metrics = jit_step(alg, state, env, jax.random.key(50 + t))
        assert bool(metrics.all_finite)
        previous = float(state.envs.prev_action[0, 0])
        assert previous == float(state.envs.obs[0, 2])  # what the environment executed
        assert abs(previous) <= BOUND
        clipped += abs(previous) == BOUND
        inside += abs(previous) < BOUND
    assert clipped > 0 and inside > 0


# --------------------------------------------------------------------------- evaluation


def _greedy_return(alg: RTRRL, state, env: Toy, max_steps: int) -> float:
    """A hand-written greedy rollout of one episode (scaled rewards and, with the learner's
    `ObservationNormalizer`, its frozen statistics applied to the observations)."""
    params = state.params
    scale = float(np.sqrt(state.return_stats.var + RETURN_EPSILON))
    obs, env_state = env.reset(jax.random.key(0))
    hidden, action, reward, start, total = params.cell.init_hidden(), 0, 0.0, True, 0.0
    for _ in range(max_steps):
        seen = obs
        if alg.observation_norm is not None:
            stats, clip = state.observation_stats, alg.observation_norm.clip
            seen = np.clip((obs - stats.mean) / np.sqrt(stats.var + 1e-8), -clip, clip)
        x = meta_input(seen, action, reward / scale, start, env.action_space)
        hidden = params.cell(hidden, x)
        action = int(np.argmax(params.actor.preactivation(params.cell.output(hidden))))
        obs, env_state, reward, done, _ = env.step(
            jax.random.key(0), env_state, jnp.asarray(action, jnp.int32)
        )
        reward, start, total = float(reward), False, total + float(reward)
        if bool(done):
            return total
    raise AssertionError("the episode did not end")


def test_evaluate_uses_the_frozen_observation_statistics():
    """With `ObservationNormalizer`, `evaluate` normalises observations by the state's
    statistics (chosen here so that raw observations would change the greedy actions) and
    leaves them unchanged."""
    env = Toy(end_at=4, random_start=False)
    alg = make_rtrrl(
        Identity(7),
        estimator=RTRL(),
        reward_scale=ReturnStd(),
        observation_norm=ObservationNormalizer(),
        actor=_reward_reading_actor(),
    )
    alg = eqx.tree_at(
        lambda a: a.actor.weight, alg, alg.actor.weight.at[:, 0].set(jnp.array([-3.0, 0.0, 3.0]))
    )
    state = jit_init(alg, env, jax.random.key(0), 1)
    stats = state.observation_stats
    state = eqx.tree_at(
        lambda s: (s.observation_stats.mean, s.observation_stats.var),
        state,
        (stats.mean + jnp.array([0.9, 0.0, 0.0]), stats.var * 0.25),
    )
    expected = _greedy_return(alg, state, env, 6)
    raw = _greedy_return(eqx.tree_at(lambda a: a.observation_norm, alg, None), state, env, 6)
    assert abs(raw - expected) > 0.1
    got = _evaluate(alg, state, env, jax.random.key(1), True)
    np.testing.assert_allclose(got, [expected] * 3, rtol=1e-12)


@eqx.filter_jit
def _evaluate(alg: RTRRL, state, env, key, greedy: bool):
    return alg.evaluate(state, env, key, num_envs=3, num_steps=6, greedy=greedy)


def _reward_reading_actor() -> CategoricalActor:
    """For linear features ``x = [o, enc(a_prev), r_prev]``: random small weights, plus a large
    weight on the reward entry so that the greedy action flips at ``r_prev = 1``."""
    actor = CategoricalActor(7, 3, key=jax.random.key(18))
    weight = (0.3 * actor.weight).at[:, 6].set(jnp.array([4.0, 0.0, -4.0]))
    return eqx.tree_at(lambda a: (a.weight, a.bias), actor, (weight, jnp.array([-4.0, 0.0, 4.0])))


def test_evaluate_greedy_matches_hand_rollout():
    """`evaluate` gives one return per environment; greedily, on a deterministic start, every
    environment and every key give the hand-written rollout's return, which feeds rewards
    divided by the frozen scale ``sqrt(Var[G] + ε)`` of the state (chosen so that an unscaled
    reward would change the actions); sampling gives finite returns of the same shape."""
    env = Toy(end_at=4, random_start=False)
    alg = make_rtrrl(
        Identity(7), estimator=RTRL(), reward_scale=ReturnStd(), actor=_reward_reading_actor()
    )
    state = jit_init(alg, env, jax.random.key(0), 1)
    state = eqx.tree_at(lambda s: s.return_stats.var, state, jnp.asarray(3.0))
    expected = _greedy_return(alg, state, env, 6)
    unscaled = eqx.tree_at(lambda s: s.return_stats.var, state, jnp.asarray(1.0 - 1e-8))
    assert abs(_greedy_return(alg, unscaled, env, 6) - expected) > 0.1
    for seed in (0, 1):
        got = _evaluate(alg, state, env, jax.random.key(seed), True)
        assert got.shape == (3,)
        np.testing.assert_allclose(got, [expected] * 3, rtol=1e-12)
    sampled = _evaluate(alg, state, env, jax.random.key(2), False)
    assert sampled.shape == (3,) and np.all(np.isfinite(sampled))


@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("optimizer", optax.adam, TypeError, "`optimizer` must be an optax transformation"),
        ("feedback", None, TypeError, "`feedback` must be Backprop() or FeedbackAlignment"),
        ("critic_trace", "dutch", TypeError, "`critic_trace` must be AccumulatingTrace()"),
        ("meta_rl", "no", TypeError, "`meta_rl` must be True or False, got 'no'"),
        ("gamma", "0.9", ValueError, "`gamma` must be a finite number, got '0.9'"),
        ("lr_cell", float("inf"), ValueError, "`lr_cell` must be a finite number, got inf"),
        ("eta_average_reward", math.nan, ValueError, "`eta_average_reward` must be a finite"),
    ],
)
def test_rtrrl_refuses_fields_of_the_wrong_type_or_non_finite(
    name, value, error, message, without_runtime_type_checks
):
    with pytest.raises(error, match=re.escape(message)):
        make_rtrrl(ctrnn(Toy()), **{name: value})


def test_rtrrl_refuses_heads_that_do_not_read_the_cells_features():
    cell = ctrnn(Toy())
    with pytest.raises(ValueError, match="the actor reads 7 features but the cell gives 3"):
        make_rtrrl(cell, actor=CategoricalActor(7, 3, key=jax.random.key(0)))
    with pytest.raises(ValueError, match="the critic reads 5 features but the cell gives 3"):
        make_rtrrl(cell, critic=Critic(5, key=jax.random.key(0)))


def test_gaussian_actor_with_the_wrong_number_of_action_dimensions_is_refused_at_init():
    env = Toy(continuous=True)
    actor = GaussianActor(HIDDEN, (-1.0, -1.0), (1.0, 1.0), key=jax.random.key(0))
    with pytest.raises(ValueError, match="GaussianActor has 2 action dimensions but .* has 1"):
        make_rtrrl(ctrnn(env), actor=actor).init(jax.random.key(1), env)
