"""The linear critic ``v̂(y) = wᵀ y + b``."""

import equinox as eqx
import jax.numpy as jnp

from .._types import Array, Float, PRNGKey, Scalar
from ._linear import check_features, init_linear


class Critic(eqx.Module):
    """A linear state-value head, ``v̂(y) = wᵀ y + b``.

    Its gradient is the feature vector itself, ``∇_w v̂ = y`` and ``∇_b v̂ = 1``, which is what
    makes true-online TD(λ) (`rtrrl.traces.DutchTrace`) exact for it.

    **Arguments:** ``feature_size``, ``key``.
    """

    weight: Float[Array, " features"]
    bias: Float[Array, ""]

    def __init__(self, feature_size: int, *, key: PRNGKey):
        weight, bias = init_linear(1, feature_size, key=key)
        self.weight, self.bias = weight[0], bias[0]

    def __call__(self, features: Float[Array, " features"]) -> Scalar:
        check_features(self, features, self.weight.shape[0])
        return jnp.dot(self.weight, features) + self.bias

    def as_matrix(self) -> Float[Array, "1 features"]:
        """The weight as a one-row matrix, the shape a feedback mode projects through."""
        return self.weight[None, :]
