"""The interface every recurrent cell implements."""

import abc

import equinox as eqx

from .._types import Features, Hidden, Input


class AbstractCell(eqx.Module):
    """A recurrent cell: one example per call, batching is the caller's `jax.vmap`.

    A cell maps ``(h_{t-1}, x_t) -> h_t`` and exposes features ``y_t = output(h_t)`` that the
    actor and critic read. Its trainable parameters are its inexact-array leaves,
    ``eqx.filter(cell, eqx.is_inexact_array)``; everything else (sizes, masks marked static or
    integer/bool arrays) is configuration.

    Gradient estimators (`rtrrl.estimators`) treat a cell as a pure function of its parameters:
    they never rely on a custom VJP inside the cell, so `jax.grad` through a cell is exact.
    """

    input_size: eqx.AbstractVar[int]
    hidden_size: eqx.AbstractVar[int]

    @property
    @abc.abstractmethod
    def feature_size(self) -> int:
        """Size of `output(hidden)`."""

    @abc.abstractmethod
    def init_hidden(self) -> Hidden:
        """The state at the start of an episode, ``h_0`` (constant in the parameters)."""

    @abc.abstractmethod
    def __call__(self, hidden: Hidden, x: Input) -> Hidden:
        """One step of the recurrence, ``h_t = f_θ(h_{t-1}, x_t)``."""

    @abc.abstractmethod
    def output(self, hidden: Hidden) -> Features:
        """The features ``y_t = g_θ(h_t)`` read by the heads."""
