r"""Structured estimator kernels, found through the cell's type.

An online estimator has a generic form that serves any cell (RTRL's dense influence matrix
``M_t ∈ R^{N×P}``, for instance) and, for cells with exploitable structure, a cheaper
*structured* form (RTRL on the diagonal `LRU` in O(N·I), RFLO's per-neuron traces on a `CTRNN`
in O(N²), ...). A structured form is a `Kernel`, registered under the estimator's *kind* and a
cell type. The estimators never name a cell: they call `find_kernel(kind, cell)`, which walks
``type(cell).__mro__`` (so a subclass of `CTRNN` gets the `CTRNN` kernels unless it registers
its own), and use their generic form (`RTRL`, `LocalMSE`, `SnAp1`) or raise `IncompatibleCellError`
(`RFLO`) when nothing is registered.

Kinds, and what a kernel registered under each must compute (``h_t = f_θ(h_{t-1}, x_t)``,
``y_t = output_θ(h_t)``, ``c`` the cotangent of ``y_t``):

- ``"rtrl"`` (`RTRL`): the exact influence ``M_t = (∂f/∂h) M_{t-1} + ∂f/∂θ``, so that the
  gradients summed over a sequence equal `jax.grad` of ``Σ_t c_tᵀ y_t`` (BPTT);
- ``"local-mse"`` (`LocalMSE`): the immediate Jacobian ``Ĵ_t = ∂f/∂θ`` only (SnAp-0), so that
  the gradient equals that of ``TruncatedBPTT(1)``;
- ``"rflo"`` (`RFLO`): a leaky per-neuron trace (Murray 2019): RTRL with ``∂f/∂h`` replaced by
  the cell's leak, exact when the recurrent weights are zero;
- ``"snap1"`` (`SnAp1`): the influence entries in the sparsity pattern of ``∂f/∂θ`` only,
  carried through the diagonal of ``∂f/∂h``:
  ``M_t[i, j] = (∂f/∂h)_t[i, i] M_{t-1}[i, j] + (∂f/∂θ)_t[i, j]`` (Menick et al. 2021, SnAp-1),
  exact when ``∂f/∂h`` is diagonal.

**Adding a structured cell** touches one place: a module next to
``rtrrl/estimators/_kernels/_ctrnn.py`` (imported by ``_kernels/__init__.py``; code outside
the package just imports its own module) that defines the state Module and the four functions
of each `Kernel`, then registers them::

    register_kernel("rtrl", MyCell, Kernel(MyState, my_init, my_step, my_gradient))
    register_kernel("local-mse", MyCell, Kernel(MyState, my_init, my_snap0_step, my_gradient))

No estimator is edited. Register when the module is imported, before any estimator is traced
with the cell: a function already compiled for a cell type (`jax.jit` caches on it) keeps the
form it was traced with. ``tests/estimators/test_kernels.py`` registers kernels for a cell of its own, and
the agreement tests of ``tests/estimators/test_estimators.py`` (against `jax.grad` in float64) are what a
new kernel should be checked with.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx

from ..cells import AbstractCell

KINDS: tuple[str, ...] = ("rtrl", "local-mse", "rflo", "snap1")
"""The estimator kinds a kernel can be registered under (see the module docstring)."""


@dataclasses.dataclass(frozen=True)
class Kernel:
    r"""The structured form of one estimator kind for one cell type.

    Four pure functions, each composing with `jax.jit`, `jax.vmap` and `jax.lax.scan`, and
    the type of the state they carry:

    - ``state_type``: the `eqx.Module` class `init` returns (its fields are the estimator's
      state PyTree, which checkpoints store: keep them fixed once released).
    - ``init(cell, hidden, x) -> state``: the state for an episode starting at ``hidden``
      (``h_0`` does not depend on ``θ``, so influences start at zero). ``x`` is the first input,
      ``(input,)``, for states whose shapes need the input size.
    - ``step(cell, hidden, x, state) -> (h_t, state)``: advances the cell,
      ``h_t = cell(hidden, x)`` (the same values as the cell's own call), and the state with it.
    - ``gradient(cell, state, c) -> grads``: the estimate of ``(d y_t/dθ)ᵀ c`` for the latest
      ``h_t``, with ``c`` of shape ``(features,)``; a PyTree shaped like
      ``eqx.filter(cell, eqx.is_inexact_array)``.
    - ``gradient_norm_squared(cell, state, c) -> scalar`` (optional): ``‖gradient(cell, state,
      c)‖₂²`` without forming the gradient. `None` (the default) forms it.
    - ``mean_gradient(cell, states, cs) -> grads`` (optional): ``(1/B) Σ_b gradient(cell,
      states_b, cs_b)`` for a batch of states (leading axis ``B`` on every leaf) and
      cotangents ``(B, features)``, when the batch mean has a cheaper form than ``B``
      gradients (a GEMM, say). `None` (the default): the estimator vmaps `gradient`, and
      learners keep one gradient per environment.

    The estimator checks the shapes of ``hidden``, ``x`` and ``c`` before calling a kernel.
    """

    state_type: type[eqx.Module]
    init: Callable[[Any, Any, Any], Any]
    step: Callable[[Any, Any, Any, Any], tuple[Any, Any]]
    gradient: Callable[[Any, Any, Any], Any]
    gradient_norm_squared: Callable[[Any, Any, Any], Any] | None = None
    mean_gradient: Callable[[Any, Any, Any], Any] | None = None


_KERNELS: dict[tuple[str, type[AbstractCell]], Kernel] = {}


def _check_kind(kind: str, caller: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"{caller}: `kind` must be one of {KINDS}, got {kind!r}.")


def register_kernel(
    kind: str, cell_type: type[AbstractCell], kernel: Kernel, *, replace: bool = False
) -> None:
    """Make `kernel` the `kind` estimator's form for `cell_type` and its subclasses.

    A second registration for the same ``(kind, cell_type)`` is refused (a `ValueError`)
    unless ``replace=True``. See the module docstring for what each kind must compute.
    """
    _check_kind(kind, "register_kernel")
    if not (isinstance(cell_type, type) and issubclass(cell_type, AbstractCell)):
        raise TypeError(
            f"register_kernel: `cell_type` must be a subclass of AbstractCell, got {cell_type!r}."
        )
    if not isinstance(kernel, Kernel):
        raise TypeError(f"register_kernel: `kernel` must be a Kernel, got {type(kernel)}.")
    if (kind, cell_type) in _KERNELS and not replace:
        raise ValueError(
            f"register_kernel: a {kind!r} kernel is already registered for "
            f"{cell_type.__name__} (pass replace=True to replace it)."
        )
    _KERNELS[kind, cell_type] = kernel


def unregister_kernel(kind: str, cell_type: type[AbstractCell]) -> None:
    """Remove the `kind` kernel registered for exactly `cell_type` (a `KeyError` if none)."""
    _check_kind(kind, "unregister_kernel")
    if (kind, cell_type) not in _KERNELS:
        raise KeyError(f"unregister_kernel: no {kind!r} kernel is registered for {cell_type!r}.")
    del _KERNELS[kind, cell_type]


def find_kernel(kind: str, cell: AbstractCell | type[AbstractCell]) -> Kernel | None:
    """The `kind` kernel of the first class in the cell's MRO that has one, else `None`.

    `cell` is a cell or a cell type. The lookup is plain Python on types: under `jax.jit` it
    runs once, while tracing.
    """
    _check_kind(kind, "find_kernel")
    cell_type = cell if isinstance(cell, type) else type(cell)
    for klass in cell_type.__mro__:
        kernel = _KERNELS.get((kind, klass))
        if kernel is not None:
            return kernel
    return None


def registered_cell_types(kind: str) -> tuple[type[AbstractCell], ...]:
    """The cell types with a `kind` kernel of their own, in registration order."""
    _check_kind(kind, "registered_cell_types")
    return tuple(cell_type for k, cell_type in _KERNELS if k == kind)
