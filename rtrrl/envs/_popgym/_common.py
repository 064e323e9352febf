"""What every POPGym port shares: its ids and registration, difficulty tables, encodings.

Each port is one module (``_<task>.py``) that builds its environment from a difficulty name
and calls `register_task` once; the helpers here keep the ids, the difficulty errors and the
observation encoding the same across all of them.
"""

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Float, Int
from .._base import AbstractEnvironment, default_float
from .._registry import EnvSpec, register

DIFFICULTIES = ("Easy", "Medium", "Hard")

_Config = TypeVar("_Config")


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


def difficulty_config(task: str, difficulty: str, table: Mapping[str, _Config]) -> _Config:
    """``table[difficulty]``: a port's settings (deck count, board size, time limit, ...).

    Ports are also built directly (``RepeatFirst("Hard")``), not only through the registry,
    so a misspelt difficulty gets a `ValueError` naming the task and the valid difficulties
    rather than a bare `KeyError`.
    """
    if difficulty not in table:
        raise ValueError(
            f"{task}: unknown difficulty {difficulty!r}; expected one of {list(DIFFICULTIES)}."
        )
    return table[difficulty]


def one_hot_concat(values: Int[Array, " n"], sizes: Sequence[int]) -> Float[Array, " total"]:
    """Encode a `MultiDiscrete`/`Tuple(Discrete...)` observation as concatenated one-hots.

    ``values[i]`` in ``[0, sizes[i])`` becomes a one-hot of length ``sizes[i]``; the result
    has length ``sum(sizes)``. POPGym's baselines feed discrete observations one-hot encoded,
    and every port uses this one encoding so that the observation sizes agree.
    """
    parts = [jax.nn.one_hot(values[i], n, dtype=default_float()) for i, n in enumerate(sizes)]
    return jnp.concatenate(parts)


def discrete_action(action: Int[ArrayLike, ""]) -> Int[Array, ""]:
    """The action as an int32 scalar.

    Card ids and counters are int32; casting the action once keeps every comparison clean
    under strict dtype promotion whatever integer type the caller sends.
    """
    return jnp.asarray(action).astype(jnp.int32)
