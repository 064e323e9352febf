"""Random-feedback local online learning (RFLO, Murray 2019)."""

from typing import ClassVar, NoReturn

import equinox as eqx

from ..cells import AbstractCell
from ._common import unsupported
from ._registry import registered_cell_types
from ._structured import AbstractStructuredEstimator


class RFLO(AbstractStructuredEstimator[eqx.Module]):
    r"""Random-feedback local online learning (Murray 2019): RTRL with a diagonal carry.

    RTRL propagates ``M_t = (∂h_t/∂h_{t-1}) M_{t-1} + ∂h_t/∂θ``; RFLO replaces the recurrent
    Jacobian by its leak ``diag(1 - dt/τ)`` and keeps, for each neuron, only the influence of
    its own row of ``W`` and its own ``τ`` (for a `CTRNN`: `RFLOState`, O(N²) per step). This
    is exact when the recurrent block of the (masked) weight is zero and a biased but cheap
    estimate otherwise. The paper's biologically plausible RTRRL pairs it with feedback
    alignment; it is the default estimator of the learner.

    It has no generic form: it serves the cells with an ``"rflo"`` kernel (`rtrrl.cells.CTRNN`;
    see `register_kernel`), and `init` raises `IncompatibleCellError` (a `ValueError`) naming
    both for any other cell.
    """

    kind: ClassVar[str] = "rflo"

    def generic_kernel(self, cell: AbstractCell) -> NoReturn:
        names = " and ".join(t.__name__ for t in registered_cell_types(self.kind)) or "no"
        raise unsupported(
            self,
            cell,
            f"RFLO's leaky per-neuron trace (Murray 2019) is defined for {names} cells only",
            "RTRL() (exact, any cell) or LocalMSE() (cheapest, any cell)",
        )
