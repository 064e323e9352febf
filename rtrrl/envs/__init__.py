"""Environments: one functional interface over gymnax, POPGym (JAX ports) and brax."""

from ._base import (
    AbstractEnvironment as AbstractEnvironment,
    AbstractEpisodicEnvironment as AbstractEpisodicEnvironment,
    EpisodeState as EpisodeState,
    StepInfo as StepInfo,
)
from ._registry import EnvSpec as EnvSpec, make as make, names as names, register as register
from ._spaces import ActionSpace as ActionSpace, Box as Box, Discrete as Discrete
