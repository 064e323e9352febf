"""Truncated backpropagation through time over a sliding window, one step at a time."""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Features, Float, Grads, Hidden, Input, Int, PRNGKey, Shaped
from ..cells import AbstractCell
from ._abstract import AbstractGradientEstimator
from ._common import check_cotangent, check_step_inputs


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
    length ``T``; with ``window = 1`` it equals `LocalMSE`. Memory O(window·(N + I)); each
    `gradient` is one VJP of a ``window``-step unroll (steps before the episode start are
    skipped with `jnp.where`, so shapes stay fixed).

    **Arguments:** ``window``: number of steps to backpropagate through (>= 1).
    """

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
        params, static = eqx.partition(cell, eqx.is_inexact_array)
        first = self.window - state.count  # index of the oldest valid step

        def unrolled_output(params) -> Float[Array, " features"]:
            model = eqx.combine(params, static)

            def body(h, step):
                j, h_stored, x = step
                h = jnp.where(j == first, h_stored, h)
                return jnp.where(j >= first, model(h, x), h), None

            steps = (jnp.arange(self.window, dtype=jnp.int32), state.hiddens, state.inputs)
            # Starting from `hidden` makes an empty window (count == 0) return output(h_t).
            h, _ = jax.lax.scan(body, state.hidden, steps)
            return model.output(h)

        _, vjp = jax.vjp(unrolled_output, params)
        (grads,) = vjp(cotangent)
        return grads
