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

from rtrrl.agent import LinearDecay, ObservationNormalizer, ReturnRMS, ReturnStd
from rtrrl.algorithms import RTRRL
from rtrrl.cells import CTRNN, LRU, Identity
from rtrrl.envs import AbstractEpisodicEnvironment, Box, Discrete
from rtrrl.estimators import RFLO, RTRL, Frozen
from rtrrl.heads import Backprop, CategoricalActor, Critic, FeedbackAlignment, GaussianActor
from rtrrl.traces import DutchTrace

RTOL, ATOL = 1e-8, 1e-12
LONG = 10**6
HIDDEN = 3
GAMMA, LAMBDA_A, LAMBDA_C, LAMBDA_R = 0.9, 0.7, 0.8, 0.6
ETA_A, ETA_H = 0.5, 0.05
BOUND = 0.5  # the continuous environment's action bound
RETURN_EPSILON = 1e-8

# Optax transformations are static fields of RTRRL: module-level objects let configurations
# share one compiled step.
FROZEN = optax.sgd(0.0)  # moves nothing
PLAIN = optax.sgd(1.0)  # update = -descent = the batch-mean ascent direction
ALPHA_C = 0.05
SGD_CRITIC = optax.sgd(ALPHA_C)


class Toy(AbstractEpisodicEnvironment):
    """``r = 1 + pos² + pos/2``, then ``pos ← 0.7 pos + 0.4 u + 0.1``; ``o = [pos, sin 3pos, u]``.

    ``u`` is the action the environment received (``action - 1`` for ``Discrete(3)``, the
    float itself for ``Box(-0.5, 0.5)``), so observations reveal it; the reward does not
    depend on it. The first observation is ``[pos_0, -0.5, 0]`` with ``pos_0 ~ U(-1, 1)`` (or
    0.2 without ``random_start``). An episode ends after ``end_at`` steps, as a terminal
    state or a time-limit cut with probability 1/2 each (drawn at reset).
    """

    end_at: int = eqx.field(static=True, default=LONG)
    continuous: bool = eqx.field(static=True, default=False)
    random_start: bool = eqx.field(static=True, default=True)

    @property
    def name(self) -> str:
        return "Toy"

    @property
    def observation_size(self) -> int:
        return 3

    @property
    def action_space(self):
        return Box((-BOUND,), (BOUND,)) if self.continuous else Discrete(3)

    def reset_episode(self, key):
        pos_key, kind_key = jax.random.split(key)
        pos = jax.random.uniform(pos_key, (), minval=-1.0, maxval=1.0)
        pos = pos if self.random_start else jnp.full((), 0.2)
        terminal = jax.random.bernoulli(kind_key)
        obs = jnp.stack([pos, jnp.full_like(pos, -0.5), jnp.zeros_like(pos)])
        return obs, (jnp.zeros((), jnp.int32), pos, terminal)

    def step_episode(self, key, inner, action):
        t, pos, terminal = inner
        u = action[0] if self.continuous else (action - 1).astype(pos.dtype)
        reward = 1.0 + pos**2 + 0.5 * pos
        pos, t = 0.7 * pos + 0.4 * u + 0.1, t + 1
        end = t >= self.end_at
        obs = jnp.stack([pos, jnp.sin(3.0 * pos), u])
        return obs, (t, pos, terminal), reward, end & terminal, end & ~terminal


def _input_size(env: Toy, meta_rl: bool = True) -> int:
    return 3 + (env.action_space.size + 1 if meta_rl else 0)


def _ctrnn(env: Toy, meta_rl: bool = True) -> CTRNN:
    cell = CTRNN(_input_size(env, meta_rl), HIDDEN, key=jax.random.key(10), tau_range=(1.5, 3.0))
    # A non-zero bias column so that every parameter has a gradient from the first step.
    return eqx.tree_at(lambda c: c.weight, cell, cell.weight.at[:, -1].set(0.3))


def _lru(env: Toy) -> LRU:
    return LRU(_input_size(env), HIDDEN, key=jax.random.key(11), output_size=2, r_min=0.5)


def _categorical(deterministic: bool = False) -> CategoricalActor:
    """A stochastic actor with biases; or one that always picks action 1 (its logit leads by
    60, far beyond any Gumbel noise), so the action is known even when an episode ends."""
    actor = CategoricalActor(HIDDEN, 3, key=jax.random.key(12))
    if deterministic:
        return eqx.tree_at(
            lambda a: (a.weight, a.bias), actor, (0 * actor.weight, jnp.array([0.0, 60.0, 0.0]))
        )
    return eqx.tree_at(lambda a: a.bias, actor, jnp.array([0.3, -0.2, 0.1]))


def _gaussian(mean_bias: float) -> GaussianActor:
    actor = GaussianActor(2, (-BOUND,), (BOUND,), key=jax.random.key(15))
    return eqx.tree_at(lambda a: a.bias, actor, jnp.array([mean_bias, 0.0]))


def _rtrrl(cell, **kwargs) -> RTRRL:
    options = dict(
        estimator=RFLO(),
        gamma=GAMMA,
        lambda_actor=LAMBDA_A,
        lambda_critic=LAMBDA_C,
        lambda_cell=LAMBDA_R,
        eta_actor=ETA_A,
        eta_entropy=ETA_H,
        optimizer=FROZEN,
        reward_scale=None,  # raw rewards and observations: scaling has its own tests
        observation_norm=None,
        max_grad_norm=None,  # the references are unclipped; clipping has its own test
    )
    return RTRRL(cell, **(options | kwargs))


@pytest.fixture(autouse=True, scope="module")
def _fast_compiles():
    """Tiny programs: XLA's optimisation passes cost more compile time than they save."""
    before = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", before)


@eqx.filter_jit
def _step(alg: RTRRL, state, env, key):
    return alg.step(state, env, key)


@eqx.filter_jit
def _init(alg: RTRRL, env, key, num_envs: int):
    return alg.init(key, env, num_envs=num_envs)


def _jax_leaves(tree) -> list[jax.Array]:
    return jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in _jax_leaves(tree)]


def _assert_trees_close(got, expected, rtol=RTOL, atol=ATOL, what=""):
    got, expected = _leaves(got), _leaves(expected)
    assert len(got) == len(expected), what
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"{what} leaf {i}")


def _param_change(before, after) -> list[np.ndarray]:
    return [a - b for a, b in zip(_leaves(after.params), _leaves(before.params), strict=True)]


def _env_slice(state, i: int):
    return jax.tree.map(lambda a: a[i], state.envs)


def _meta_input(obs, prev_action, prev_reward, start, space):
    """``[o, enc(a_prev), r_prev]``, the action and reward zeroed at an episode start."""
    if isinstance(space, Discrete):
        code = jnp.zeros((space.n,)).at[prev_action].set(1.0)
    else:
        code = jnp.asarray(prev_action)
    keep = 1.0 - jnp.asarray(start).astype(obs.dtype)
    return jnp.concatenate([obs, keep * code, jnp.reshape(keep * prev_reward, (1,))])


@eqx.filter_jit
def _td_core(params, carry, env: Toy, action, average_reward, reward_scale, meta_rl: bool):
    space = env.action_space
    x = carry.obs
    if meta_rl:
        x = _meta_input(x, carry.prev_action, carry.prev_reward, carry.episode_start, space)
    hidden = params.cell(carry.hidden, x)
    value = params.critic(params.cell.output(hidden))
    sent = jnp.clip(action, -BOUND, BOUND) if env.continuous else action
    # Toy's dynamics ignore the key; only the reset after an episode end would use it.
    _, _, raw, _, info = env.step(jax.random.key(0), carry.env_state, sent)
    reward = raw / reward_scale
    x_next = info.final_observation
    if meta_rl:
        x_next = _meta_input(x_next, action, reward, False, space)
    value_next = params.critic(params.cell.output(params.cell(hidden, x_next)))
    bootstrap = jnp.where(info.terminated, 0.0, GAMMA * value_next)
    return reward - average_reward + bootstrap - value, raw, info


def _reference_td(alg: RTRRL, state, env: Toy, i: int, action, reward_scale=1.0):
    """``(δ, raw reward, info)`` of environment ``i`` taking ``action`` from ``state``."""
    assert alg.gamma == GAMMA
    carry = _env_slice(state, i)
    scale = jnp.asarray(reward_scale, jnp.float64)
    return _td_core(state.params, carry, env, action, state.average_reward, scale, alg.meta_rl)


@eqx.filter_jit
def _direction_core(params, carry, env: Toy, action, td_error, fixed):
    x = _meta_input(carry.obs, carry.prev_action, carry.prev_reward, True, env.action_space)

    def features(cell):
        return cell.output(cell(carry.hidden, x))

    def value(p):
        return p.critic(features(p.cell))

    def log_prob(p):
        return p.actor.log_prob(features(p.cell), action)

    def entropy(p):
        return p.actor.entropy(features(p.cell))

    grad_v, grad_l, grad_h = (eqx.filter_grad(f)(params) for f in (value, log_prob, entropy))
    critic = jax.tree.map(lambda g: td_error * g, grad_v.critic)
    actor = jax.tree.map(lambda g, h: td_error * g + ETA_H * h, grad_l.actor, grad_h.actor)
    if fixed is None:
        cell = jax.tree.map(
            lambda v, lp, h: td_error * (v + ETA_A * lp) + ETA_H * h,
            grad_v.cell,
            grad_l.cell,
            grad_h.cell,
        )
    else:
        z = params.actor.preactivation(features(params.cell))
        error_l = jax.grad(lambda z: jax.nn.log_softmax(z)[action])(z)
        error_h = jax.grad(lambda z: -jnp.sum(jax.nn.softmax(z) * jax.nn.log_softmax(z)))(z)
        g = fixed.critic[0] + ETA_A * fixed.actor.T @ error_l
        g_h = fixed.actor.T @ error_h
        grad_g = eqx.filter_grad(lambda c: jnp.dot(features(c), g))(params.cell)
        grad_gh = eqx.filter_grad(lambda c: jnp.dot(features(c), g_h))(params.cell)
        cell = jax.tree.map(lambda a, b: td_error * a + ETA_H * b, grad_g, grad_gh)
    return [*_jax_leaves(cell), *_jax_leaves(actor), *_jax_leaves(critic)]


def _reference_direction(alg: RTRRL, state, env: Toy, i: int, action) -> list[np.ndarray]:
    """Ascent direction of environment ``i`` on an episode's first step (traces are zero).

    Backprop: ``δ ∇v``, ``δ ∇ log π(a) + η_H ∇H`` and ``δ ∇(v + η_A log π(a)) + η_H ∇H``,
    the gradients by `jax.grad` through one cell step. Feedback alignment: the cell's parts
    are ``(∂y/∂θ_R)ᵀ g`` with ``g = B_C + η_A B_Aᵀ ∂log π/∂z`` and ``g_H = B_Aᵀ ∂H/∂z``.
    """
    carry = _env_slice(state, i)
    assert bool(carry.episode_start)
    td_error, _, _ = _reference_td(alg, state, env, i, action)
    leaves = _direction_core(state.params, carry, env, action, td_error, state.feedback)
    return [np.asarray(x) for x in leaves]


# --------------------------------------------------------------------------- traces


_TRACE_CASES = {
    "ctrnn": lambda: (Toy(), _ctrnn(Toy()), Backprop(), _categorical()),
    "lru-gaussian": lambda: (
        Toy(continuous=True),
        _lru(Toy(continuous=True)),
        Backprop(),
        _gaussian(0.0),
    ),
    "ctrnn-alignment": lambda: (
        Toy(),
        _ctrnn(Toy()),
        FeedbackAlignment(key=jax.random.key(13)),
        _categorical(),
    ),
}


def _record_episode(alg: RTRRL, env: Toy, num_steps: int, seed: int = 0):
    """Run one environment: the states, the inputs ``x_t`` and the actions ``a_t``."""
    state = _init(alg, env, jax.random.key(seed), 1)
    states, inputs, actions = [state], [], []
    for t in range(num_steps):
        carry = _env_slice(state, 0)
        inputs.append(
            _meta_input(
                carry.obs,
                carry.prev_action,
                carry.prev_reward,
                carry.episode_start,
                env.action_space,
            )
        )
        state, _ = _step(alg, state, env, jax.random.key(100 + t))
        assert not bool(state.envs.episode_start[0]), "the episode must not end here"
        actions.append(state.envs.prev_action[0])
        states.append(state)
    return states, inputs, actions


@eqx.filter_jit
def _reference_traces(params, fixed, inputs, actions, scales=None):
    """``(e_C, e_A, e_R)`` after ``T = len(inputs)`` steps, by `jax.grad` through the unrolled
    cell: ``Σ_k w_k ∇f_k = ∇ Σ_k w_k f_k`` with constant weights ``w_k = s_k (γλ)^{T-1-k}``
    (``s_k = scales[k]``, default 1)."""
    num_steps = len(inputs)
    if scales is None:
        scales = jnp.ones((num_steps,))

    def per_step_terms(p):
        """Per step ``k``: ``(v_k, log π(a_k), cell objective_k)``."""
        hidden, out = p.cell.init_hidden(), []
        for x, action in zip(inputs, actions, strict=True):
            hidden = p.cell(hidden, x)
            y = p.cell.output(hidden)
            value, log_prob = p.critic(y), p.actor.log_prob(y, action)
            if fixed is None:  # Backprop: the exact gradient of v + η_A log π
                cell_term = value + ETA_A * log_prob
            else:  # feedback alignment: the fixed matrices carry the heads' errors to y
                z = jax.lax.stop_gradient(p.actor.preactivation(y))
                error = jax.grad(lambda z, a=action: jax.nn.log_softmax(z)[a])(z)
                cell_term = jnp.dot(y, fixed.critic[0] + ETA_A * fixed.actor.T @ error)
            out.append((value, log_prob, cell_term))
        return out

    def trace(index, lam):
        def objective(p):
            terms = per_step_terms(p)
            return sum(
                scales[k] * (GAMMA * lam) ** (num_steps - 1 - k) * terms[k][index]
                for k in range(num_steps)
            )

        return eqx.filter_grad(objective)(params)

    hidden = params.cell.init_hidden()
    for x in inputs:
        hidden = params.cell(hidden, x)
    traces = (trace(0, LAMBDA_C).critic, trace(1, LAMBDA_A).actor, trace(2, LAMBDA_R).cell)
    return traces, params.cell.output(hidden)


@pytest.mark.parametrize("case", list(_TRACE_CASES))
def test_traces_equal_unrolled_gradients(case):
    """Exact RTRL, parameters held fixed: ``e_C, e_A, e_R`` after 5 steps are the discounted
    sums of `jax.grad` through the unrolled cell over the recorded inputs and actions."""
    env, cell, feedback, actor = _TRACE_CASES[case]()
    alg = _rtrrl(cell, estimator=RTRL(), feedback=feedback, actor=actor)
    states, inputs, actions = _record_episode(alg, env, 5)
    first, last = states[0], states[-1]
    _assert_trees_close(last.params, first.params, rtol=0, atol=0, what="params moved")
    (critic, actor, cell), features = _reference_traces(
        first.params, first.feedback, inputs, actions
    )
    np.testing.assert_allclose(first.params.cell.output(last.envs.hidden[0]), features, rtol=RTOL)
    traces = jax.tree.map(lambda a: a[0], last.envs.traces)
    _assert_trees_close(traces.critic, critic, what="critic trace")
    _assert_trees_close(traces.actor, actor, what="actor trace")
    _assert_trees_close(traces.cell, cell, what="cell trace")


def test_max_grad_norm_clips_each_step_gradient_before_the_traces():
    """With ``max_grad_norm = C`` each step's gradient ``g_k = (∇v_k, ∇ log π(a_k),
    ∇(v_k + η_A log π(a_k)))`` enters the traces scaled by ``min(1, C / ‖g_k‖)``, one factor for
    all three parts: the traces are the unrolled references with those weights. ``C`` is the
    median of the five norms, so some steps are clipped and some are not."""
    env, cell, feedback, actor = _TRACE_CASES["ctrnn"]()
    unclipped = _rtrrl(cell, estimator=RTRL(), feedback=feedback, actor=actor)
    states, inputs, actions = _record_episode(unclipped, env, 5)
    params, fixed = states[0].params, states[0].feedback

    def step_gradient_norm(k: int) -> float:
        only_last = jnp.zeros((k + 1,)).at[k].set(1.0)
        parts = _reference_traces(params, fixed, inputs[: k + 1], actions[: k + 1], only_last)[0]
        return float(np.sqrt(sum(np.sum(x**2) for x in _leaves(parts))))

    norms = np.array([step_gradient_norm(k) for k in range(len(inputs))])
    limit = float(np.median(norms))
    scales = np.minimum(1.0, limit / norms)
    assert np.any(scales < 1.0) and np.any(scales == 1.0), norms

    clipped = _rtrrl(cell, estimator=RTRL(), feedback=feedback, actor=actor, max_grad_norm=limit)
    states, inputs_clipped, actions_clipped = _record_episode(clipped, env, 5)
    for got, expected in zip(actions_clipped, actions, strict=True):
        np.testing.assert_array_equal(got, expected)  # same keys, parameters never move
    (critic, actor_trace, cell_trace), _ = _reference_traces(
        params, fixed, inputs, actions, jnp.asarray(scales)
    )
    traces = jax.tree.map(lambda a: a[0], states[-1].envs.traces)
    _assert_trees_close(traces.critic, critic, what="critic trace")
    _assert_trees_close(traces.actor, actor_trace, what="actor trace")
    _assert_trees_close(traces.cell, cell_trace, what="cell trace")


def test_default_clips_at_one():
    """The paper's Table 1: gradient-norm clip 1.0 by default."""
    env = Toy()
    assert RTRRL(_ctrnn(env), RFLO()).max_grad_norm == 1.0


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
    alg = _rtrrl(
        Identity(_input_size(env)),
        estimator=RTRL(),
        critic_trace=DutchTrace(),
        lr_critic=ALPHA_C,
        optimizer=SGD_CRITIC,
    )
    states, inputs, _ = _record_episode(alg, env, 6, seed=8)
    last = _env_slice(states[-1], 0)
    inputs.append(
        _meta_input(last.obs, last.prev_action, last.prev_reward, False, env.action_space)
    )
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


@pytest.mark.parametrize("feedback", ["backprop", "alignment"])
def test_update_is_batch_mean_of_directions(feedback):
    """``optax.sgd(1.0)``, two environments: every parameter moves by the mean of the two
    reference directions (RFLO is exact on an episode's first step: there is no history);
    fixed feedback matrices stay what `FeedbackAlignment.init` drew, step after step."""
    env = Toy(end_at=3)
    fb = Backprop() if feedback == "backprop" else FeedbackAlignment(key=jax.random.key(14))
    alg = _rtrrl(_ctrnn(env), feedback=fb, optimizer=PLAIN, actor=_categorical())
    state = _init(alg, env, jax.random.key(1), 2)
    assert not np.allclose(state.envs.obs[0], state.envs.obs[1])
    new, _ = _step(alg, state, env, jax.random.key(2))
    first, second = (
        _reference_direction(alg, state, env, i, new.envs.prev_action[i]) for i in range(2)
    )
    expected = [(a + b) / 2 for a, b in zip(first, second, strict=True)]
    for got, want in zip(_param_change(state, new), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert float(new.average_reward) == 0.0
    if feedback == "alignment":
        fixed = fb.init(state.params.actor, state.params.critic)
        for t in range(4):
            new, _ = _step(alg, new, env, jax.random.key(3 + t))
        assert not np.allclose(new.params.actor.weight, state.params.actor.weight)
        _assert_trees_close(state.feedback, fixed, rtol=1e-14, what="drawn matrices")
        _assert_trees_close(new.feedback, state.feedback, rtol=0, atol=0, what="changed")


def test_default_optimizer_is_adam_per_group():
    """Default optimiser: the first update is Adam's first step ``α · d / (|d| + 1e-8)`` of
    the reference direction ``d``, with ``α_R``, ``α_A``, ``α_C`` for cell, actor, critic."""
    env = Toy()
    rates = {"lr_cell": 0.005, "lr_actor": 0.01, "lr_critic": 0.02}
    alg = _rtrrl(_ctrnn(env), optimizer=None, actor=_categorical(), **rates)
    state = _init(alg, env, jax.random.key(16), 1)
    new, _ = _step(alg, state, env, jax.random.key(17))
    direction = _reference_direction(alg, state, env, 0, new.envs.prev_action[0])
    sizes = [len(_leaves(getattr(state.params, group))) for group in ("cell", "actor", "critic")]
    steps = [rates["lr_cell"]] * sizes[0] + [rates["lr_actor"]] * sizes[1]
    steps += [rates["lr_critic"]] * sizes[2]
    for got, d, lr in zip(_param_change(state, new), direction, steps, strict=True):
        np.testing.assert_allclose(got, lr * d / (np.abs(d) + 1e-8), rtol=1e-7, atol=ATOL)


def test_lr_schedule_scales_every_step_size_of_the_default_optimizer():
    """``lr_schedule=LinearDecay(4)``: the first update is Adam's first step at full size
    (multiplier 1 at update 0), exactly as without a schedule; the update at count 4 and
    after moves nothing (multiplier 0). A custom optimiser with a schedule is refused."""
    env = Toy()
    plain = _rtrrl(_ctrnn(env), optimizer=None, actor=_categorical())
    decayed = _rtrrl(_ctrnn(env), optimizer=None, actor=_categorical(), lr_schedule=LinearDecay(4))
    state = _init(plain, env, jax.random.key(16), 1)
    first_plain, _ = _step(plain, state, env, jax.random.key(17))
    first_decayed, _ = _step(decayed, state, env, jax.random.key(17))
    for a, b in zip(
        _param_change(state, first_plain), _param_change(state, first_decayed), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=ATOL)
    late = eqx.tree_at(lambda s: s.opt_state.count, first_decayed, jnp.asarray(4, jnp.int32))
    after, _ = _step(decayed, late, env, jax.random.key(18))
    for change in _param_change(late, after):
        np.testing.assert_array_equal(change, 0.0)
    with pytest.raises(ValueError, match="give the schedule to that optax optimiser"):
        _rtrrl(_ctrnn(env), lr_schedule=LinearDecay(4))


# --------------------------------------------------------------------------- TD errors


def _ending_run(num_steps: int = 5):
    """Two environments whose first episodes end at step 3, one in a terminal state, the other
    at a time limit; the deterministic actor makes every action known. Yields per step
    ``(state, next_state, metrics)``."""
    env = Toy(end_at=3)
    alg = _rtrrl(_ctrnn(env), optimizer=PLAIN, actor=_categorical(deterministic=True))
    state = _init(alg, env, jax.random.key(3), 2)
    for t in range(1, num_steps + 1):
        new, metrics = _step(alg, state, env, jax.random.key(20 + t))
        yield t, alg, env, state, new, metrics
        state = new


def test_td_error_bootstraps_unless_terminal():
    """``δ`` of each environment (seen as the critic-bias change ``mean_i δ_i e_C,b,i`` under
    ``sgd(1.0)``, and as the mean squared error metric) bootstraps from ``v(h')`` on ordinary
    steps and at a time-limit cut, ``h'`` read from the pre-reset observation, and not from a
    terminal state."""
    action = jnp.ones((), jnp.int32)
    for t, alg, env, state, new, metrics in _ending_run():
        outcomes = [_reference_td(alg, state, env, i, action) for i in range(2)]
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
            carry = _env_slice(new, i)
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
        lazy, _ = _step(alg, new, env, key)
        eager, _ = _step(alg, reset, env, key)
        _assert_trees_close(lazy, eager, rtol=0, atol=0, what="lazy against eager reset")


@functools.cache
def _reward_run(num_steps: int = 6, rms: bool = False):
    """Two environments with reward scaling and an average reward (parameters fixed), with
    the reference statistics kept here: every discounted return ``G ← γ G + r`` (restarted
    after a terminal state) in one list, pooled with a prior sample of mean 0, variance 1.
    The scale is ``sqrt(Var[G] + ε)`` (`ReturnStd`) or ``sqrt(Var[G] + E[G]² + ε)``
    (`ReturnRMS`, ``rms=True``)."""
    env = Toy(end_at=3)
    alg = _rtrrl(
        _ctrnn(env),
        actor=_categorical(),
        reward_scale=ReturnRMS() if rms else ReturnStd(),
        average_reward=True,
        eta_average_reward=0.3,
    )
    state = _init(alg, env, jax.random.key(5), 2)
    returns, samples, records = np.zeros(2), [], []
    for t in range(num_steps):
        new, metrics = _step(alg, state, env, jax.random.key(40 + t))
        actions = new.envs.prev_action  # the actions taken, unless an episode ended
        outcomes = [_reference_td(alg, state, env, i, actions[i]) for i in range(2)]
        raws = np.array([float(raw) for _, raw, _ in outcomes])
        terminal = np.array([bool(info.terminated) for *_, info in outcomes])
        done = np.array([bool(info.terminated | info.truncated) for *_, info in outcomes])
        returns = GAMMA * returns + raws
        samples.extend(returns)
        values = np.array(samples)
        mean = np.sum(values) / (1 + len(values))
        var = (1.0 + mean**2 + np.sum((values - mean) ** 2)) / (1 + len(values))
        scale = np.sqrt(var + (mean**2 if rms else 0.0) + RETURN_EPSILON)
        deltas = [float(_reference_td(alg, state, env, i, actions[i], scale)[0]) for i in range(2)]
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
    alg = _rtrrl(
        Identity(7),
        estimator=RTRL(),
        actor=CategoricalActor(7, 3, key=jax.random.key(3)),
        observation_norm=ObservationNormalizer(1.5),
    )
    state = _init(alg, env, jax.random.key(4), 3)
    seen, checked, clipped = [], 0, 0
    for t in range(5):
        seen.extend(np.asarray(state.envs.obs))
        new, _ = _step(alg, state, env, jax.random.key(70 + t))
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
    alg = _rtrrl(_ctrnn(env), optimizer=PLAIN, estimator=Frozen(), actor=_categorical())
    states, inputs, _ = _record_episode(alg, env, 3, seed=6)
    first, last = states[0], states[-1]
    _assert_trees_close(last.params.cell, first.params.cell, rtol=0, atol=0, what="cell")
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
    alg = _rtrrl(_ctrnn(env, meta_rl=False), meta_rl=False, optimizer=PLAIN, actor=_categorical())
    state = _init(alg, env, jax.random.key(7), 1)
    new, metrics = _step(alg, state, env, jax.random.key(8))
    cell = state.params.cell
    np.testing.assert_allclose(
        new.envs.hidden[0], cell(cell.init_hidden(), state.envs.obs[0]), rtol=RTOL
    )
    td_error, _, _ = _reference_td(alg, state, env, 0, new.envs.prev_action[0])
    np.testing.assert_allclose(metrics.td_error_sq, td_error**2, rtol=RTOL)
    change = new.params.critic.bias - state.params.critic.bias
    np.testing.assert_allclose(change, td_error, rtol=RTOL)


@pytest.mark.parametrize("meta_rl", [True, False])
def test_input_size_mismatch_is_refused(meta_rl):
    """A cell of the other input size is refused at `init`, naming both sizes and the input."""
    env = Toy()
    alg = _rtrrl(_ctrnn(env, meta_rl=not meta_rl), meta_rl=meta_rl)
    what = "observation, previous action, previous reward" if meta_rl else "observation"
    got, want = _input_size(env, not meta_rl), _input_size(env, meta_rl)
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
    alg = _rtrrl(_lru(env), estimator=RTRL(), actor=_gaussian(0.5))
    state = _init(alg, env, jax.random.key(9), 1)
    clipped = inside = 0
    for t in range(8):
        state, metrics = _step(alg, state, env, jax.random.key(50 + t))
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
        x = _meta_input(seen, action, reward / scale, start, env.action_space)
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
    alg = _rtrrl(
        Identity(7),
        estimator=RTRL(),
        reward_scale=ReturnStd(),
        observation_norm=ObservationNormalizer(),
        actor=_reward_reading_actor(),
    )
    alg = eqx.tree_at(
        lambda a: a.actor.weight, alg, alg.actor.weight.at[:, 0].set(jnp.array([-3.0, 0.0, 3.0]))
    )
    state = _init(alg, env, jax.random.key(0), 1)
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
    alg = _rtrrl(
        Identity(7), estimator=RTRL(), reward_scale=ReturnStd(), actor=_reward_reading_actor()
    )
    state = _init(alg, env, jax.random.key(0), 1)
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
        _rtrrl(_ctrnn(Toy()), **{name: value})


def test_rtrrl_refuses_heads_that_do_not_read_the_cells_features():
    cell = _ctrnn(Toy())
    with pytest.raises(ValueError, match="the actor reads 7 features but the cell gives 3"):
        _rtrrl(cell, actor=CategoricalActor(7, 3, key=jax.random.key(0)))
    with pytest.raises(ValueError, match="the critic reads 5 features but the cell gives 3"):
        _rtrrl(cell, critic=Critic(5, key=jax.random.key(0)))


def test_gaussian_actor_with_the_wrong_number_of_action_dimensions_is_refused_at_init():
    env = Toy(continuous=True)
    actor = GaussianActor(HIDDEN, (-1.0, -1.0), (1.0, 1.0), key=jax.random.key(0))
    with pytest.raises(ValueError, match="GaussianActor has 2 action dimensions but .* has 1"):
        _rtrrl(_ctrnn(env), actor=actor).init(jax.random.key(1), env)
