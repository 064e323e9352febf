"""The interface every recurrent cell implements."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

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

    def check_step_inputs(self, hidden: Hidden, x: Input, *, caller: str | None = None) -> None:
        """Raise a `ValueError` naming `caller` if `hidden` or `x` has the wrong shape.

        ``x`` must be one input vector of shape ``(input_size,)`` and ``hidden`` must be shaped
        like `init_hidden()`. Shapes are static, so the check runs once, while JAX traces, and
        costs nothing per step.
        """
        where = caller or type(self).__name__
        if jnp.shape(x) != (self.input_size,):
            raise ValueError(
                f"{where}: the input `x` must have shape ({self.input_size},) (the cell's "
                f"input_size), got {jnp.shape(x)}. Cells take one example per call: batch "
                "with jax.vmap."
            )
        expected = jax.eval_shape(self.init_hidden).shape
        if jnp.shape(hidden) != expected:
            raise ValueError(
                f"{where}: `hidden` must have shape {expected} (that of "
                f"{type(self).__name__}.init_hidden()), got {jnp.shape(hidden)}."
            )

    def check_features(self, features: Features, *, name: str, caller: str) -> None:
        """Raise a `ValueError` naming `caller` unless `features` has shape ``(feature_size,)``
        (a cotangent of the features, for instance)."""
        if jnp.shape(features) != (self.feature_size,):
            raise ValueError(
                f"{caller}: `{name}` must have the shape of the cell's features "
                f"({self.feature_size},), got {jnp.shape(features)}."
            )
