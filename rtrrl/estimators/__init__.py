"""Online gradient estimators: `RTRL`, `RFLO`, `LocalMSE`, `TruncatedBPTT`."""

from ._abstract import AbstractGradientEstimator as AbstractGradientEstimator
