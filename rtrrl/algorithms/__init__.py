"""Learners: `RTRRL` (online recurrent actor-critic); baselines build on the same pieces."""

from ._rtrrl import RTRRL as RTRRL
from ._rtrrl_state import (
    AgentParams as AgentParams,
    EnvCarry as EnvCarry,
    RTRRLState as RTRRLState,
    StepMetrics as StepMetrics,
    Traces as Traces,
)
