"""Real-time recurrent learning (Williams & Zipser 1989): the exact online gradient."""

from typing import ClassVar

import equinox as eqx

from ..cells import AbstractCell
from ._common import require_real_params
from ._dense import DENSE_RTRL
from ._registry import Kernel
from ._structured import AbstractStructuredEstimator


class RTRL(AbstractStructuredEstimator[eqx.Module]):
    r"""Exact forward-mode gradient: carries the influence ``M_t = dh_t/dθ``.

        M_t = (∂f/∂h)(h_{t-1}, x_t) M_{t-1} + (∂f/∂θ)(h_{t-1}, x_t),     M_0 = 0,
        gradient(c) = (∂y_t/∂θ)ᵀ c + M_tᵀ (∂y_t/∂h_t)ᵀ c,                y_t = output(h_t).

    Summed over a sequence this equals `jax.grad` of ``Σ_t c_tᵀ y_t`` (full BPTT) when the
    parameters are held fixed.

    - Any cell (generic form, `RTRLState`): ``M`` is a dense ``(N, P)`` matrix, ``∂f/∂θ`` is
      taken by reverse mode (N VJPs) and the carry by P forward-mode JVPs; O(N²P) per step,
      i.e. O(N⁴) for a CTRNN. The cell's parameters must be real.
    - A cell with an ``"rtrl"`` kernel (structured form, see `register_kernel`): `LRU`, whose
      recurrence is diagonal, so ``M`` is block diagonal and costs O(N·I) per step
      (Zucchet et al. 2023; state `LRURTRLState`); `CTRNN`, whose Jacobians have closed
      forms, so the carry is one ``(P, N) @ (N, N)`` GEMM, ``2·P·N²`` flops, with no
      automatic differentiation (state `CTRNNRTRLState`, ``M`` stored transposed).

    **Arguments:** ``structured``: use the cheap structured form where one exists (default);
    `False` forces the generic form (for testing it, or timing the difference).
    """

    kind: ClassVar[str] = "rtrl"
    structured: bool = eqx.field(static=True, default=True)

    def __check_init__(self) -> None:
        if not isinstance(self.structured, bool):
            raise ValueError(f"RTRL: `structured` must be True or False, got {self.structured!r}.")

    def kernel(self, cell: AbstractCell) -> Kernel:
        return super().kernel(cell) if self.structured else self.generic_kernel(cell)

    def generic_kernel(self, cell: AbstractCell) -> Kernel:
        """The dense influence matrix (`RTRLState`), for any cell with real parameters."""
        require_real_params(self, cell)
        return DENSE_RTRL
