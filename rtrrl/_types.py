"""jaxtyping aliases shared across the package.

Dimension names used in signatures:

- ``input``: size of the cell input ``x_t`` (observation, previous action, previous reward);
- ``hidden``: number of neurons of a cell's state;
- ``features``: size of ``cell.output(hidden)``, what the heads read;
- ``params``: number of trainable scalars of a cell (flattened);
- ``obs``: observation size of an environment;
- single-name dims are written with a leading space (" hidden") so ruff does not read
  them as forward references;
- ``batch`` / ``time``: leading axes added by ``jax.vmap`` / ``jax.lax.scan``.
"""

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, Real, Shaped

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    _Leaf = TypeVar("_Leaf", default=Any)
    # jaxtyping's `PyTree` is deliberately an unresolvable type to a static checker, which
    # `pyright --verifytypes` counts as unknown in every signature that mentions it. To a
    # checker, ``PyTree`` and ``PyTree[Any]`` are `Any` (explicitly), ``PyTree[T]`` is
    # ``T | Any``; at runtime it is jaxtyping's `PyTree`, so the runtime checks are unchanged.
    PyTree: TypeAlias = Annotated[_Leaf | Any, "PyTree"]
else:
    from jaxtyping import PyTree

PRNGKey: TypeAlias = PRNGKeyArray
Scalar: TypeAlias = Float[Array, ""]
BoolScalar: TypeAlias = Bool[Array, ""]
IntScalar: TypeAlias = Int[Array, ""]
# A cell's hidden state. CTRNN: a real vector; LRU: a complex vector. Kept as `Shaped` so both fit.
Hidden: TypeAlias = Shaped[Array, " hidden"]
Input: TypeAlias = Float[Array, " input"]
Features: TypeAlias = Float[Array, " features"]
# Gradient PyTrees are shaped like ``eqx.filter(cell, eqx.is_inexact_array)``.
Grads: TypeAlias = PyTree[Any]

__all__ = [
    "Array",
    "Bool",
    "BoolScalar",
    "Features",
    "Float",
    "Grads",
    "Hidden",
    "Input",
    "Int",
    "IntScalar",
    "PRNGKey",
    "PyTree",
    "Real",
    "Scalar",
    "Shaped",
]
