r"""Unbiased Online Recurrent Optimization (UORO, Tallec & Ollivier 2017), for any cell."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Inexact

from .._types import Array, Features, Grads, Hidden, Input, PRNGKey, Scalar
from ..cells import AbstractCell
from ._abstract import AbstractGradientEstimator
from ._common import check_cotangent, check_step_inputs, require_real_params

DEFAULT_EPS = 1e-7
"""The ``ε`` of the paper's Algorithm 1 (it keeps ``ρ0``, ``ρ1`` > 0 when a factor is zero)."""


class UOROState(eqx.Module):
    r"""The latest hidden state and the rank-one factors of the influence estimate.

    - ``hidden``: ``h_t``, shape ``(N,)`` (complex for an `LRU`);
    - ``h_tilde``: ``h̃_t``, shaped and typed like ``hidden``;
    - ``theta_tilde``: ``θ̃_t``, a PyTree shaped like ``eqx.filter(cell, eqx.is_inexact_array)``
      (the cell's trainable leaves: ``P`` scalars in all).

    ``M̂_t = h̃_t θ̃_tᵀ ≈ dh_t/dθ`` (an ``N × P`` matrix that is never formed). For a complex
    ``h`` the outer product is read column by column: the derivative of ``h_t`` along the
    real parameter ``θ_p`` is estimated by ``θ̃_p h̃_t``. The structure, shapes and dtypes are
    the same after `init` and after every `step` (episode resets select between the two).
    """

    hidden: Inexact[Array, " hidden"]
    h_tilde: Inexact[Array, " hidden"]
    theta_tilde: Grads


def _norm(tree) -> Scalar:
    """``‖tree‖₂`` over all leaves (complex leaves by modulus); 0 for a tree without leaves."""
    squares = [jnp.sum(jnp.abs(leaf) ** 2) for leaf in jax.tree.leaves(tree)]
    if not squares:  # a parameter-free cell (Identity)
        return jnp.zeros(())
    return jnp.sqrt(sum(squares[1:], squares[0]))


def rademacher_like(key: PRNGKey, hidden: Hidden) -> Inexact[Array, " hidden"]:
    """Independent random signs ``±1`` shaped and typed like `hidden`.

    For a complex ``hidden`` the real and imaginary parts are independent signs: viewing
    ``C^N`` as ``R^{2N}``, ``ν`` is then a Rademacher vector of ``R^{2N}`` and
    ``E[ν_re ν_reᵀ] = E[ν_im ν_imᵀ] = I``, ``E[ν_re ν_imᵀ] = 0``.
    """
    if jnp.iscomplexobj(hidden):
        real_dtype = jnp.real(hidden).dtype
        k_re, k_im = jax.random.split(key)
        return jax.lax.complex(
            jax.random.rademacher(k_re, hidden.shape, real_dtype),
            jax.random.rademacher(k_im, hidden.shape, real_dtype),
        )
    return jax.random.rademacher(key, hidden.shape, hidden.dtype)


def uoro_update(
    cell: AbstractCell,
    hidden: Hidden,
    x: Input,
    state: UOROState,
    nu: Inexact[Array, " hidden"],
    *,
    eps: float = DEFAULT_EPS,
) -> tuple[Hidden, UOROState]:
    r"""One UORO step with the random signs ``ν`` given (`UORO.step` draws them from its key).

    With ``J = ∂f/∂h`` and ``F = ∂f/∂θ`` at ``(h_{t-1}, x_t)``:

        ρ0 = sqrt(‖θ̃‖ / (‖J h̃‖ + ε)) + ε,       ρ1 = sqrt(‖νᵀF‖ / (‖ν‖ + ε)) + ε,
        h̃ ← ρ0 · J h̃ + ρ1 · ν,                  θ̃ ← θ̃ / ρ0 + (νᵀF) / ρ1.

    Then ``h̃_t θ̃_tᵀ = J M̂_{t-1} + ν νᵀ F + ρ0/ρ1 · J h̃ (νᵀF)ᵀ + ρ1/ρ0 · ν θ̃ᵀ`` with
    ``M̂_{t-1} = h̃ θ̃ᵀ``. ``ν`` is independent of the past, ``E[ν νᵀ] = I``, and ``ρ1`` is even
    in ``ν`` (``ρ0`` does not depend on it), so both cross terms are odd in ``ν`` and vanish in
    expectation: ``E_ν[M̂_t] = J M̂_{t-1} + F``, RTRL's recursion. The hidden trajectory does not
    depend on ``ν``, so by induction ``E[M̂_t] = M_t`` exactly (for a fixed ``θ``), for any
    choice of ``ρ0``, ``ρ1`` of that form; this choice minimises the variance of the update
    (Tallec & Ollivier 2017, section 4).

    For a complex ``h`` (`LRU`), ``νᵀF`` is ``Σ_k Re(conj(ν_k) F_k)``, the same contraction in
    the real view ``R^{2N}`` of ``C^N``.

    **Cost:** one forward step, one JVP of the recurrence along ``h̃`` (``J h̃``) and one VJP
    with respect to the parameters (``νᵀF``): a small multiple of one step, O(N·(I+N)) for a
    `CTRNN`; memory ``N + P`` besides ``h_t``.
    """
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def signs_times_step(p) -> Scalar:
        return jnp.sum(jnp.real(jnp.conj(nu) * eqx.combine(p, static)(hidden, x)))

    next_hidden = cell(hidden, x)
    nu_f = jax.grad(signs_times_step)(params)
    _, j_h = jax.jvp(lambda h: cell(h, x), (hidden,), (state.h_tilde,))
    rho0 = jnp.sqrt(_norm(state.theta_tilde) / (_norm(j_h) + eps)) + eps
    rho1 = jnp.sqrt(_norm(nu_f) / (_norm(nu) + eps)) + eps
    h_tilde = rho0.astype(hidden.dtype) * j_h + rho1.astype(hidden.dtype) * nu
    theta_tilde = jax.tree.map(
        lambda old, new: old / rho0.astype(old.dtype) + new / rho1.astype(new.dtype),
        state.theta_tilde,
        nu_f,
    )
    return next_hidden, UOROState(next_hidden, h_tilde, theta_tilde)


def uoro_gradient(cell: AbstractCell, state: UOROState, cotangent: Features) -> Grads:
    r"""``(∂y/∂θ)ᵀ c + ((∂y/∂h)ᵀ c · h̃) θ̃``, i.e. ``(∂y/∂θ)ᵀ c + M̂_tᵀ (∂y/∂h)ᵀ c``.

    ``(∂y/∂θ)ᵀ c`` is one VJP of ``y = output_θ(h_t)``; the scalar ``(∂y/∂h)ᵀ c · h̃`` is one
    JVP of ``cᵀ output(h)`` along ``h̃`` (the real-linear directional derivative, so a complex
    ``h`` needs no convention). O(P + cost of the readout).
    """
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def features_dot(p, h) -> Scalar:
        return cotangent @ eqx.combine(p, static).output(h)

    direct = jax.grad(features_dot)(params, state.hidden)
    _, along = jax.jvp(lambda h: features_dot(params, h), (state.hidden,), (state.h_tilde,))
    return jax.tree.map(lambda g, t: g + along.astype(t.dtype) * t, direct, state.theta_tilde)


class UORO(AbstractGradientEstimator[UOROState]):
    r"""Unbiased Online Recurrent Optimization (Tallec & Ollivier 2017): rank-one RTRL.

    RTRL carries the influence ``M_t = dh_t/dθ`` (``N × P``) through
    ``M_t = J_t M_{t-1} + F_t``; UORO carries two vectors instead, ``h̃_t`` (``N``) and
    ``θ̃_t`` (``P``), with ``E[h̃_t θ̃_tᵀ] = M_t`` exactly. Each step draws random signs ``ν``
    and adds ``ν νᵀ F_t`` (unbiased for ``F_t``) to the propagated rank-one term, rescaled by
    ``ρ0``, ``ρ1`` to keep the variance low (see `uoro_update`):

        h̃_t = ρ0 J_t h̃_{t-1} + ρ1 ν_t,        θ̃_t = θ̃_{t-1} / ρ0 + F_tᵀ ν_t / ρ1,
        gradient(c) = (∂y_t/∂θ)ᵀ c + ((∂y_t/∂h_t)ᵀ c · h̃_t) θ̃_t.

    Summed over a sequence, the expected gradient equals BPTT's (for fixed parameters); a
    single run is noisy, with a variance that grows with ``N`` and the sequence length.

    **Cost** per step: one JVP and one VJP of the cell step (no Jacobian is ever formed), i.e.
    a few times the cost of the forward step: O(N·(I+N)) for a `CTRNN`, for any cell in
    general; memory ``N + P``. The state is `UOROState`.

    **Cells:** any cell with real parameters, including complex hidden states (`LRU`: the
    signs have independent real and imaginary parts). A cell with complex parameter leaves
    raises `IncompatibleCellError` at `init`.

    **Randomness:** ``stochastic = True``: `step` needs its ``key`` (a fresh PRNG key per
    call, as the learners provide; a `ValueError` otherwise), from which it draws ``ν``.
    `init` accepts a key but draws nothing: ``h̃_0 = 0``, ``θ̃_0 = 0`` is exact (``M_0 = 0``).

    **Arguments:** ``eps``: the ``ε`` of ``ρ0``, ``ρ1`` (> 0; default ``1e-7``, the paper's).
    """

    stochastic: ClassVar[bool] = True
    eps: float = eqx.field(static=True, default=DEFAULT_EPS)

    def __check_init__(self) -> None:
        eps = self.eps
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1:
            raise ValueError(f"UORO: `eps` must be a number in (0, 1), got {eps!r}.")

    def _check_state(self, method: str, state) -> None:
        if not isinstance(state, UOROState):
            raise TypeError(
                f"UORO.{method}: expected the UOROState made by UORO.init, got "
                f"{type(state).__name__}."
            )

    def init(
        self, cell: AbstractCell, hidden: Hidden, x: Input, *, key: PRNGKey | None = None
    ) -> UOROState:
        del key  # h̃_0 = 0, θ̃_0 = 0 is the exact M_0 = 0: nothing to draw
        require_real_params(self, cell)
        check_step_inputs(self, "init", cell, hidden, x)
        params = eqx.filter(cell, eqx.is_inexact_array)
        return UOROState(hidden, jnp.zeros_like(hidden), jax.tree.map(jnp.zeros_like, params))

    def step(
        self,
        cell: AbstractCell,
        hidden: Hidden,
        x: Input,
        state: UOROState,
        *,
        key: PRNGKey | None = None,
    ) -> tuple[Hidden, UOROState]:
        if key is None:
            raise ValueError(
                "UORO.step draws random signs: pass key= (a fresh PRNG key for every step; "
                "the learners do this for a stochastic estimator)."
            )
        check_step_inputs(self, "step", cell, hidden, x)
        self._check_state("step", state)
        return uoro_update(cell, hidden, x, state, rademacher_like(key, hidden), eps=self.eps)

    def gradient(self, cell: AbstractCell, state: UOROState, cotangent: Features) -> Grads:
        check_cotangent(self, "gradient", cell, cotangent)
        self._check_state("gradient", state)
        return uoro_gradient(cell, state, cotangent)
