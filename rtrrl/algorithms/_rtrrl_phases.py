"""The phases of one RTRRL step, each a small pure function over named records.

`RTRRL.step` runs them in this order (per environment unless said otherwise):

1. `act`: read ``x_t``, advance the cell and its estimator, sample ``a_t``, value ``v_t``;
2. `step_environment`: the environment executes ``a_t``;
3. (batch) the agent's reward scale turns ``r_{t+1}`` into the scaled reward;
4. `td_error`: ``δ = r - r̄ + γ (1 - terminated) v_{t+1} - v_t``;
5. `step_gradients`: ``∇v̂``, ``∇ log π``, ``∇H`` and the cell's ``Ĵᵀ(...)``, clipped together;
6. `traces_and_directions`: the eligibility traces and the ascent directions;
7. (batch) `descent`: the batch mean of the directions, negated, for the optimiser (with the
   cell's entropy term formed over the batch by the estimator, where it can do so cheaply);
8. `next_carry`: episode ends restart the memory.

They are module-level functions of the learner ``alg`` (an `RTRRL`) so that each can be read,
tested and replaced on its own.
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._batch_mean import batch_mean_of
from .._types import Array, Bool, Float, PRNGKey, PyTree, Scalar
from ..agent import AgentParams
from ..envs import AbstractEnvironment, RunningMeanStd
from ..estimators import key_argument
from ..heads import Critic
from ._rtrrl_optimizer import trainable
from ._rtrrl_state import Acted, EnvCarry, Learned, StepGradients, Traces


def tree_where(condition: Bool[Array, ""], on_true: PyTree[Any], on_false: PyTree[Any]):
    """`on_true` where `condition`, else `on_false`, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), on_true, on_false)


def _clip_factor(norm_squared: Scalar, max_norm: float) -> Scalar:
    """``min(1, max_norm / ‖g‖₂)`` from ``‖g‖₂²``: the factor of optax's global-norm clip."""
    norm = jnp.sqrt(norm_squared)
    return jnp.where(norm < max_norm, jnp.ones_like(norm), max_norm / norm)


def _critic_grad(critic: Critic, features: Array) -> PyTree[Any]:
    """``∇v̂ = (y, 1)``, shaped like the critic's trainable leaves (``v̂ = wᵀ y + b``)."""
    one = jnp.ones((), features.dtype)
    return eqx.tree_at(lambda h: (h.weight, h.bias), trainable(critic), (features, one))


def _combination(a: PyTree[Any], wa: Scalar | float, b: PyTree[Any], wb: Scalar | float):
    """``wa · a + wb · b``."""
    return jax.tree.map(lambda x, y: wa * x + wb * y, a, b)


def fresh_traces(alg, params: AgentParams) -> Traces:
    """The zero traces of a new episode."""
    return Traces(
        critic=alg.critic_trace.init(trainable(params.critic)),
        actor=alg.actor_trace.init(trainable(params.actor)),
        cell=alg.cell_trace.init(trainable(params.cell)),
    )


def act(
    alg,
    params: AgentParams,
    observation_stats: RunningMeanStd | None,
    env: AbstractEnvironment,
    carry: EnvCarry,
    key: PRNGKey,
) -> Acted:
    """Read ``x_t``, advance the cell and the estimator, sample ``a_t``; value ``v_t``."""
    agent = alg.agent
    obs = agent.observation(observation_stats, carry.obs)
    x = agent.input(obs, carry.prev_action, carry.prev_reward, carry.episode_start, env)
    init_key = step_key = None
    if alg.estimator.stochastic:
        # Its own keys, folded out of this step's action key (see AbstractGradientEstimator).
        estimator_key = jax.random.fold_in(key, 1)
        init_key, step_key = (jax.random.fold_in(estimator_key, i) for i in (0, 1))
    # A new episode's estimator state starts here (the lazy reset of `next_carry`).
    estimator = tree_where(
        carry.episode_start,
        alg.estimator.init(params.cell, carry.hidden, x, **key_argument(alg.estimator, init_key)),
        carry.estimator,
    )
    hidden, estimator = alg.estimator.step(
        params.cell, carry.hidden, x, estimator, **key_argument(alg.estimator, step_key)
    )
    features = params.cell.output(hidden)
    z = params.actor.preactivation(features)
    action = params.actor.sample_from(z, key=key)
    return Acted(
        hidden=hidden,
        estimator=estimator,
        features=features,
        preactivation=z,
        action=action,
        executed=agent.env_action(params.actor, action),
        value=params.critic(features),
    )


def step_environment(env: AbstractEnvironment, carry: EnvCarry, acted: Acted, key: PRNGKey):
    """The environment executes the clipped action: ``(obs, env_state, reward, done, info)``."""
    return env.step(key, carry.env_state, acted.executed)


def td_error(
    alg,
    params: AgentParams,
    observation_stats: RunningMeanStd | None,
    env: AbstractEnvironment,
    acted: Acted,
    reward: Scalar,
    info,
    average_reward: Scalar,
) -> tuple[Scalar, Scalar]:
    """``(δ, v_{t+1})`` with ``δ = r - r̄ + γ (1 - terminated) v_{t+1} - v_t``.

    ``v_{t+1} = v̂(output(cell(h_t, x_{t+1})))`` reads the observation the step produced
    before any automatic reset, so a time-limit cut bootstraps and a terminal state does not.
    """
    agent = alg.agent
    obs_next = agent.observation(observation_stats, info.final_observation)
    x_next = agent.input(obs_next, acted.executed, reward, jnp.zeros((), bool), env)
    value_next = params.critic(params.cell.output(params.cell(acted.hidden, x_next)))
    not_terminal = 1.0 - info.terminated.astype(acted.value.dtype)
    delta = reward - average_reward + alg.gamma * not_terminal * value_next - acted.value
    return delta, value_next


def step_gradients(
    alg, params: AgentParams, matrices, acted: Acted, *, entropy_in_batch: bool = False
) -> StepGradients:
    """This step's gradients of ``v̂``, ``log π(a_t)`` and ``H``, and the cell's share.

    The heads' output errors ``e = ∂/∂z`` reach the features as ``g = Mᵀ e`` through the
    feedback matrices ``M`` (the heads' weights under `Backprop`); the estimator turns them
    into ``Ĵᵀ (η_C g_C + η_A g_A)`` and ``Ĵᵀ g_H``. With ``max_grad_norm``, the gradients of
    ``v̂ + log π`` (all parameters together) are clipped to that global norm. With
    `entropy_in_batch` (see `entropy_over_batch`), ``Ĵᵀ g_H`` is left to the batch mean, and
    only ``g_H`` is handed on.
    """
    matrix_actor, matrix_critic = matrices
    actor = params.actor
    error_log_prob = jax.grad(actor.log_prob_from)(acted.preactivation, acted.action)
    error_entropy = jax.grad(actor.entropy_from)(acted.preactivation)
    # Parameter gradients of the linear heads: ∇v̂ = (y, 1), ∇ log π = (e yᵀ, e).
    grad_value = _critic_grad(params.critic, acted.features)
    grad_log_prob = actor.parameter_gradient(acted.features, error_log_prob)
    grad_entropy = actor.parameter_gradient(acted.features, error_entropy)
    # Ĵᵀ c for the features' cotangents of v̂ + η_A log π and of the entropy. Two calls, not one
    # vmapped over both: XLA then fuses each into its consumer; an estimator whose `gradients`
    # shares work between cotangents gets one call. `readout_error` keeps the part of an actor
    # error that the features produced.
    critic_error = matrix_critic[0]
    if not (isinstance(alg.eta_critic, int | float) and alg.eta_critic == 1.0):
        # (A concrete 1 is skipped: the paper's update stays the same program.)
        critic_error = alg.eta_critic * critic_error
    to_features = critic_error + alg.eta_actor * (
        matrix_actor.T @ actor.readout_error(error_log_prob)
    )
    to_features_entropy = matrix_actor.T @ actor.readout_error(error_entropy)
    entropy_cotangent = to_features_entropy if entropy_in_batch else None
    grad_cell_entropy = None
    if alg.estimator.shares_cotangent_work:
        # One call for all cotangents (TruncatedBPTT: one unroll and one backward pass), and
        # the clipping norm from the gradient it formed rather than from another pass.
        rows = [to_features] if entropy_in_batch else [to_features, to_features_entropy]
        stacked = alg.estimator.gradients(params.cell, acted.estimator, jnp.stack(rows))
        grad_cell = jax.tree.map(lambda g: g[0], stacked)
        if not entropy_in_batch:
            grad_cell_entropy = jax.tree.map(lambda g: g[1], stacked)
    else:
        grad_cell = alg.estimator.gradient(params.cell, acted.estimator, to_features)
        if not entropy_in_batch:
            grad_cell_entropy = alg.estimator.gradient(
                params.cell, acted.estimator, to_features_entropy
            )
    if alg.max_grad_norm is not None:
        # Clip before the traces; δ still scales the traces' sum, so TD keeps its fixed point.
        # The estimator gives the cell's part of the norm (RFLO without forming Ĵᵀc).
        norm_squared = optax.tree.norm((grad_value, grad_log_prob), squared=True)
        if alg.estimator.shares_cotangent_work:
            norm_squared += optax.tree.norm(grad_cell, squared=True)
        else:
            norm_squared += alg.estimator.gradient_norm_squared(
                params.cell, acted.estimator, to_features
            )
        factor = _clip_factor(norm_squared, alg.max_grad_norm)
        grad_value, grad_log_prob, grad_cell = jax.tree.map(
            lambda g: factor * g, (grad_value, grad_log_prob, grad_cell)
        )
    return StepGradients(
        grad_value, grad_log_prob, grad_entropy, grad_cell, grad_cell_entropy, entropy_cotangent
    )


def traces_and_directions(
    alg,
    params: AgentParams,
    carry: EnvCarry,
    grads: StepGradients,
    delta: Scalar,
    value: Scalar,
) -> tuple[Traces, AgentParams]:
    """The eligibility traces after this step, and the ascent directions they give.

    ``e ← γλ e + g`` for each of critic, actor and cell (the critic's trace may be dutch);
    directions ``δ e_C`` (or the dutch form), ``δ e_A + η_H ∇H`` and ``δ e_R + η_H Ĵᵀ g_H``
    (``δ e_R`` alone when the estimator adds ``Ĵᵀ g_H`` over the batch: see `descent`).
    """
    # A new episode's traces start here (the lazy reset of `next_carry`).
    traces = tree_where(carry.episode_start, fresh_traces(alg, params), carry.traces)
    critic = alg.critic_trace.update(
        traces.critic, grads.value, alg.gamma * alg.lambda_critic, alg.lr_critic
    )
    actor = alg.actor_trace.update(
        traces.actor, grads.log_prob, alg.gamma * alg.lambda_actor, alg.lr_actor
    )
    cell = alg.cell_trace.update(traces.cell, grads.cell, alg.gamma * alg.lambda_cell, alg.lr_cell)
    no_value = jnp.zeros_like(value)  # the actor's and cell's traces have no value correction
    cell_direction = alg.cell_trace.direction(cell, grads.cell, delta, no_value, no_value)
    if grads.cell_entropy is not None:
        cell_direction = _combination(cell_direction, 1.0, grads.cell_entropy, alg.eta_entropy)
    directions = AgentParams(
        cell=cell_direction,
        actor=_combination(
            alg.actor_trace.direction(actor, grads.log_prob, delta, no_value, no_value),
            1.0,
            grads.entropy,
            alg.eta_entropy,
        ),
        critic=alg.critic_trace.direction(critic, grads.value, delta, value, carry.previous_value),
    )
    return Traces(critic, actor, cell), directions


def entropy_over_batch(alg, params: AgentParams, num_envs: int) -> bool:
    """Whether the cell's entropy term ``Ĵᵀ g_H`` is formed over the batch (`descent`) rather
    than per environment: when the estimator forms batch means cheaply
    (``batches_gradient_mean``) and there are several environments to average."""
    return num_envs > 1 and alg.estimator.batches_gradient_mean(params.cell)


def learn(
    alg,
    params: AgentParams,
    observation_stats: RunningMeanStd | None,
    matrices,
    env: AbstractEnvironment,
    average_reward: Scalar,
    carry: EnvCarry,
    acted: Acted,
    reward: Scalar,
    info,
    *,
    entropy_in_batch: bool = False,
) -> Learned:
    """TD error, gradients, traces and directions of one environment."""
    delta, value_next = td_error(
        alg, params, observation_stats, env, acted, reward, info, average_reward
    )
    grads = step_gradients(alg, params, matrices, acted, entropy_in_batch=entropy_in_batch)
    traces, directions = traces_and_directions(alg, params, carry, grads, delta, acted.value)
    return Learned(directions, traces, delta, value_next, grads.entropy_cotangent)


def descent(
    alg,
    params: AgentParams,
    directions: AgentParams,
    estimator_states: PyTree[Any] = None,
    entropy_cotangents: Float[Array, "envs features"] | None = None,
) -> AgentParams:
    """The optimiser's descent direction: minus the batch mean of the ascent directions.

    With `entropy_cotangents` (the ``g_H`` of every environment, when the estimator forms
    batch means itself and the cell's directions leave out their entropy term), the cell's
    mean gains ``η_H · mean_b Ĵ_bᵀ g_{H,b}`` from ``alg.estimator.mean_gradient`` over
    `estimator_states` (every environment's ``Ĵ_t``).
    """
    mean = jax.tree.map(batch_mean_of, directions)
    if entropy_cotangents is not None:
        entropy = alg.estimator.mean_gradient(params.cell, estimator_states, entropy_cotangents)
        mean = eqx.tree_at(
            lambda p: p.cell, mean, _combination(mean.cell, 1.0, entropy, alg.eta_entropy)
        )
    return jax.tree.map(jnp.negative, mean)


def next_carry(
    alg,
    params: AgentParams,
    env: AbstractEnvironment,
    carry: EnvCarry,
    acted: Acted,
    learned: Learned,
    env_state: PyTree[Any],
    obs: Float[Array, " obs"],
    reward: Scalar,
    done: Bool[Array, ""],
    discounted: Scalar,
) -> EnvCarry:
    """The environment's carry for the next step; an episode end restarts the memory.

    The new episode's hidden state is built from the updated `params`. The estimator state
    and traces are reset lazily: they keep this step's values, and the next step replaces
    them (``episode_start`` is set) inside its own pass over them. Resetting them here costs
    one more pass over each O(N²) array per step: 1.6× the step time at batch 64.
    """
    del carry
    prev_action = jnp.where(done, env.action_space.zero(), acted.executed)
    prev_reward = jnp.where(done, jnp.zeros((), obs.dtype), reward)
    hidden = jnp.where(done, params.cell.init_hidden(), acted.hidden)
    return EnvCarry(
        env_state=env_state,
        obs=obs,
        prev_action=prev_action,
        prev_reward=prev_reward,
        episode_start=done,
        hidden=hidden,
        estimator=acted.estimator,
        traces=learned.traces,
        previous_value=jnp.where(done, jnp.zeros_like(learned.value_next), learned.value_next),
        discounted_return=discounted,
    )
