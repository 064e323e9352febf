"""Pieces of the agent that a learner composes: how rewards and observations are normalised."""

from ._normalization import (
    AbstractRewardScale as AbstractRewardScale,
    ObservationNormalizer as ObservationNormalizer,
    ReturnRMS as ReturnRMS,
    ReturnStd as ReturnStd,
)
