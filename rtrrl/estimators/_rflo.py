"""Random-feedback local online learning (RFLO, Murray 2019) for the CTRNN."""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Features, Float, Grads, Hidden, Input, Scalar
from ..cells import CTRNN, AbstractCell
from ._abstract import AbstractGradientEstimator
from ._common import check_cotangent, check_step_inputs, grads_like, unsupported


class RFLOState(eqx.Module):
    """Per-neuron traces of a CTRNN: row ``i`` only holds the parameters of neuron ``i``.

    - ``weight[i, j] ≈ ∂h_{t,i}/∂W_{ij}`` (the full influence ``∂h_{t,k}/∂W_{ij}`` for
      ``k ≠ i`` is dropped, which is what makes the trace O(N²));
    - ``tau[i] ≈ ∂h_{t,i}/∂raw_tau_i``.
    """

    weight: Float[Array, "hidden columns"]
    tau: Float[Array, " hidden"]


def ctrnn_traces_init(cell: CTRNN) -> RFLOState:
    return RFLOState(jnp.zeros_like(cell.weight), jnp.zeros_like(cell.raw_tau))


def ctrnn_traces_step(
    cell: CTRNN, hidden: Float[Array, " hidden"], x: Input, state: RFLOState, *, leak: bool
) -> tuple[Float[Array, " hidden"], RFLOState]:
    r"""One RFLO step (Murray 2019, eq. 13 with learned ``τ``); ``leak=False`` gives SnAp-0.

    With ``r = dt/τ``, ``a = tanh(W̃ ξ_t)`` and the mask ``m``,

        Ĵ^W_t = (1 - r) ⊙ Ĵ^W_{t-1} + m ⊙ (r ⊙ (1 - a²)) ξ_tᵀ,
        Ĵ^τ_t = (1 - r) ⊙ Ĵ^τ_{t-1} + (a - h_{t-1}) ⊙ ∂r/∂raw_tau,
        ∂r/∂raw_tau = -(r / τ) ⊙ sigmoid(raw_tau)     (τ = 1 + softplus(raw_tau)).

    Exact RTRL has ``(∂h_t/∂h_{t-1}) Ĵ_{t-1}`` where RFLO keeps only the leak ``(1 - r)``:
    the two agree when the effective recurrent block of ``W̃`` is zero. Outer products and
    elementwise terms only: O(N·(I+N)) time and memory, no Jacobian is ever formed.
    """
    xi, activation, rate = cell.forward_terms(hidden, x)
    next_hidden = hidden + rate * (activation - hidden)
    gain = rate * (1.0 - activation**2)
    immediate_w = gain[:, None] * xi[None, :]
    if cell.mask is not None:
        # The traces must see the masked forward computation (a pitfall of the paper's code).
        immediate_w = jnp.where(cell.mask, immediate_w, 0.0)
    immediate_tau = (activation - hidden) * (-rate / cell.tau * jax.nn.sigmoid(cell.raw_tau))
    if not leak:
        return next_hidden, RFLOState(immediate_w, immediate_tau)
    decay = 1.0 - rate
    return next_hidden, RFLOState(
        decay[:, None] * state.weight + immediate_w, decay * state.tau + immediate_tau
    )


def ctrnn_traces_gradient(cell: CTRNN, state: RFLOState, cotangent: Features) -> Grads:
    """Row-wise contraction ``∇W_{ij} = c_i Ĵ^W_{ij}``, ``∇raw_tau_i = c_i Ĵ^τ_i`` (y = h)."""
    return grads_like(
        cell,
        lambda p: (p.weight, p.raw_tau),
        (cotangent[:, None] * state.weight, cotangent * state.tau),
    )


def ctrnn_traces_gradient_norm_squared(state: RFLOState, cotangent: Features) -> Scalar:
    """``‖ctrnn_traces_gradient(·, state, c)‖² = Σ_i c_i² (Σ_j (Ĵ^W_ij)² + (Ĵ^τ_i)²)``.

    The gradient's rows are the trace's rows scaled by ``c_i``, so its norm needs one read of
    the trace and never forms the gradient.
    """
    row_norms = jnp.sum(state.weight**2, axis=1) + state.tau**2
    return jnp.sum(cotangent**2 * row_norms)


class RFLO(AbstractGradientEstimator[RFLOState]):
    r"""Random-feedback local online learning (Murray 2019): RTRL with a diagonal carry.

    RTRL propagates ``M_t = (∂h_t/∂h_{t-1}) M_{t-1} + ∂h_t/∂θ``; RFLO replaces the recurrent
    Jacobian by its leak ``diag(1 - dt/τ)`` and keeps, for each neuron, only the influence of
    its own row of ``W`` and its own ``τ`` (see `RFLOState`, `ctrnn_traces_step`). This is
    exact when the recurrent block of the (masked) weight is zero and a biased but cheap
    O(N²) estimate otherwise. The paper's biologically plausible RTRRL pairs it with
    feedback alignment; it is the default estimator of the learner.

    Defined for `rtrrl.cells.CTRNN` only; `init` raises a `ValueError` for any other cell.
    """

    def init(self, cell: AbstractCell, hidden: Hidden, x: Input) -> RFLOState:
        if not isinstance(cell, CTRNN):
            raise unsupported(
                self,
                cell,
                "RFLO's leaky per-neuron trace (Murray 2019) is defined for CTRNN cells only",
                "RTRL() (exact, any cell) or LocalMSE() (cheapest, any cell)",
            )
        check_step_inputs(self, "init", cell, hidden, x)
        return ctrnn_traces_init(cell)

    def step(
        self, cell: AbstractCell, hidden: Hidden, x: Input, state: RFLOState
    ) -> tuple[Hidden, RFLOState]:
        check_step_inputs(self, "step", cell, hidden, x)
        return ctrnn_traces_step(cell, hidden, x, state, leak=True)

    def gradient(self, cell: AbstractCell, state: RFLOState, cotangent: Features) -> Grads:
        check_cotangent(self, "gradient", cell, cotangent)
        return ctrnn_traces_gradient(cell, state, cotangent)

    def gradient_norm_squared(
        self, cell: AbstractCell, state: RFLOState, cotangent: Features
    ) -> Scalar:
        check_cotangent(self, "gradient_norm_squared", cell, cotangent)
        return ctrnn_traces_gradient_norm_squared(state, cotangent)
