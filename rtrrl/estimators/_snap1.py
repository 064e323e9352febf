r"""Sparse n-step approximation with n = 1 (SnAp-1, Menick et al. 2021)."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Inexact

from .._types import Array, Hidden, Input
from ..cells import AbstractCell
from ._common import flat_params, require_real_params
from ._dense import RTRLState, _param_jacobian, dense_gradient, dense_init
from ._registry import Kernel
from ._structured import AbstractStructuredEstimator


def recurrent_jacobian_diagonal(
    cell: AbstractCell, hidden: Hidden, x: Input
) -> tuple[Inexact[Array, " hidden"], Inexact[Array, " hidden"] | None]:
    r"""The diagonal of ``J = ∂f/∂h`` at ``(h_{t-1}, x_t)``, by N forward-mode JVPs.

    Real ``h``: ``(d, None)`` with ``d_i = J_ii``. Complex ``h`` (``J`` is a real-linear map of
    ``C^N``): ``(d_re, d_im)`` with ``d_re_i = ∂f_i/∂Re(h_i)`` and ``d_im_i = ∂f_i/∂Im(h_i)``
    (complex numbers), so that ``f_i`` moves by ``d_re_i Re(v) + d_im_i Im(v)`` when ``h_i``
    moves by ``v``; for a holomorphic step ``d_im = i·d_re``.
    """
    _, push = jax.linearize(lambda h: cell(h, x), hidden)
    eye = jnp.eye(hidden.shape[0], dtype=hidden.dtype)
    # Row k of vmap(push)(eye) is J e_k, the k-th column of J: its k-th entry is J_kk.
    d_re = jnp.diagonal(jax.vmap(push)(eye))
    if not jnp.iscomplexobj(hidden):
        return d_re, None
    return d_re, jnp.diagonal(jax.vmap(push)(1j * eye))


def snap1_dense_step(
    cell: AbstractCell, hidden: Hidden, x: Input, state: RTRLState
) -> tuple[Hidden, RTRLState]:
    r"""``M_t = diag(J_t) M_{t-1} + F_t`` on a dense ``(N, P)`` influence matrix.

    ``F_t = ∂f/∂θ`` costs N VJPs (as RTRL's), the diagonal of ``J_t`` N JVPs of the step, the
    carry an elementwise row scaling: O(N·P) per step (RTRL's carry costs O(N²·P)). Complex
    ``h``: ``M_t[i] = d_re_i Re(M_{t-1}[i]) + d_im_i Im(M_{t-1}[i]) + F_t[i]`` (see
    `recurrent_jacobian_diagonal`).

    **Sparsity pattern.** No mask is stored: the pattern is the structural support of ``F``
    (the entries ``(i, j)`` such that parameter ``j`` can move unit ``i`` within one step),
    and the row scaling never leaves it. Entries outside it are exact zeros in every ``F_t``
    (a wiring mask applied with `jnp.where`, a parameter that does not enter row ``i``), so
    they stay exactly zero in ``M_t``; entries inside it are carried even at a step where
    ``F_t[i, j]`` happens to vanish (``h_{t-1} = 0``, ``x_t = 0``).
    """
    flat, unravel, static = flat_params(cell)
    next_hidden = cell(hidden, x)
    if flat.shape[0] == 0:  # a parameter-free cell (Identity): nothing to carry
        return next_hidden, RTRLState(next_hidden, state.influence)

    def f(params: Array) -> Array:
        return eqx.combine(unravel(params), static)(hidden, x)

    immediate = _param_jacobian(f, flat).astype(hidden.dtype)
    d_re, d_im = recurrent_jacobian_diagonal(cell, hidden, x)
    if d_im is None:
        carried = d_re[:, None] * state.influence
    else:
        real = jnp.real(state.influence).astype(hidden.dtype)
        imag = jnp.imag(state.influence).astype(hidden.dtype)
        carried = d_re[:, None] * real + d_im[:, None] * imag
    return next_hidden, RTRLState(next_hidden, carried + immediate)


DENSE_SNAP1 = Kernel(RTRLState, dense_init, snap1_dense_step, dense_gradient)
"""SnAp-1's generic form (state `RTRLState`, gradient as RTRL's): not registered, the fallback."""


class SnAp1(AbstractStructuredEstimator[eqx.Module]):
    r"""SnAp-1 (Menick et al. 2021): RTRL restricted to the sparsity of the immediate Jacobian.

    RTRL's influence ``M_t = dh_t/dθ`` obeys ``M_t = J_t M_{t-1} + F_t`` with
    ``J_t = ∂f/∂h`` and ``F_t = ∂f/∂θ`` at ``(h_{t-1}, x_t)``. SnAp-1 keeps only the entries
    ``(i, j)`` in the pattern of ``F`` (parameter ``j`` moves unit ``i`` within one step) and
    carries them through the diagonal of the full recurrent Jacobian:

        M_t[i, j] = J_t[i, i] M_{t-1}[i, j] + F_t[i, j],     M_0 = 0,
        gradient(c) = (∂y_t/∂θ)ᵀ c + M_tᵀ (∂y_t/∂h_t)ᵀ c.

    (Menick et al. mask the full product ``J_t M_{t-1}`` to the pattern; the two agree when each
    parameter moves at most one unit within one step, as in a `CTRNN` or an `LRU`.)

    **Exactness.** If ``J_t`` is diagonal at every step, ``M_t`` keeps the pattern of ``F``
    and SnAp-1 is RTRL: the `LRU` (``J = diag(λ)``), a `CTRNN` whose recurrent block is
    diagonal. On a `CTRNN` with ``r = dt/τ``, ``a = tanh(W̃ ξ_t)``,
    ``J_ii = (1 - r_i) + r_i (1 - a_i²) W̃_ii`` (leak plus self-connection through ``tanh'``);
    `RFLO` carries ``1 - r_i`` only, with the same immediate terms, so SnAp-1 equals RFLO
    exactly when the diagonal of the recurrent block of ``W̃`` is zero (the proof is in the
    CTRNN kernel, ``rtrrl/estimators/_kernels/_ctrnn.py``).

    **Forms.**

    - A cell with a ``"snap1"`` kernel (see `register_kernel`): `CTRNN`, per-neuron traces
      shaped like the parameters (`RFLOState`, O(N·(I+N)) per step); `LRU`, RTRL's diagonal
      traces (`LRURTRLState`, O(N·I)).
    - Any other cell with real parameters (the generic form, `RTRLState`): a dense ``(N, P)``
      ``M``; ``F`` by N VJPs and the diagonal of ``J`` by N JVPs, O(N·P) per step (see
      `snap1_dense_step` for how the pattern is kept).

    Deterministic (``stochastic = False``).

    **Arguments:** ``structured``: use the structured form where one exists (default);
    `False` forces the generic form (for testing it, or timing the difference).
    """

    kind: ClassVar[str] = "snap1"
    structured: bool = eqx.field(static=True, default=True)

    def __check_init__(self) -> None:
        if not isinstance(self.structured, bool):
            raise ValueError(f"SnAp1: `structured` must be True or False, got {self.structured!r}.")

    def kernel(self, cell: AbstractCell) -> Kernel:
        return super().kernel(cell) if self.structured else self.generic_kernel(cell)

    def generic_kernel(self, cell: AbstractCell) -> Kernel:
        """The dense masked influence matrix (`RTRLState`), for any cell with real parameters."""
        require_real_params(self, cell)
        return DENSE_SNAP1
