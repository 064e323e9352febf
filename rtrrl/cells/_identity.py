"""The identity feature map: the "cell" of linear TD(λ)."""

import equinox as eqx
import jax.numpy as jnp

from .._types import Array, Features, Float, Hidden, Input
from ._abstract import AbstractCell


class Identity(AbstractCell):
    """No recurrence and no parameters: ``h_t = x_t`` and ``output(h) = h``.

    Linear TD(λ) is RTRRL with this feature map: the heads read the input directly. Since the
    cell has no trainable leaf, every estimator's `gradient` returns an empty PyTree shaped like
    ``eqx.filter(cell, eqx.is_inexact_array)`` (no array leaves), and the learner needs no
    special case. Pair it with `RTRL()`, `LocalMSE()` or `TruncatedBPTT` (their state is then
    zero-sized); `RFLO` is defined for `CTRNN` only and refuses it.

    **Arguments:** ``size``: the input size, which is also the hidden and feature size.
    """

    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, size: int):
        if isinstance(size, bool) or size < 1:
            raise ValueError(f"Identity: `size` must be a positive int, got {size!r}.")
        self.input_size = size
        self.hidden_size = size

    @property
    def feature_size(self) -> int:
        return self.hidden_size

    def init_hidden(self) -> Float[Array, " hidden"]:
        return jnp.zeros((self.hidden_size,))

    def __call__(self, hidden: Hidden, x: Input) -> Float[Array, " hidden"]:
        self.check_step_inputs(hidden, x)
        return x

    def output(self, hidden: Hidden) -> Features:
        return hidden
