"""Learners: `RTRRL` (online recurrent actor-critic); baselines build on the same pieces."""

from ._abstract import AbstractAlgorithm as AbstractAlgorithm, StepMetrics as StepMetrics
from ._evaluate import first_episode_returns as first_episode_returns
from ._rtrrl import RTRRL as RTRRL
from ._rtrrl_state import (
    AgentParams as AgentParams,
    EnvCarry as EnvCarry,
    RTRRLState as RTRRLState,
    Traces as Traces,
)
