"""Typed records of the RTRRL learner: its state, and what each phase of a step hands to the
next (named Modules, not positional tuples)."""

from typing import Any

import equinox as eqx

from .._types import Array, Bool, Float, Int, PyTree, Scalar
from ..agent import AgentParams
from ..envs import RunningMeanStd
from ..heads import FeedbackMatrices


class Traces(eqx.Module):
    """Eligibility traces ``e_C``, ``e_A``, ``e_R`` of one environment, shaped like the
    trainable leaves of `critic`, `actor` and `cell`."""

    critic: PyTree[Any]
    actor: PyTree[Any]
    cell: PyTree[Any]


class EnvCarry(eqx.Module):
    """The per-environment part of the training state (leading axis: environments).

    - ``obs``: ``o_t``, the observation the agent reads next;
    - ``prev_action``, ``prev_reward``: ``a_{t-1}`` (as the environment executed it, i.e.
      clipped into the action box) and (scaled) ``r_t`` of the Meta-RL input;
    - ``episode_start``: ``o_t`` is an episode's first observation (the Meta-RL input then
      zeroes the previous action and reward);
    - ``hidden``, ``estimator``: ``h_{t-1}`` and the estimator's state ``Ĵ_{t-1}``;
    - ``traces``: the eligibility traces. When ``episode_start`` is set, ``estimator`` and
      ``traces`` still hold the previous episode's last values: the next step starts them
      afresh (a lazy reset, which saves a pass over these O(N²) arrays every step);
    - ``previous_value``: ``V_old`` of true online TD(λ), the bootstrap value of ``h_t``
      computed one step earlier (zero at an episode's start);
    - ``discounted_return``: running ``G ← γG + r`` used by reward scaling (restarted after
      a terminal state only, as in `rtrrl.envs.NormalizeReward`).
    """

    env_state: PyTree[Any]
    obs: Float[Array, " obs"]
    prev_action: Array
    prev_reward: Scalar
    episode_start: Bool[Array, ""]
    hidden: Array
    estimator: PyTree[Any]
    traces: Traces
    previous_value: Scalar
    discounted_return: Scalar


class RTRRLState(eqx.Module):
    """Everything `RTRRL.step` reads and returns.

    ``params`` and ``opt_state`` are shared; ``envs`` has a leading axis of ``num_envs``.
    ``feedback`` holds the fixed feedback-alignment matrices (``None`` for `Backprop`);
    ``return_stats`` the running mean and variance of the discounted return over all
    environments, from which `RTRRL.reward_scale` computes the reward divisor;
    ``observation_stats`` the running statistics of the observations (`RTRRL.observation_norm`;
    ``None`` without it).
    """

    params: AgentParams
    opt_state: PyTree[Any]
    feedback: FeedbackMatrices | None
    envs: EnvCarry
    return_stats: RunningMeanStd
    average_reward: Scalar
    iteration: Int[Array, ""]
    observation_stats: RunningMeanStd | None = None


class Acted(eqx.Module):
    """What the *act* phase leaves for one environment: ``h_t`` and the estimator's ``Ĵ_t``
    after reading ``x_t``, the features ``y_t``, the actor's pre-activation ``z_t``, the
    sampled action ``a_t``, the ``executed`` one (clipped into the action box) and
    ``v_t = v̂(y_t)``."""

    hidden: Array
    estimator: PyTree[Any]
    features: Float[Array, " features"]
    preactivation: Array
    action: Array
    executed: Array
    value: Scalar


class StepGradients(eqx.Module):
    """This step's gradients of one environment, before the traces take them in.

    ``value``: ``∇v̂`` (critic-shaped); ``log_prob``, ``entropy``: ``∇ log π(a_t)`` and ``∇H``
    (actor-shaped); ``cell``: ``Ĵ_tᵀ (η_C g_C + η_A g_A)`` and ``cell_entropy``: ``Ĵ_tᵀ g_H``
    (cell-shaped), where ``g`` are the heads' output errors carried to the features by the
    feedback matrices. ``value``, ``log_prob`` and ``cell`` are clipped together to the
    learner's ``max_grad_norm``.

    When the estimator forms batch means of its gradients itself
    (``estimator.batches_gradient_mean(cell)``) and the learner steps several environments,
    ``cell_entropy`` is ``None`` and ``entropy_cotangent`` holds ``g_H``: the learner asks the
    estimator for the batch mean of ``Ĵ_tᵀ g_H`` over all environments at once. Otherwise
    ``entropy_cotangent`` is ``None``.
    """

    value: PyTree[Any]
    log_prob: PyTree[Any]
    entropy: PyTree[Any]
    cell: PyTree[Any]
    cell_entropy: PyTree[Any] | None
    entropy_cotangent: Float[Array, " features"] | None = None


class Learned(eqx.Module):
    """What the *learn* phases leave for one environment: the ascent ``directions`` (shaped
    like the trainable `AgentParams`), the new ``traces``, the TD error ``δ`` and the
    bootstrap value ``v_{t+1}``; ``entropy_cotangent`` as in `StepGradients` (the cell's
    direction then leaves out the entropy term, which the batch mean adds)."""

    directions: AgentParams
    traces: Traces
    td_error: Scalar
    value_next: Scalar
    entropy_cotangent: Float[Array, " features"] | None = None
