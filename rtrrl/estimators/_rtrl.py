"""Real-time recurrent learning (Williams & Zipser 1989): the exact online gradient."""

import equinox as eqx

from .._types import Features, Grads, Hidden, Input
from ..cells import LRU, AbstractCell
from ._abstract import AbstractGradientEstimator
from ._common import check_cotangent, check_step_inputs, require_real_params
from ._dense import RTRLState, dense_gradient, dense_init, dense_step
from ._lru_rtrl import LRURTRLState, lru_gradient, lru_init, lru_step


class RTRL(AbstractGradientEstimator[RTRLState | LRURTRLState]):
    r"""Exact forward-mode gradient: carries the influence ``M_t = dh_t/dθ``.

        M_t = (∂f/∂h)(h_{t-1}, x_t) M_{t-1} + (∂f/∂θ)(h_{t-1}, x_t),     M_0 = 0,
        gradient(c) = (∂y_t/∂θ)ᵀ c + M_tᵀ (∂y_t/∂h_t)ᵀ c,                y_t = output(h_t).

    Summed over a sequence this equals `jax.grad` of ``Σ_t c_tᵀ y_t`` (full BPTT) when the
    parameters are held fixed.

    - Any cell (generic form, `RTRLState`): ``M`` is a dense ``(N, P)`` matrix, ``∂f/∂θ`` is
      taken by reverse mode (N VJPs) and the carry by P forward-mode JVPs; O(N²P) per step,
      i.e. O(N⁴) for a CTRNN.
    - `LRU` (structured form, `LRURTRLState`): the recurrence is diagonal, so ``M`` is block
      diagonal and costs O(N·I) per step (Zucchet et al. 2023).

    **Arguments:** ``structured``: use the cheap structured form where one exists (default);
    `False` forces the generic form (for testing it, or timing the difference).
    """

    structured: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if not isinstance(self.structured, bool):
            raise ValueError(f"RTRL: `structured` must be True or False, got {self.structured!r}.")

    def init(self, cell: AbstractCell, hidden: Hidden, x: Input) -> RTRLState | LRURTRLState:
        check_step_inputs(self, "init", cell, hidden, x)
        if self.structured and isinstance(cell, LRU):
            return lru_init(cell, hidden, x)
        require_real_params(self, cell)
        return dense_init(cell, hidden)

    def step(
        self, cell: AbstractCell, hidden: Hidden, x: Input, state: RTRLState | LRURTRLState
    ) -> tuple[Hidden, RTRLState | LRURTRLState]:
        check_step_inputs(self, "step", cell, hidden, x)
        if isinstance(state, LRURTRLState):
            return lru_step(cell, hidden, x, state, carry=True)
        return dense_step(cell, hidden, x, state, carry=True)

    def gradient(
        self, cell: AbstractCell, state: RTRLState | LRURTRLState, cotangent: Features
    ) -> Grads:
        check_cotangent(self, "gradient", cell, cotangent)
        if isinstance(state, LRURTRLState):
            return lru_gradient(cell, state, cotangent)
        return dense_gradient(cell, state, cotangent)
