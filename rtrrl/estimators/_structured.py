"""The base of the estimators whose work is done by a per-cell `Kernel` (RTRL, LocalMSE, RFLO)."""

import abc
from typing import TYPE_CHECKING, Any, TypeVar

import equinox as eqx

from .._types import Array, Features, Float, Grads, Hidden, Input, PRNGKey, Scalar
from ..cells import AbstractCell
from ._abstract import AbstractGradientEstimator
from ._common import check_cotangent, check_cotangents, check_step_inputs
from ._registry import Kernel, find_kernel

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    _State = TypeVar("_State", default=Any)
else:
    _State = TypeVar("_State")


class AbstractStructuredEstimator(AbstractGradientEstimator[_State]):
    """An estimator that delegates, for each cell, to a `Kernel`.

    The kernel is the one registered for ``(kind, type(cell))`` (`find_kernel`, walking the
    cell's MRO; see `rtrrl.estimators._registry` for how to add one), else
    `generic_kernel(cell)`: the estimator's any-cell form, or an `IncompatibleCellError` naming
    the estimator and the cell. The state is the kernel's (``kernel.state_type``).

    `init` first checks that a kernel serves the cell, then the shapes of ``hidden`` and
    ``x``; `step`, `gradient`, `gradient_norm_squared` and `mean_gradient` check their
    inputs' shapes, then that ``state`` is the kernel's state (a `TypeError` otherwise: a
    state made by another estimator or for another cell). The lookups are Python on types:
    under `jax.jit` they run once, while tracing.
    """

    kind: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def generic_kernel(self, cell: AbstractCell) -> Kernel:
        """The form for a cell without a registered kernel, or raise `IncompatibleCellError`."""

    def kernel(self, cell: AbstractCell) -> Kernel:
        """The kernel this estimator uses for `cell`."""
        found = find_kernel(self.kind, cell)
        return self.generic_kernel(cell) if found is None else found

    def _kernel_for_state(self, method: str, cell: AbstractCell, state: _State) -> Kernel:
        kernel = self.kernel(cell)
        if not isinstance(state, kernel.state_type):
            raise TypeError(
                f"{type(self).__name__}.{method}: {type(self).__name__} serves "
                f"{type(cell).__name__} with a {kernel.state_type.__name__}, got a "
                f"{type(state).__name__} (made by another estimator's `init`, or for another "
                "cell?)."
            )
        return kernel

    def init(
        self, cell: AbstractCell, hidden: Hidden, x: Input, *, key: PRNGKey | None = None
    ) -> _State:
        del key  # deterministic
        kernel = self.kernel(cell)
        check_step_inputs(self, "init", cell, hidden, x)
        return kernel.init(cell, hidden, x)

    def step(
        self,
        cell: AbstractCell,
        hidden: Hidden,
        x: Input,
        state: _State,
        *,
        key: PRNGKey | None = None,
    ) -> tuple[Hidden, _State]:
        del key  # deterministic
        check_step_inputs(self, "step", cell, hidden, x)
        return self._kernel_for_state("step", cell, state).step(cell, hidden, x, state)

    def gradient(self, cell: AbstractCell, state: _State, cotangent: Features) -> Grads:
        check_cotangent(self, "gradient", cell, cotangent)
        return self._kernel_for_state("gradient", cell, state).gradient(cell, state, cotangent)

    def gradient_norm_squared(
        self, cell: AbstractCell, state: _State, cotangent: Features
    ) -> Scalar:
        """The kernel's ``gradient_norm_squared``, or ``‖gradient(...)‖₂²`` if it has none."""
        check_cotangent(self, "gradient_norm_squared", cell, cotangent)
        kernel = self._kernel_for_state("gradient_norm_squared", cell, state)
        if kernel.gradient_norm_squared is None:
            return super().gradient_norm_squared(cell, state, cotangent)
        return kernel.gradient_norm_squared(cell, state, cotangent)

    def batches_gradient_mean(self, cell: AbstractCell) -> bool:
        """Whether the kernel for `cell` has its own ``mean_gradient``."""
        return self.kernel(cell).mean_gradient is not None

    def mean_gradient(
        self, cell: AbstractCell, state: _State, cotangents: Float[Array, "batch features"]
    ) -> Grads:
        """The kernel's ``mean_gradient``, or the mean of the vmapped `gradient` if it has none."""
        check_cotangents(self, "mean_gradient", cell, cotangents)
        kernel = self._kernel_for_state("mean_gradient", cell, state)
        if kernel.mean_gradient is None:
            return super().mean_gradient(cell, state, cotangents)
        return kernel.mean_gradient(cell, state, cotangents)
