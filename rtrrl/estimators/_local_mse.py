"""Immediate-Jacobian estimator (SnAp-0): RTRL without the carry."""

from .._types import Features, Grads, Hidden, Input, Scalar
from ..cells import CTRNN, LRU, AbstractCell
from ._abstract import AbstractGradientEstimator
from ._common import check_cotangent, check_step_inputs, require_real_params
from ._dense import RTRLState, dense_gradient, dense_init, dense_step
from ._lru_rtrl import LRURTRLState, lru_gradient, lru_init, lru_step
from ._rflo import (
    RFLOState,
    ctrnn_traces_gradient,
    ctrnn_traces_gradient_norm_squared,
    ctrnn_traces_init,
    ctrnn_traces_step,
)


class LocalMSE(AbstractGradientEstimator[RFLOState | LRURTRLState | RTRLState]):
    r"""Keeps only the immediate Jacobian ``∂h_t/∂θ`` at the current step (SnAp-0).

        Ĵ_t = (∂f/∂θ)(h_{t-1}, x_t),        gradient(c) = (∂y_t/∂θ)ᵀ c + Ĵ_tᵀ (∂y_t/∂h_t)ᵀ c.

    The past state is treated as a constant, so this equals `TruncatedBPTT(1)`: credit reaches
    a parameter only through its effect in the last step (Menick et al. 2021, "SnAp-0").

    It reuses the structure of the estimator it truncates, so its state is that estimator's:
    `RFLOState` for a `CTRNN` (SnAp-0 on a CTRNN is RFLO with the leak dropped: O(N²)),
    `LRURTRLState` for an `LRU` (RTRL's diagonal form without the carry: O(N·I)) and the dense
    `RTRLState` for any other cell (O(N·P)).
    """

    def init(
        self, cell: AbstractCell, hidden: Hidden, x: Input
    ) -> RFLOState | LRURTRLState | RTRLState:
        check_step_inputs(self, "init", cell, hidden, x)
        if isinstance(cell, CTRNN):
            return ctrnn_traces_init(cell)
        if isinstance(cell, LRU):
            return lru_init(cell, hidden, x)
        require_real_params(self, cell)
        return dense_init(cell, hidden)

    def step(
        self,
        cell: AbstractCell,
        hidden: Hidden,
        x: Input,
        state: RFLOState | LRURTRLState | RTRLState,
    ) -> tuple[Hidden, RFLOState | LRURTRLState | RTRLState]:
        check_step_inputs(self, "step", cell, hidden, x)
        if isinstance(state, RFLOState):
            return ctrnn_traces_step(cell, hidden, x, state, leak=False)
        if isinstance(state, LRURTRLState):
            return lru_step(cell, hidden, x, state, carry=False)
        return dense_step(cell, hidden, x, state, carry=False)

    def gradient(
        self, cell: AbstractCell, state: RFLOState | LRURTRLState | RTRLState, cotangent: Features
    ) -> Grads:
        check_cotangent(self, "gradient", cell, cotangent)
        if isinstance(state, RFLOState):
            return ctrnn_traces_gradient(cell, state, cotangent)
        if isinstance(state, LRURTRLState):
            return lru_gradient(cell, state, cotangent)
        return dense_gradient(cell, state, cotangent)

    def gradient_norm_squared(
        self, cell: AbstractCell, state: RFLOState | LRURTRLState | RTRLState, cotangent: Features
    ) -> Scalar:
        check_cotangent(self, "gradient_norm_squared", cell, cotangent)
        if isinstance(state, RFLOState):
            return ctrnn_traces_gradient_norm_squared(state, cotangent)
        return super().gradient_norm_squared(cell, state, cotangent)
