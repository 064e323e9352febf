"""Truncated backpropagation through time over a sliding window, one step at a time."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Features, Float, Grads, Hidden, Input, Int, PRNGKey, Shaped
from ..cells import AbstractCell
from ._abstract import AbstractGradientEstimator
from ._common import check_cotangent, check_cotangents, check_step_inputs, stack_rows

_UNROLL = 8
"""Steps of the window's loop unrolled into straight-line code: a scan over 8 steps costs its
loop bookkeeping per step at batch 1 (TBPTT(8)'s learner: 29 → 22 µs per step), and a bound
keeps long windows' programs small."""


class TruncatedBPTTState(eqx.Module):
    """The last ``window`` steps, oldest first, and how many of them belong to this episode.

    - ``hidden``: the latest state ``h_t``;
    - ``hiddens[j]``, ``inputs[j]``: the pair ``(h_{s-1}, x_s)`` of step ``s = t - window + 1 + j``;
    - ``count``: how many of those steps are valid (``min(t, window)``; fewer after a reset).

    The states are stored rather than recomputed from the oldest one, so the unroll starts from
    the state the forward pass really had even when the parameters changed since.
    """

    hidden: Shaped[Array, " hidden"]
    hiddens: Shaped[Array, "window hidden"]
    inputs: Float[Array, "window input"]
    count: Int[Array, ""]


class TruncatedBPTT(AbstractGradientEstimator[TruncatedBPTTState]):
    r"""Backpropagation through the last `window` steps (Williams & Peng 1990).

        gradient(c) = d/dθ [cᵀ output(f_θ(… f_θ(h_{t-k}, x_{t-k+1}) …, x_t))],   k = min(t, window),

    with ``h_{t-k}`` held constant. With ``window >= T`` this equals full BPTT on a sequence of
    length ``T``; with ``window = 1`` it equals `LocalMSE`. Memory O(window·(N + I)); steps
    before the episode start are skipped with `jnp.where`, so shapes stay fixed.

    **Cost.** `gradients` (and `gradient`, its one-row case) splits the VJP of the unroll in two:

    1. one forward pass over the window (``k`` cell steps, parameters held constant) and one
       backward pass through the hidden states only, which gives, for every row ``c`` of the
       ``(K, features)`` cotangents and every step ``j``, ``δ_j = ∂(cᵀ y_t)/∂h_j``;
    2. ``Σ_j (∂f/∂θ)(h_{j-1}, x_j)ᵀ δ_j + (∂output/∂θ)ᵀ c``: one VJP of the ``k`` steps taken
       side by side, so the sum over ``j`` is one contraction (for a `CTRNN`,
       ``∇W = Σ_j (g_j ⊙ δ_j) ξ_jᵀ`` as one matrix product) instead of a parameter-sized
       accumulator read and written at every step of a scan's transpose.

    The forward pass and step 2's forward are shared by all ``K`` rows, so `rtrrl.RTRRL` asks
    for both of its cotangents in one `gradients` call (``shares_cotangent_work``) and takes
    the clipping norm from the gradient formed. The result equals the single VJP of the unroll
    up to float rounding (the sums are associated differently: after a 10,000-step float32
    training run the parameters were within 1e-5 of the single VJP's, relative to their size).

    **Arguments:** ``window``: number of steps to backpropagate through (>= 1).
    """

    shares_cotangent_work: ClassVar[bool] = True

    window: int = eqx.field(static=True)

    def __check_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"TruncatedBPTT: `window` must be an int >= 1, got {self.window!r}.")

    def init(
        self, cell: AbstractCell, hidden: Hidden, x: Input, *, key: PRNGKey | None = None
    ) -> TruncatedBPTTState:
        del key  # deterministic
        check_step_inputs(self, "init", cell, hidden, x)
        return TruncatedBPTTState(
            hidden=hidden,
            hiddens=jnp.zeros((self.window, *hidden.shape), hidden.dtype),
            inputs=jnp.zeros((self.window, *x.shape), x.dtype),
            count=jnp.array(0, jnp.int32),
        )

    def step(
        self,
        cell: AbstractCell,
        hidden: Hidden,
        x: Input,
        state: TruncatedBPTTState,
        *,
        key: PRNGKey | None = None,
    ) -> tuple[Hidden, TruncatedBPTTState]:
        del key  # deterministic
        check_step_inputs(self, "step", cell, hidden, x)
        next_hidden = cell(hidden, x)
        return next_hidden, TruncatedBPTTState(
            hidden=next_hidden,
            hiddens=jnp.concatenate([state.hiddens[1:], hidden[None]]),
            inputs=jnp.concatenate([state.inputs[1:], x[None]]),
            count=jnp.minimum(state.count + 1, self.window),
        )

    def gradient(self, cell: AbstractCell, state: TruncatedBPTTState, cotangent: Features) -> Grads:
        check_cotangent(self, "gradient", cell, cotangent)
        return jax.tree.map(lambda g: g[0], self._gradients(cell, state, cotangent[None]))

    def gradients(
        self,
        cell: AbstractCell,
        state: TruncatedBPTTState,
        cotangents: Float[Array, "rows features"],
    ) -> Grads:
        """`gradient` for each row of ``cotangents`` (``(K, features)``), leaves ``(K, ...)``:
        one forward unroll and one backward pass for all ``K`` rows (see the class)."""
        check_cotangents(self, "gradients", cell, cotangents)
        return self._gradients(cell, state, cotangents)

    def _gradients(
        self,
        cell: AbstractCell,
        state: TruncatedBPTTState,
        cotangents: Float[Array, "rows features"],
    ) -> Grads:
        """`gradients` without the shape check (the class docstring gives the two passes)."""
        params, static = eqx.partition(cell, eqx.is_inexact_array)
        first = self.window - state.count  # index of the oldest valid step
        steps = jnp.arange(self.window, dtype=jnp.int32)

        # 1. The window's forward pass with the parameters held constant and a zero added to
        # each step's new state, `ε_j`: the VJP in `ε` gives `δ_j = ∂(cᵀ y_t)/∂h_j` for every
        # step at once, with no parameter cotangent accumulated inside the loop.
        def unroll(perturbations):
            def body(h, step):
                j, h_stored, x, epsilon = step
                h = jnp.where(j == first, h_stored, h)
                return jnp.where(j >= first, cell(h, x), h) + epsilon, h

            xs = (steps, state.hiddens, state.inputs, perturbations)
            # Starting from `hidden` makes an empty window (count == 0) return output(h_t).
            h, h_inputs = jax.lax.scan(body, state.hidden, xs, unroll=min(self.window, _UNROLL))
            return cell.output(h), (h, h_inputs)

        zeros = jnp.zeros((self.window, *state.hidden.shape), state.hidden.dtype)
        _, vjp_hidden, (h_last, h_inputs) = jax.vjp(unroll, zeros, has_aux=True)
        (deltas,) = jax.vmap(vjp_hidden)(cotangents)  # (K, window, *hidden)
        # Steps before the episode start passed `h` through: they have no parameter term.
        valid = (steps >= first).reshape((1, self.window) + (1,) * state.hidden.ndim)
        deltas = jnp.where(valid, deltas, jnp.zeros_like(deltas))

        # 2. Σ_j (∂f/∂θ)(h_{j-1}, x_j)ᵀ δ_j + (∂output/∂θ)ᵀ c: the VJP of the window's steps
        # taken side by side (`vmap` over j), so the sum over j is one contraction.
        def steps_and_output(params):
            model = eqx.combine(params, static)
            return jax.vmap(model)(h_inputs, state.inputs), model.output(h_last)

        _, vjp_params = jax.vjp(steps_and_output, params)
        # One call per row rather than `vmap` over rows: under the learner's `vmap` over
        # environments the vmapped form became a batched matrix product that XLA:CPU ran far
        # slower (TBPTT(8)'s learner at batch 64: 780 µs per step against 483 µs this way).
        rows = [vjp_params((deltas[k], cotangents[k]))[0] for k in range(cotangents.shape[0])]
        return stack_rows(rows)
