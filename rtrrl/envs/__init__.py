"""Environments: one functional interface over gymnax, POPGym (JAX ports) and brax.

Importing this package registers every id (`names()`); gymnax and brax themselves are
imported only when one of their environments is made (`make`).
"""

from . import _brax, _gymnax, _popgym as _popgym
from ._base import (
    AbstractEnvironment as AbstractEnvironment,
    AbstractEpisodicEnvironment as AbstractEpisodicEnvironment,
    EpisodeState as EpisodeState,
    StepInfo as StepInfo,
    default_float as default_float,
)
from ._brax import BraxEnvironment as BraxEnvironment
from ._gymnax import GymnaxEnvironment as GymnaxEnvironment
from ._meta_rl import meta_rl_input as meta_rl_input, meta_rl_input_size as meta_rl_input_size
from ._normalize_reward import (
    NormalizeReward as NormalizeReward,
    NormalizeRewardState as NormalizeRewardState,
)
from ._observation_mask import (
    ObservationMask as ObservationMask,
    named_masks as named_masks,
    register_masks as register_masks,
)
from ._registry import (
    EnvSpec as EnvSpec,
    make as make,
    names as names,
    register as register,
    spec as spec,
)
from ._running_stats import RunningMeanStd as RunningMeanStd
from ._spaces import ActionSpace as ActionSpace, Box as Box, Discrete as Discrete
from ._table import env_table as env_table
from ._vector import VectorEnv as VectorEnv
from ._wrapper import AbstractWrapper as AbstractWrapper

_gymnax.register_all()
_brax.register_all()
