"""Kernels of the CTRNN: per-neuron traces (RFLO, Murray 2019; without the leak, SnAp-0)."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from ..._batch_mean import batch_mean_of
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


class LocalMSEState(eqx.Module):
    r"""The immediate Jacobian of a CTRNN step in factored form (SnAp-0 / `LocalMSE`).

    ``∂h_{t,k}/∂W_ij = δ_ki g_i ξ_j`` (times the mask ``m_ij``) with the gain
    ``g = r ⊙ (1 - a²)``: row ``i`` of the trace is ``g_i ξᵀ``, a rank-one matrix, so it is
    kept as its two factors instead of the dense ``(N, I+N+1)`` `RFLOState`:

    - ``gain``: ``g``, ``(N,)``;
    - ``xi``: ``ξ_t = [x_t, h_{t-1}, 1]``, ``(I+N+1,)``;
    - ``tau[i] = ∂h_{t,i}/∂raw_tau_i``, ``(N,)``.

    The state is O(N + I) instead of O(N·(I+N)); the dense trace ``m ⊙ g ξᵀ`` is formed only
    inside the gradient, where XLA fuses it into its consumers.
    """

    gain: Float[Array, " hidden"]
    xi: Float[Array, " columns"]
    tau: Float[Array, " hidden"]


def ctrnn_local_mse_init(cell: CTRNN, hidden: Float[Array, " hidden"], x: Input) -> LocalMSEState:
    """Zero factors: ``(N,)``, ``(I+N+1,)`` and ``(N,)``."""
    return LocalMSEState(
        jnp.zeros_like(cell.raw_tau),
        jnp.zeros((cell.weight.shape[1],), cell.weight.dtype),
        jnp.zeros_like(cell.raw_tau),
    )


def ctrnn_local_mse_step(
    cell: CTRNN, hidden: Float[Array, " hidden"], x: Input, state: LocalMSEState
) -> tuple[Float[Array, " hidden"], LocalMSEState]:
    r"""``g = r ⊙ (1 - a²)``, ``ξ_t`` and ``Ĵ^τ_t = (a - h_{t-1}) ⊙ ∂r/∂raw_tau`` (the immediate
    terms of `ctrnn_traces_step`, without the leak). O(N + I) beyond the cell's own step."""
    del state  # SnAp-0 keeps nothing from the previous step
    xi, activation, rate = cell.forward_terms(hidden, x)
    next_hidden = hidden + rate * (activation - hidden)
    gain = rate * (1.0 - activation**2)
    immediate_tau = (activation - hidden) * (-rate / cell.tau * jax.nn.sigmoid(cell.raw_tau))
    return next_hidden, LocalMSEState(gain, xi, immediate_tau)


def ctrnn_local_mse_gradient(cell: CTRNN, state: LocalMSEState, cotangent: Features) -> Grads:
    """``∇W = m ⊙ ((c ⊙ g) ξᵀ)``, ``∇raw_tau = c ⊙ Ĵ^τ``: one outer product, O(N·(I+N))."""
    grad_w = (cotangent * state.gain)[:, None] * state.xi[None, :]
    if cell.mask is not None:
        grad_w = jnp.where(cell.mask, grad_w, 0.0)
    return grads_like(cell, lambda p: (p.weight, p.raw_tau), (grad_w, cotangent * state.tau))


def ctrnn_local_mse_gradient_norm_squared(
    cell: CTRNN, state: LocalMSEState, cotangent: Features
) -> Scalar:
    """``Σ_i (c_i g_i)² Σ_j m_ij ξ_j² + Σ_i (c_i Ĵ^τ_i)²``: O(N + I) without a mask, one
    ``(N, I+N+1)`` matrix-vector product with one."""
    xi_sq = state.xi**2
    if cell.mask is None:
        row_norms = jnp.broadcast_to(jnp.sum(xi_sq), state.gain.shape)
    else:
        row_norms = cell.mask.astype(xi_sq.dtype) @ xi_sq
    return jnp.sum((cotangent * state.gain) ** 2 * row_norms) + jnp.sum(
        (cotangent * state.tau) ** 2
    )


def ctrnn_local_mse_mean_gradient(
    cell: CTRNN, states: LocalMSEState, cotangents: Float[Array, "batch hidden"]
) -> Grads:
    r"""The batch mean of `ctrnn_local_mse_gradient` as one GEMM: with ``S = C ⊙ G`` (rows
    ``c_b ⊙ g_b``, ``(B, N)``) and ``Ξ`` (rows ``ξ_b``, ``(B, I+N+1)``),

        mean_b ∇W_b = m ⊙ (Sᵀ Ξ) / B,        mean_b ∇raw_tau_b = (1/B) Σ_b c_b ⊙ Ĵ^τ_b.

    ``2·B·N·(I+N+1)`` flops in a matrix product, instead of ``B`` outer products that a
    learner then averages: XLA:CPU fuses those into the batch mean's ``(B, N·(I+N+1))`` loop,
    where ``ξ`` is read at a column index modulo ``I+N+1``, a gather it does not vectorise
    (about six times the time of the same loop under RFLO, which reads a stored trace).
    """
    grad_w = (cotangents * states.gain).T @ ((1.0 / cotangents.shape[0]) * states.xi)
    if cell.mask is not None:
        grad_w = jnp.where(cell.mask, grad_w, 0.0)
    grad_tau = batch_mean_of(cotangents * states.tau)
    return grads_like(cell, lambda p: (p.weight, p.raw_tau), (grad_w, grad_tau))


# SnAp-0 on a CTRNN is RFLO with the leak dropped: the immediate Jacobian is row-local, and
# each row is rank one, so it is kept factored (`LocalMSEState`).
register_kernel(
    "local-mse",
    CTRNN,
    Kernel(
        LocalMSEState,
        ctrnn_local_mse_init,
        ctrnn_local_mse_step,
        ctrnn_local_mse_gradient,
        ctrnn_local_mse_gradient_norm_squared,
        ctrnn_local_mse_mean_gradient,
    ),
)


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


class CTRNNRTRLState(eqx.Module):
    r"""Exact RTRL influence of a CTRNN, stored parameter-major (batch-friendly layout).

    - ``weight[i, j, k] = ∂h_{t,k}/∂W_ij``, ``(N, I+N+1, N)``;
    - ``tau[i, k] = ∂h_{t,k}/∂raw_tau_i``, ``(N, N)``.

    This is the dense ``M_tᵀ`` of `RTRLState` (``P = N (I+N+1) + N`` rows, in the order of
    the cell's leaves), kept as two arrays whose last axis is the neuron ``k``: the carry
    ``M_{t-1}ᵀ W̃_recᵀ`` is then one ``(P, N) @ (N, N)`` GEMM, and under `jax.vmap` the
    environments stack along the GEMM's leading dimension, ``(B·P, N) @ (N, N)``, with no
    transpose.
    """

    weight: Float[Array, "hidden columns hidden"]
    tau: Float[Array, "hidden hidden"]


def ctrnn_rtrl_init(cell: CTRNN, hidden: Float[Array, " hidden"], x: Input) -> CTRNNRTRLState:
    """``M_0 = 0``: ``(N, I+N+1, N)`` and ``(N, N)``."""
    n, columns = cell.weight.shape
    dtype = cell.weight.dtype
    return CTRNNRTRLState(jnp.zeros((n, columns, n), dtype), jnp.zeros((n, n), dtype))


def ctrnn_rtrl_step(
    cell: CTRNN, hidden: Float[Array, " hidden"], x: Input, state: CTRNNRTRLState
) -> tuple[Float[Array, " hidden"], CTRNNRTRLState]:
    r"""``M_t = J_t M_{t-1} + F_t`` with the CTRNN's structured Jacobians (Williams & Zipser 1989).

    With ``g = r ⊙ (1 - a²)`` the recurrent Jacobian is ``J = diag(1 - r) + diag(g) W̃_rec``,
    and ``∂f_k/∂W_ij = δ_ki g_i ξ_j m_ij``, ``∂f_k/∂raw_tau_i = δ_ki Ĵ^τ_i`` (the immediate
    terms of `ctrnn_traces_step`). In the parameter-major layout ``Mᵀ`` (``P × N``):

        Mᵀ_t = (Mᵀ_{t-1} W̃_recᵀ) diag(g) + Mᵀ_{t-1} diag(1 - r) + Fᵀ_t,

    where ``Fᵀ_t`` has one nonzero per row: ``Fᵀ[(i, j), i] = m_ij g_i ξ_j``,
    ``Fᵀ[τ_i, i] = Ĵ^τ_i``. Cost per step: the GEMM, ``2·P·N²`` flops
    (``P = N (I+N+1) + N``), plus about ``4·P·N`` elementwise flops; no Jacobian is formed
    by automatic differentiation.
    """
    xi, activation, rate = cell.forward_terms(hidden, x)
    next_hidden = hidden + rate * (activation - hidden)
    gain = rate * (1.0 - activation**2)
    n = cell.hidden_size
    # W̃_recᵀ: the carry reads h_{t-1} through the masked recurrent block.
    recurrent_t = cell.masked_weight[:, cell.input_size : cell.input_size + n].T
    decay = 1.0 - rate
    eye = jnp.eye(n, dtype=gain.dtype)
    immediate_w = gain[:, None] * xi[None, :]
    if cell.mask is not None:
        immediate_w = jnp.where(cell.mask, immediate_w, 0.0)
    immediate_tau = (activation - hidden) * (-rate / cell.tau * jax.nn.sigmoid(cell.raw_tau))
    jacobian_t = recurrent_t * gain + eye * decay  # Jᵀ, (N, N)
    # Fᵀ has one nonzero per row, at k = i: added in place on the GEMM's output (N·(I+N+2)
    # elements touched) rather than as a dense (P, N) addition, a whole extra pass over M.
    rows = jnp.arange(n)
    weight = (state.weight @ jacobian_t).at[rows, :, rows].add(immediate_w)
    tau = (state.tau @ jacobian_t).at[rows, rows].add(immediate_tau)
    return next_hidden, CTRNNRTRLState(weight, tau)


def ctrnn_rtrl_gradient(cell: CTRNN, state: CTRNNRTRLState, cotangent: Features) -> Grads:
    """``∇θ = M_tᵀ c`` (``y = h``): two matrix-vector products, ``2·P·N`` flops."""
    return grads_like(
        cell, lambda p: (p.weight, p.raw_tau), (state.weight @ cotangent, state.tau @ cotangent)
    )


register_kernel(
    "rtrl", CTRNN, Kernel(CTRNNRTRLState, ctrnn_rtrl_init, ctrnn_rtrl_step, ctrnn_rtrl_gradient)
)
