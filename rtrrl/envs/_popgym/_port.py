"""Helpers shared by the group-A POPGym ports (memory and card tasks)."""

from collections.abc import Mapping
from typing import TypeVar

import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Int
from ._common import DIFFICULTIES

_Config = TypeVar("_Config")


def difficulty_config(task: str, difficulty: str, table: Mapping[str, _Config]) -> _Config:
    """``table[difficulty]``, or a `ValueError` naming the task and the valid difficulties."""
    if difficulty not in table:
        raise ValueError(
            f"{task}: unknown difficulty {difficulty!r}; expected one of {list(DIFFICULTIES)}."
        )
    return table[difficulty]


def discrete_action(action: Int[ArrayLike, ""]) -> Int[Array, ""]:
    """The action as an int32 scalar.

    Card ids and counters are int32; casting the action once keeps every comparison clean
    under strict dtype promotion whatever integer type the caller sends.
    """
    return jnp.asarray(action).astype(jnp.int32)
