"""Immediate-Jacobian estimator (SnAp-0): RTRL without the carry."""

from typing import ClassVar

import equinox as eqx

from ..cells import AbstractCell
from ._common import require_real_params
from ._dense import DENSE_LOCAL_MSE
from ._registry import Kernel
from ._structured import AbstractStructuredEstimator


class LocalMSE(AbstractStructuredEstimator[eqx.Module]):
    r"""Keeps only the immediate Jacobian ``∂h_t/∂θ`` at the current step (SnAp-0).

        Ĵ_t = (∂f/∂θ)(h_{t-1}, x_t),        gradient(c) = (∂y_t/∂θ)ᵀ c + Ĵ_tᵀ (∂y_t/∂h_t)ᵀ c.

    The past state is treated as a constant, so this equals `TruncatedBPTT(1)`: credit reaches
    a parameter only through its effect in the last step (Menick et al. 2021, "SnAp-0").

    It reuses the structure of the estimator it truncates, through the cell's ``"local-mse"``
    kernel (see `register_kernel`): `LocalMSEState` for a `CTRNN` (SnAp-0 on a CTRNN is RFLO
    with the leak dropped, and each row of its trace is rank one, so it is kept as two
    vectors: O(N + I) state, O(N²) gradient), `LRURTRLState` for an
    `LRU` (RTRL's diagonal form without the carry: O(N·I)) and the dense `RTRLState` for any
    other cell with real parameters (O(N·P)).
    """

    kind: ClassVar[str] = "local-mse"

    def generic_kernel(self, cell: AbstractCell) -> Kernel:
        """The dense immediate Jacobian (`RTRLState`), for any cell with real parameters."""
        require_real_params(self, cell)
        return DENSE_LOCAL_MSE
