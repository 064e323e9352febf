"""Typed state, rollout segment and loss terms of the PPO baseline: named Modules, not tuples."""

from typing import Any

import equinox as eqx

from .._types import Array, Bool, Float, Int, PyTree, Scalar, Shaped
from ..envs import RunningMeanStd
from ._rtrrl_state import AgentParams


class PPOEnvCarry(eqx.Module):
    """The per-environment part of the PPO state (leading axis: environments).

    - ``obs``: ``o_t``, the observation the agent reads next;
    - ``prev_action``, ``prev_reward``: ``a_{t-1}`` (as executed: clipped into the action box)
      and (scaled) ``r_t`` of the Meta-RL input;
    - ``episode_start``: ``o_t`` is an episode's first observation. The hidden state is
      reset to ``h_0`` *when it is read* at such a step, both while acting and when the loss
      re-runs the cell, so the two unrolls are the same computation;
    - ``hidden``: ``h_{t-1}``, the cell state after the last step (not yet reset);
    - ``discounted_return``: running ``G ← γG + r`` used by reward scaling (restarted after a
      terminal state only, as in RTRRL and `rtrrl.envs.NormalizeReward`).
    """

    env_state: PyTree[Any]
    obs: Float[Array, " obs"]
    prev_action: Array
    prev_reward: Scalar
    episode_start: Bool[Array, ""]
    hidden: Array
    discounted_return: Scalar


class PPOState(eqx.Module):
    """Everything `PPO.step` reads and returns.

    ``params`` and ``opt_state`` are shared by all environments; ``envs`` has a leading axis
    of ``num_envs``; ``return_stats`` is the running variance of the discounted return over
    all environments, by which rewards are divided (`PPO.scale_rewards`).
    """

    params: AgentParams
    opt_state: PyTree[Any]
    envs: PPOEnvCarry
    return_stats: RunningMeanStd
    iteration: Int[Array, ""]


class Segment(eqx.Module):
    """One rollout segment, what the PPO loss reads (leading axes: environment, time).

    ``initial_hidden`` is the cell state each environment carried into the segment: the loss
    re-runs the cell from it over ``inputs``, resetting to ``h_0`` wherever
    ``episode_start`` is set, so gradients flow through time within each episode. The
    remaining fields are the rollout's actions, their log-probabilities and value estimates
    under the parameters that acted, and the GAE advantages and returns computed from them.
    """

    initial_hidden: Shaped[Array, "env state"]
    inputs: Float[Array, "env time input"]
    episode_start: Bool[Array, "env time"]
    actions: Shaped[Array, "env time *action"]
    log_probs: Float[Array, "env time"]
    values: Float[Array, "env time"]
    advantages: Float[Array, "env time"]
    returns: Float[Array, "env time"]


class LossTerms(eqx.Module):
    """The parts of one PPO loss evaluation (for diagnostics).

    ``policy``: clipped surrogate loss; ``value``: (clipped) value loss; ``entropy``: mean
    policy entropy; ``approx_kl``: ``E[(ρ - 1) - log ρ]`` (Schulman's low-variance
    estimator of KL(old ‖ new)); ``clip_fraction``: share of steps with ``|ρ - 1| > ε``.
    """

    policy: Scalar
    value: Scalar
    entropy: Scalar
    approx_kl: Scalar
    clip_fraction: Scalar
