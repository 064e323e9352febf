"""Typed state of the RTRRL learner: named Modules, not a long carry tuple."""

from typing import Any

import equinox as eqx

from .._types import Array, Bool, Float, Int, PyTree, Scalar
from ..cells import AbstractCell
from ..envs import RunningMeanStd
from ..heads import AbstractActor, Critic, FeedbackMatrices


class AgentParams(eqx.Module):
    """Everything trained: the cell, the actor and the critic (shared by all environments)."""

    cell: AbstractCell
    actor: AbstractActor
    critic: Critic


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
