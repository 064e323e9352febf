"""Kernels of the LRU: exact RTRL in O(N·I) per step (and SnAp-0), from its diagonal recurrence."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Complex

from ..._batch_mean import batch_mean_of
from ..._types import Array, Features, Float, Grads, Input, Scalar
from ...cells import LRU
from ...cells._lru import from_stacked_parts, stacked_parts
from .._common import grads_like
from .._registry import Kernel, register_kernel


class LRURTRLState(eqx.Module):
    r"""Per-neuron influences of the LRU (Zucchet et al. 2023, "online LRU").

    Because ``h_{t,i}`` depends on the parameters of neuron ``i`` only (apart from the readout
    ``C``, which acts after the recurrence), the influence matrix is block diagonal and is
    stored as three traces (``B̃`` the complex input weights of `LRU`):

    - ``lam[i] = ∂h_{t,i}/∂λ_i`` (complex derivative; ``h`` is holomorphic in ``λ``),
    - ``gamma[i] = ∂h_{t,i}/∂γ_i``,
    - ``B[j, i] = ∂h_{t,i}/∂Re B̃_{ij}``; then ``∂h_{t,i}/∂Im B̃_{ij} = i · B[j, i]``. Stored
      input-major, ``(I, N)``, like the cell's ``B``, so each row is ``N`` complex numbers long.
    """

    hidden: Complex[Array, " hidden"]
    lam: Complex[Array, " hidden"]
    gamma: Complex[Array, " hidden"]
    B: Complex[Array, "input hidden"]


def lru_init(cell: LRU, hidden: Complex[Array, " hidden"], x: Input) -> LRURTRLState:
    """``h_0`` and zero traces: ``(N,)``, ``(N,)``, ``(N,)`` and ``(I, N)``, complex."""
    zeros = jnp.zeros_like(hidden)
    return LRURTRLState(
        hidden, zeros, zeros, jnp.zeros((x.shape[0], hidden.shape[0]), hidden.dtype)
    )


def lru_step(
    cell: LRU, hidden: Complex[Array, " hidden"], x: Input, state: LRURTRLState, *, carry: bool
) -> tuple[Complex[Array, " hidden"], LRURTRLState]:
    r"""Advance the traces of ``h_t = λ ⊙ h_{t-1} + γ ⊙ (B̃ x_t)``:

        T^λ_t = λ ⊙ T^λ_{t-1} + h_{t-1},   T^γ_t = λ ⊙ T^γ_{t-1} + B̃ x_t,
        T^B_t = T^B_{t-1} diag(λ) + x_t γᵀ          (input-major, (I, N)),

    with the ``λ T_{t-1}`` carry dropped when ``carry=False`` (SnAp-0 / LocalMSE).
    """
    next_hidden = cell(hidden, x)
    drive = cell.input_drive(x)
    immediate_b = x[:, None] * cell.gamma[None, :]
    immediate_b = immediate_b.astype(hidden.dtype)
    if not carry:
        return next_hidden, LRURTRLState(next_hidden, hidden, drive, immediate_b)
    lam = cell.lam
    return next_hidden, LRURTRLState(
        next_hidden,
        lam * state.lam + hidden,
        lam * state.gamma + drive,
        state.B * lam[None, :] + immediate_b,
    )


def _readout_cotangent(cell: LRU, cotangent: Features) -> Complex[Array, " hidden"]:
    """``u = C̃ᵀ c``, so that ``cᵀ dy = Re(u · dh)``: from ``cᵀ C = [Re u, -Im u]``.

    Written ``cᵀ C`` rather than ``Cᵀ c``: vmapped over environments, XLA then writes ``u``
    batch-major (``(B, N)``), the layout of the traces it scales. As ``Cᵀ c`` it came out
    ``(N, B)`` and every loop over the ``(B, ·, N)`` traces read it transposed: 7 % of the LRU
    learner's step at batch 64 (CartPole-v1, N = 32); no change at batch 1."""
    return jnp.conj(from_stacked_parts(cotangent @ cell.C))


def lru_gradient(cell: LRU, state: LRURTRLState, cotangent: Features) -> Grads:
    r"""``(dy_t/dθ)ᵀ c`` for ``y_t = Re(C̃ h_t) = C [Re h_t; Im h_t]``.

    With ``u = C̃ᵀ c`` (complex), the derivative of ``cᵀ y_t`` along a parameter whose influence
    on ``h_t`` is ``v`` is ``Re(u · v)``; the chain rule through ``λ(ν_log, θ_log)`` and
    ``γ = exp(γ_log)`` gives, with ``P = T^B diag(u)`` (``(I, N)``),

        ∇ν_log = Re(u T^λ λ) · (-exp ν_log),    ∇θ_log = Re(u T^λ λ i) · exp θ_log,
        ∇γ_log = Re(u T^γ) · γ,                 ∇B = [Re P, -Im P]          (I, 2N),
        ∇C = c [Re h; Im h]ᵀ                                                 (F, 2N),

    since ``Re B̃_{ij}`` is ``B[j, i]`` and ``Im B̃_{ij}`` is ``B[j, N + i]``.

    (The reference code used ``γ_log`` where the chain rule needs ``exp(γ_log)``; the agreement
    tests against `jax.grad` pin this.)
    """
    h = state.hidden
    u = _readout_cotangent(cell, cotangent)
    u_lam = u * state.lam * cell.lam
    u_b = state.B * u[None, :]
    values = (
        -jnp.real(u_lam) * jnp.exp(cell.nu_log),
        -jnp.imag(u_lam) * jnp.exp(cell.theta_log),  # Re(z · i) = -Im(z)
        jnp.real(u * state.gamma) * cell.gamma,
        stacked_parts(jnp.conj(u_b)),
        cotangent[:, None] * stacked_parts(h)[None, :],
    )
    return grads_like(cell, lambda p: (p.nu_log, p.theta_log, p.gamma_log, p.B, p.C), values)


def lru_gradient_norm_squared(cell: LRU, state: LRURTRLState, cotangent: Features) -> Scalar:
    r"""``‖lru_gradient(cell, state, c)‖₂²`` without forming the readout's ``(F, 2N)`` gradient.

    With ``u = C̃ᵀ c`` and ``z = u T^λ λ`` as in `lru_gradient`,

        ‖g‖² = Σ_i (Re z_i e^{ν_log,i})² + (Im z_i e^{θ_log,i})² + (Re(u_i T^γ_i) γ_i)²
               + Σ_i |u_i|² Σ_j |T^B_ji|² + ‖c‖² (‖Re h‖² + ‖Im h‖²),

    since ``(Re P_ji)² + (Im P_ji)² = |u_i T^B_ji|²`` and ``∇C`` is the outer product
    ``c [Re h; Im h]ᵀ``. One read of ``h`` and of the traces: the default (forming the
    gradient again and squaring it) made XLA:CPU write and reduce more ``(F, 2N)`` arrays
    per step. Equal to the formed norm up to float rounding (the sums are grouped differently):
    a 10k-step LRU run's parameters moved by at most 1e-4 against the formed norm's.
    """
    h = state.hidden
    u = _readout_cotangent(cell, cotangent)
    u_lam = u * state.lam * cell.lam
    per_neuron = (
        (jnp.real(u_lam) * jnp.exp(cell.nu_log)) ** 2
        + (jnp.imag(u_lam) * jnp.exp(cell.theta_log)) ** 2
        + (jnp.real(u * state.gamma) * cell.gamma) ** 2
        + _abs_squared(u) * _column_abs_squared_sums(state.B)
    )
    return jnp.sum(per_neuron) + jnp.sum(cotangent**2) * jnp.sum(_abs_squared(h))


def lru_mean_gradient(
    cell: LRU, states: LRURTRLState, cotangents: Float[Array, "batch features"]
) -> Grads:
    r"""The batch mean of `lru_gradient`, with the readout's part as one GEMM: for the rows
    ``c_b`` of ``C`` (``(B, F)``) and ``[Re h_b, Im h_b]`` of ``H`` (``(B, 2N)``),

        mean_b ∇C = Cᵀ H / B                                                  (F, 2N).

    Forming the readout's ``B`` outer products instead, XLA:CPU fuses them into the batch
    mean's ``(B, F·2N)`` loop, where ``h`` is read at a column index modulo ``2N`` (a gather it
    does not vectorise). The input weights' gradient comes from one complex mean
    (``u_b = C̃ᵀ c_b`` scales column ``i`` of ``T^B_b``),

        M = mean_b T^B_b diag(u_b),        mean_b ∇B = [Re M, -Im M],

    one pass over the ``(B, I, N)`` traces. The other leaves (O(N) per environment) are the
    means of the per-environment gradients, one matrix-vector product each.
    """
    per_env = jax.vmap(lru_gradient, in_axes=(None, 0, 0))(cell, states, cotangents)
    # (XLA drops the per-environment gradients that nothing reads: those of B and C.)
    mean = jax.tree.map(batch_mean_of, per_env)
    u = jax.vmap(_readout_cotangent, in_axes=(None, 0))(cell, cotangents)
    input_weights = batch_mean_of(states.B * u[:, None, :])
    scaled_t = ((1.0 / cotangents.shape[0]) * cotangents).T
    replaced = (
        stacked_parts(jnp.conj(input_weights)),
        scaled_t @ stacked_parts(states.hidden),
    )
    return eqx.tree_at(lambda p: (p.B, p.C), mean, replaced)


def _column_abs_squared_sums(z: Complex[Array, "rows columns"]) -> Float[Array, " columns"]:
    """``Σ_j |z_ji|²``, as the real part of the complex sum ``Σ_j z_ji conj(z_ji)``.

    Each term's real part is ``re·re - im·(-im)``, which rounds as ``re² + im²``. XLA:CPU hands
    a real reduction over a short axis to YNNPACK, which took 20–50 µs for the LRU's input-weight
    traces at batch 64 (64 environments, N = 32, I = 7); it emits the complex one itself.
    """
    return jnp.real(jnp.sum(z * jnp.conj(z), axis=0))


def _abs_squared(z: Complex[Array, "..."]) -> Array:
    """``|z|²`` elementwise, without the square root of `jnp.abs`."""
    return jnp.real(z) ** 2 + jnp.imag(z) ** 2


def _lru_kernel(*, carry: bool) -> Kernel:
    return Kernel(
        LRURTRLState,
        lru_init,
        functools.partial(lru_step, carry=carry),
        lru_gradient,
        lru_gradient_norm_squared,
        lru_mean_gradient,
    )


register_kernel("rtrl", LRU, _lru_kernel(carry=True))
# SnAp-0 on an LRU: RTRL's diagonal traces without the carry.
register_kernel("local-mse", LRU, _lru_kernel(carry=False))
# SnAp-1 on an LRU is exact RTRL: the recurrent Jacobian diag(λ) is its own diagonal.
register_kernel("snap1", LRU, _lru_kernel(carry=True))
