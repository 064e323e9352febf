"""Shared pieces of the RTRRL tests (`test_rtrrl.py`): a tiny deterministic environment with
known rewards and chosen episode ends, builders of small cells, heads and learners, jitted
steps, and the independent references (TD errors, ascent directions and traces recomputed
with `jax.grad` from recorded inputs, not from the learner's code)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rtrrl.algorithms import RTRRL
from rtrrl.cells import CTRNN, LRU
from rtrrl.envs import AbstractEpisodicEnvironment, Box, Discrete
from rtrrl.estimators import RFLO
from rtrrl.heads import Backprop, CategoricalActor, FeedbackAlignment, GaussianActor

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


def input_size(env: Toy, meta_rl: bool = True) -> int:
    return 3 + (env.action_space.size + 1 if meta_rl else 0)


def ctrnn(env: Toy, meta_rl: bool = True) -> CTRNN:
    cell = CTRNN(input_size(env, meta_rl), HIDDEN, key=jax.random.key(10), tau_range=(1.5, 3.0))
    # A non-zero bias column so that every parameter has a gradient from the first step.
    return eqx.tree_at(lambda c: c.weight, cell, cell.weight.at[:, -1].set(0.3))


def lru(env: Toy) -> LRU:
    return LRU(input_size(env), HIDDEN, key=jax.random.key(11), output_size=2, r_min=0.5)


def categorical(deterministic: bool = False) -> CategoricalActor:
    """A stochastic actor with biases; or one that always picks action 1 (its logit leads by
    60, far beyond any Gumbel noise), so the action is known even when an episode ends."""
    actor = CategoricalActor(HIDDEN, 3, key=jax.random.key(12))
    if deterministic:
        return eqx.tree_at(
            lambda a: (a.weight, a.bias), actor, (0 * actor.weight, jnp.array([0.0, 60.0, 0.0]))
        )
    return eqx.tree_at(lambda a: a.bias, actor, jnp.array([0.3, -0.2, 0.1]))


def gaussian(mean_bias: float) -> GaussianActor:
    actor = GaussianActor(2, (-BOUND,), (BOUND,), key=jax.random.key(15))
    return eqx.tree_at(lambda a: a.bias, actor, jnp.array([mean_bias, 0.0]))


def make_rtrrl(cell, **kwargs) -> RTRRL:
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


@eqx.filter_jit
def jit_step(alg: RTRRL, state, env, key):
    return alg.step(state, env, key)


@eqx.filter_jit
def jit_init(alg: RTRRL, env, key, num_envs: int):
    return alg.init(key, env, num_envs=num_envs)


def jax_leaves(tree) -> list[jax.Array]:
    return jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))


def leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax_leaves(tree)]


def assert_trees_close(got, expected, rtol=RTOL, atol=ATOL, what=""):
    got, expected = leaves(got), leaves(expected)
    assert len(got) == len(expected), what
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"{what} leaf {i}")


def param_change(before, after) -> list[np.ndarray]:
    return [a - b for a, b in zip(leaves(after.params), leaves(before.params), strict=True)]


def env_slice(state, i: int):
    return jax.tree.map(lambda a: a[i], state.envs)


def meta_input(obs, prev_action, prev_reward, start, space):
    """``[o, enc(a_prev), r_prev]``, the action and reward zeroed at an episode start."""
    if isinstance(space, Discrete):
        code = jnp.zeros((space.n,)).at[prev_action].set(1.0)
    else:
        code = jnp.asarray(prev_action)
    keep = 1.0 - jnp.asarray(start).astype(obs.dtype)
    return jnp.concatenate([obs, keep * code, jnp.reshape(keep * prev_reward, (1,))])


@eqx.filter_jit
def td_core(params, carry, env: Toy, action, average_reward, reward_scale, meta_rl: bool):
    space = env.action_space
    x = carry.obs
    if meta_rl:
        x = meta_input(x, carry.prev_action, carry.prev_reward, carry.episode_start, space)
    hidden = params.cell(carry.hidden, x)
    value = params.critic(params.cell.output(hidden))
    sent = jnp.clip(action, -BOUND, BOUND) if env.continuous else action
    # Toy's dynamics ignore the key; only the reset after an episode end would use it.
    _, _, raw, _, info = env.step(jax.random.key(0), carry.env_state, sent)
    reward = raw / reward_scale
    x_next = info.final_observation
    if meta_rl:
        x_next = meta_input(x_next, action, reward, False, space)
    value_next = params.critic(params.cell.output(params.cell(hidden, x_next)))
    bootstrap = jnp.where(info.terminated, 0.0, GAMMA * value_next)
    return reward - average_reward + bootstrap - value, raw, info


def reference_td(alg: RTRRL, state, env: Toy, i: int, action, reward_scale=1.0):
    """``(δ, raw reward, info)`` of environment ``i`` taking ``action`` from ``state``."""
    assert alg.gamma == GAMMA
    carry = env_slice(state, i)
    scale = jnp.asarray(reward_scale, jnp.float64)
    return td_core(state.params, carry, env, action, state.average_reward, scale, alg.meta_rl)


@eqx.filter_jit
def direction_core(params, carry, env: Toy, action, td_error, fixed):
    x = meta_input(carry.obs, carry.prev_action, carry.prev_reward, True, env.action_space)

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
    return [*jax_leaves(cell), *jax_leaves(actor), *jax_leaves(critic)]


def reference_direction(alg: RTRRL, state, env: Toy, i: int, action) -> list[np.ndarray]:
    """Ascent direction of environment ``i`` on an episode's first step (traces are zero).

    Backprop: ``δ ∇v``, ``δ ∇ log π(a) + η_H ∇H`` and ``δ ∇(v + η_A log π(a)) + η_H ∇H``,
    the gradients by `jax.grad` through one cell step. Feedback alignment: the cell's parts
    are ``(∂y/∂θ_R)ᵀ g`` with ``g = B_C + η_A B_Aᵀ ∂log π/∂z`` and ``g_H = B_Aᵀ ∂H/∂z``.
    """
    carry = env_slice(state, i)
    assert bool(carry.episode_start)
    td_error, _, _ = reference_td(alg, state, env, i, action)
    parts = direction_core(state.params, carry, env, action, td_error, state.feedback)
    return [np.asarray(x) for x in parts]


# --------------------------------------------------------------------------- traces


TRACE_CASES = {
    "ctrnn": lambda: (Toy(), ctrnn(Toy()), Backprop(), categorical()),
    "lru-gaussian": lambda: (
        Toy(continuous=True),
        lru(Toy(continuous=True)),
        Backprop(),
        gaussian(0.0),
    ),
    "ctrnn-alignment": lambda: (
        Toy(),
        ctrnn(Toy()),
        FeedbackAlignment(key=jax.random.key(13)),
        categorical(),
    ),
}


def record_episode(alg: RTRRL, env: Toy, num_steps: int, seed: int = 0):
    """Run one environment: the states, the inputs ``x_t`` and the actions ``a_t``."""
    state = jit_init(alg, env, jax.random.key(seed), 1)
    states, inputs, actions = [state], [], []
    for t in range(num_steps):
        carry = env_slice(state, 0)
        inputs.append(
            meta_input(
                carry.obs,
                carry.prev_action,
                carry.prev_reward,
                carry.episode_start,
                env.action_space,
            )
        )
        state, _ = jit_step(alg, state, env, jax.random.key(100 + t))
        assert not bool(state.envs.episode_start[0]), "the episode must not end here"
        actions.append(state.envs.prev_action[0])
        states.append(state)
    return states, inputs, actions


@eqx.filter_jit
def reference_traces(params, fixed, inputs, actions, scales=None):
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
