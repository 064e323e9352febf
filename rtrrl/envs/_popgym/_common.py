"""Shared pieces of the POPGym JAX ports: registration of the three difficulties, encodings."""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from ..._types import Array, Float, Int
from .._base import AbstractEnvironment, default_float
from .._registry import EnvSpec, register

DIFFICULTIES = ("Easy", "Medium", "Hard")


def popgym_id(task: str, difficulty: str) -> str:
    """The id the `popgym` package registers, e.g. ``popgym-RepeatPreviousEasy-v0``."""
    return f"popgym-{task}{difficulty}-v0"


def register_task(
    task: str,
    factory: Callable[[str], AbstractEnvironment],
    description: str,
) -> None:
    """Register ``popgym-{task}{Easy,Medium,Hard}-v0``.

    Arguments:
        task: the task's name exactly as in the popgym id (popgym spells
            ``VelocityOnlyCartpole`` with a lower-case "p"; keep popgym's spelling).
        factory: ``factory(difficulty) -> AbstractEnvironment`` for ``difficulty`` in
            `DIFFICULTIES`.
        description: one line for the ``rtrrl envs`` table.
    """
    for difficulty in DIFFICULTIES:
        # The difficulty is part of the id, so the registered factory takes no user options.
        build = functools.partial(factory, difficulty)
        register(EnvSpec(popgym_id(task, difficulty), "popgym", build, description))


def one_hot_concat(values: Int[Array, " n"], sizes: Sequence[int]) -> Float[Array, " total"]:
    """Encode a `MultiDiscrete`/`Tuple(Discrete...)` observation as concatenated one-hots.

    POPGym's baselines feed discrete observations one-hot encoded; every port uses this one
    encoding so that observation sizes are ``sum(sizes)``.
    """
    parts = [jax.nn.one_hot(values[i], n, dtype=default_float()) for i, n in enumerate(sizes)]
    return jnp.concatenate(parts)
