"""Kernels of the CTRNN: per-neuron traces (RFLO, Murray 2019; without the leak, SnAp-0)."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from ..._types import Array, Features, Float, Grads, Input, Scalar
from ...cells import CTRNN
from .._common import grads_like
from .._registry import Kernel, register_kernel


class RFLOState(eqx.Module):
    """Per-neuron traces of a CTRNN: row ``i`` only holds the parameters of neuron ``i``.

    - ``weight[i, j] ≈ ∂h_{t,i}/∂W_{ij}`` (the full influence ``∂h_{t,k}/∂W_{ij}`` for
      ``k ≠ i`` is dropped, which is what makes the trace O(N²));
    - ``tau[i] ≈ ∂h_{t,i}/∂raw_tau_i``.
    """

    weight: Float[Array, "hidden columns"]
    tau: Float[Array, " hidden"]


def ctrnn_traces_init(cell: CTRNN, hidden: Float[Array, " hidden"], x: Input) -> RFLOState:
    """Zero traces shaped like ``(weight, raw_tau)``: ``(N, I+N+1)`` and ``(N,)``."""
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


def ctrnn_traces_gradient_norm_squared(
    cell: CTRNN, state: RFLOState, cotangent: Features
) -> Scalar:
    """``‖ctrnn_traces_gradient(cell, state, c)‖² = Σ_i c_i² (Σ_j (Ĵ^W_ij)² + (Ĵ^τ_i)²)``.

    The gradient's rows are the trace's rows scaled by ``c_i``, so its norm needs one read of
    the trace and never forms the gradient.
    """
    row_norms = jnp.sum(state.weight**2, axis=1) + state.tau**2
    return jnp.sum(cotangent**2 * row_norms)


def _traces_kernel(*, leak: bool) -> Kernel:
    return Kernel(
        RFLOState,
        ctrnn_traces_init,
        functools.partial(ctrnn_traces_step, leak=leak),
        ctrnn_traces_gradient,
        ctrnn_traces_gradient_norm_squared,
    )


register_kernel("rflo", CTRNN, _traces_kernel(leak=True))
# SnAp-0 on a CTRNN is RFLO with the leak dropped: the immediate Jacobian is row-local.
register_kernel("local-mse", CTRNN, _traces_kernel(leak=False))


def ctrnn_snap1_step(
    cell: CTRNN, hidden: Float[Array, " hidden"], x: Input, state: RFLOState
) -> tuple[Float[Array, " hidden"], RFLOState]:
    r"""One SnAp-1 step (Menick et al. 2021): RFLO's traces carried by the full diagonal.

    The step's recurrent Jacobian is ``J = diag(1 - r) + diag(r ⊙ (1 - a²)) W̃_rec``, so its
    diagonal is the leak *plus* the self-connection through ``tanh'``:

        d_i = J_ii = (1 - r_i) + r_i (1 - a_i²) W̃_rec[i, i],
        Ĵ^W_t = d ⊙ Ĵ^W_{t-1} + m ⊙ (r ⊙ (1 - a²)) ξ_tᵀ,
        Ĵ^τ_t = d ⊙ Ĵ^τ_{t-1} + (a - h_{t-1}) ⊙ ∂r/∂raw_tau,

    with the immediate terms of `ctrnn_traces_step` (``∂f_k/∂W_ij`` and ``∂f_k/∂raw_tau_i`` are
    zero for ``k ≠ i``: the pattern of ``∂f/∂θ`` is exactly the traces' rows). O(N·(I+N)).

    **Relation to RFLO and RTRL.** Both traces start at zero, share the immediate terms and the
    gradient's row contraction; only the factor differs, ``d_i`` here and ``1 - r_i`` in RFLO.

    - If ``W̃_rec[i, i] = 0`` for every ``i`` then ``d = 1 - r`` at every step and, by induction
      on ``t``, the traces (hence the gradients) of SnAp-1 and RFLO are equal.
    - If ``W̃_rec`` is diagonal then ``J`` is diagonal; RTRL's ``M_t = J M_{t-1} + F_t`` then
      keeps the row pattern of ``F`` (a diagonal scaling does not mix rows), so
      ``M_t[i, j] = d_i M_{t-1}[i, j] + F_t[i, j]`` is SnAp-1's recursion: SnAp-1 is exact.
    - Otherwise SnAp-1 drops the influence that reaches neuron ``i`` through the other
      neurons (``J_ik`` for ``k ≠ i``) and RFLO additionally the self-excitation term.
    """
    next_hidden, immediate = ctrnn_traces_step(cell, hidden, x, state, leak=False)
    _, activation, rate = cell.forward_terms(hidden, x)
    recurrent = cell.masked_weight[:, cell.input_size : cell.input_size + cell.hidden_size]
    decay = 1.0 - rate + rate * (1.0 - activation**2) * jnp.diagonal(recurrent)
    return next_hidden, RFLOState(
        decay[:, None] * state.weight + immediate.weight, decay * state.tau + immediate.tau
    )


register_kernel(
    "snap1",
    CTRNN,
    Kernel(
        RFLOState,
        ctrnn_traces_init,
        ctrnn_snap1_step,
        ctrnn_traces_gradient,
        ctrnn_traces_gradient_norm_squared,
    ),
)
