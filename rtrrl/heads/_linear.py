"""The linear map shared by every head: ``z = W y + b``."""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Float, PRNGKey


def init_linear(
    out_size: int, in_size: int, *, key: PRNGKey
) -> tuple[Float[Array, "out in"], Float[Array, " out"]]:
    """Weights ``U(-1/√in, 1/√in)`` (the usual fan-in scale) and zero biases.

    The same distribution draws the fixed feedback-alignment matrices, so that errors sent to
    the cell have the same scale under `Backprop` and `FeedbackAlignment` at the start.
    """
    if out_size < 1 or in_size < 1:
        raise ValueError(f"A linear head needs positive sizes, got out={out_size}, in={in_size}.")
    dtype = jnp.zeros(()).dtype
    bound = 1.0 / in_size**0.5
    weight = jax.random.uniform(key, (out_size, in_size), dtype, -bound, bound)
    return weight, jnp.zeros((out_size,), dtype)


def check_features(head: eqx.Module, features: Array, feature_size: int) -> None:
    """Raise a `ValueError` naming the head if `features` is not one unbatched feature vector."""
    if features.shape != (feature_size,):
        raise ValueError(
            f"{type(head).__name__} expects one feature vector of shape ({feature_size},), got "
            f"shape {features.shape}. Heads take one example per call: batch with `jax.vmap`."
        )
