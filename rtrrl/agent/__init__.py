"""Pieces of the agent that a learner composes: how rewards and observations are normalised,
and how its step sizes change over a run."""

from ._normalization import (
    AbstractRewardScale as AbstractRewardScale,
    ObservationNormalizer as ObservationNormalizer,
    ReturnRMS as ReturnRMS,
    ReturnStd as ReturnStd,
)
from ._schedule import LinearDecay as LinearDecay
