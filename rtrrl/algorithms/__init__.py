"""Learners: `RTRRL` (online recurrent actor-critic); baselines (`PPO` with BPTT) build on the
same pieces."""

from ..agent import AgentParams as AgentParams, first_episode_returns as first_episode_returns
from ._abstract import AbstractAlgorithm as AbstractAlgorithm, StepMetrics as StepMetrics
from ._ppo import PPO as PPO
from ._ppo_losses import (
    clipped_surrogate_loss as clipped_surrogate_loss,
    generalized_advantages as generalized_advantages,
    value_loss as value_loss,
)
from ._ppo_state import (
    LossTerms as LossTerms,
    PPOEnvCarry as PPOEnvCarry,
    PPOState as PPOState,
    Segment as Segment,
)
from ._rtrrl import RTRRL as RTRRL
from ._rtrrl_state import (
    Acted as Acted,
    EnvCarry as EnvCarry,
    Learned as Learned,
    RTRRLState as RTRRLState,
    StepGradients as StepGradients,
    Traces as Traces,
)
