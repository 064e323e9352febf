"""The agent that learners train: `Agent` (input pipeline, heads, policy, evaluation), its
trained `AgentParams`, how rewards and observations are normalised, how its step sizes change
over a run, and the evaluation rollouts."""

from ._agent import Agent as Agent
from ._normalization import (
    AbstractRewardScale as AbstractRewardScale,
    ObservationNormalizer as ObservationNormalizer,
    ReturnRMS as ReturnRMS,
    ReturnStd as ReturnStd,
)
from ._params import AgentParams as AgentParams
from ._rollout import (
    Policy as Policy,
    first_episode_returns as first_episode_returns,
    mean_over_rollout as mean_over_rollout,
)
from ._schedule import LinearDecay as LinearDecay
