"""Dense influence matrix for any cell: the generic form of RTRL (and of LocalMSE)."""

import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Inexact

from .._types import Array, Features, Float, Grads, Hidden, Input
from ..cells import AbstractCell
from ._common import flat_params
from ._registry import Kernel


class RTRLState(eqx.Module):
    """The latest hidden state ``h_t`` and the influence matrix ``M_t = dh_t/dθ``.

    ``θ`` is the cell's trainable leaves flattened in `jax.flatten_util.ravel_pytree` order.
    For a complex hidden state (LRU through the generic path) ``M_t`` is complex: column ``p``
    is the derivative of the complex vector ``h_t`` along the real parameter ``θ_p``.
    """

    hidden: Inexact[Array, " hidden"]
    influence: Inexact[Array, "hidden params"]


def _param_jacobian(
    fn: Callable[[Array], Array], flat: Float[Array, " params"]
) -> Inexact[Array, "hidden params"]:
    """``∂fn/∂θ`` by reverse mode, one VJP per output (N VJPs of cost O(P) each)."""
    out = jax.eval_shape(fn, flat)
    if jnp.issubdtype(out.dtype, jnp.complexfloating):
        # jacrev needs a real output for a real input: differentiate (Re, Im) and reassemble.
        def parts_of(p: Array) -> Array:
            z = fn(p)
            return jnp.stack([jnp.real(z), jnp.imag(z)])

        parts = jax.jacrev(parts_of)(flat)
        return jax.lax.complex(parts[0], parts[1])
    return jax.jacrev(fn)(flat)


def dense_init(cell: AbstractCell, hidden: Hidden, x: Input) -> RTRLState:
    """``h_0`` and ``M_0 = 0`` of shape ``(N, P)``: the initial state does not depend on ``θ``."""
    flat, _, _ = flat_params(cell)
    return RTRLState(hidden, jnp.zeros((hidden.shape[0], flat.shape[0]), hidden.dtype))


def dense_step(
    cell: AbstractCell, hidden: Hidden, x: Input, state: RTRLState, *, carry: bool
) -> tuple[Hidden, RTRLState]:
    r"""``M_t = (∂f/∂h) M_{t-1} + ∂f/∂θ`` (Williams & Zipser 1989); ``carry=False`` drops the first term.

    ``∂f/∂θ`` costs N VJPs (O(N·P) for a CTRNN); the carry is P forward-mode JVPs of the
    recurrence, one per column of ``M``, i.e. O(N²·P) = O(N⁴) for a CTRNN. JVPs push complex
    columns correctly through non-holomorphic cells too (they are real-linear maps).
    """
    flat, unravel, static = flat_params(cell)

    def f(params: Array, h: Array) -> Array:
        return eqx.combine(unravel(params), static)(h, x)

    next_hidden = cell(hidden, x)
    if flat.shape[0] == 0:  # a parameter-free cell (Identity): nothing to carry
        return next_hidden, RTRLState(next_hidden, state.influence)
    influence = _param_jacobian(lambda p: f(p, hidden), flat).astype(hidden.dtype)
    if carry:
        _, push = jax.linearize(lambda h: f(flat, h), hidden)
        influence = influence + jax.vmap(push, in_axes=1, out_axes=1)(state.influence)
    return next_hidden, RTRLState(next_hidden, influence)


def dense_gradient(cell: AbstractCell, state: RTRLState, cotangent: Features) -> Grads:
    """``(∂y/∂θ)ᵀ c + Re(h̄ M_t)`` with ``(θ̄, h̄)`` the VJP of ``y = output_θ(h_t)`` at ``c``.

    JAX's VJP of a real function of a complex ``h`` returns ``h̄`` such that the derivative
    along a complex direction ``v`` is ``Re(h̄ · v)``; for a real ``h`` this is ``h̄ · v``.
    """
    flat, unravel, static = flat_params(cell)
    if flat.shape[0] == 0:
        return unravel(flat)

    def y(params: Array, h: Array) -> Array:
        return eqx.combine(unravel(params), static).output(h)

    _, vjp = jax.vjp(y, flat, state.hidden)
    g_params, g_hidden = vjp(cotangent)
    return unravel(g_params + jnp.real(g_hidden @ state.influence))


def dense_kernel(*, carry: bool) -> Kernel:
    """The generic form as a `Kernel`: RTRL's (``carry=True``) or LocalMSE's (``carry=False``).

    It is not registered (it is every estimator's fallback, not a cell's structured form);
    `dense_init` needs real parameters (`require_real_params`).
    """
    return Kernel(RTRLState, dense_init, functools.partial(dense_step, carry=carry), dense_gradient)


DENSE_RTRL = dense_kernel(carry=True)
DENSE_LOCAL_MSE = dense_kernel(carry=False)
