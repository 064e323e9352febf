"""Helpers shared by the estimators: parameter flattening, gradient trees, error messages."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .._types import Array, Float, Grads
from ..cells import AbstractCell


class IncompatibleCellError(ValueError):
    """An estimator was paired with a cell it cannot serve (the message names both)."""


def unsupported(
    estimator: eqx.Module, cell: AbstractCell, reason: str, use: str
) -> IncompatibleCellError:
    """The error every estimator raises at `init` for a cell it cannot serve."""
    return IncompatibleCellError(
        f"{type(estimator).__name__} cannot serve {type(cell).__name__}: {reason}. "
        f"Use {use} instead."
    )


def check_step_inputs(
    estimator: eqx.Module, method: str, cell: AbstractCell, hidden: Any, x: Any
) -> None:
    """`AbstractCell.check_step_inputs`, with the error naming ``Estimator.method``."""
    cell.check_step_inputs(hidden, x, caller=f"{type(estimator).__name__}.{method}")


def check_cotangent(estimator: eqx.Module, method: str, cell: AbstractCell, cotangent: Any) -> None:
    """The cotangent of the features has shape ``(cell.feature_size,)`` (else a `ValueError`
    naming ``Estimator.method``)."""
    caller = f"{type(estimator).__name__}.{method}"
    cell.check_features(cotangent, name="cotangent", caller=caller)


def check_cotangents(
    estimator: eqx.Module, method: str, cell: AbstractCell, cotangents: Any
) -> None:
    """Stacked cotangents have shape ``(K, cell.feature_size)`` with ``K >= 1`` (else a
    `ValueError` naming ``Estimator.method``)."""
    shape = jnp.shape(cotangents)
    if len(shape) != 2 or shape[0] < 1 or shape[1] != cell.feature_size:
        raise ValueError(
            f"{type(estimator).__name__}.{method}: `cotangents` must have shape (K, "
            f"{cell.feature_size}) (K >= 1 rows of the cell's features), got {shape}."
        )


def stack_rows(rows: list[Any]) -> Any:
    """Per-row gradients (PyTrees of one structure) stacked leafwise: a leading ``K`` axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *rows)


def require_real_params(estimator: eqx.Module, cell: AbstractCell) -> None:
    """Generic estimators flatten the parameters into one real vector."""
    leaves = jax.tree.leaves(eqx.filter(cell, eqx.is_inexact_array))
    if any(jnp.iscomplexobj(leaf) for leaf in leaves):
        raise unsupported(
            estimator,
            cell,
            "it has complex parameters (store real and imaginary parts as real leaves, as LRU "
            "does)",
            "a cell with real parameters",
        )


def flat_params(
    cell: AbstractCell,
) -> tuple[Float[Array, " params"], Callable[[Array], Any], Any]:
    """``(θ, unravel, static)``: the trainable leaves as one vector, and how to rebuild them.

    ``eqx.combine(unravel(θ), static)`` is the cell again; ``unravel(g)`` turns a flat gradient
    into a PyTree shaped like ``eqx.filter(cell, eqx.is_inexact_array)``.
    """
    params, static = eqx.partition(cell, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)
    return flat, unravel, static


def grads_like(cell: AbstractCell, where: Callable[[Any], Any], values: tuple[Array, ...]) -> Grads:
    """A PyTree shaped like ``eqx.filter(cell, eqx.is_inexact_array)`` with `values` at `where`."""
    return eqx.tree_at(where, eqx.filter(cell, eqx.is_inexact_array), values)
