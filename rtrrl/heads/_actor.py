"""Linear actors: a categorical policy for discrete actions, a Gaussian one for continuous."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Float, Int, PRNGKey, Scalar
from ._linear import check_features, init_linear


class AbstractActor(eqx.Module):
    """A linear policy head: pre-activations ``z = W y + b``, then a distribution ``π(·|z)``.

    Everything the online learner needs is a function of ``z``: the error signals
    ``∂ log π(a|z)/∂z`` and ``∂H(π(·|z))/∂z`` are sent back to the features ``y`` by a feedback
    mode (``Wᵀ e`` or ``Bᵀ e``), and the parameter gradients are outer products ``e yᵀ``.
    """

    weight: eqx.AbstractVar[Float[Array, "outputs features"]]
    bias: eqx.AbstractVar[Float[Array, " outputs"]]

    def preactivation(self, features: Float[Array, " features"]) -> Float[Array, " outputs"]:
        """``z = W y + b``."""
        check_features(self, features, self.weight.shape[1])
        return self.weight @ features + self.bias

    @abc.abstractmethod
    def log_prob_from(self, z: Float[Array, " outputs"], action: Array) -> Scalar:
        """``log π(action | z)``."""

    @abc.abstractmethod
    def entropy_from(self, z: Float[Array, " outputs"]) -> Scalar:
        """``H(π(·|z))``."""

    @abc.abstractmethod
    def sample_from(self, z: Float[Array, " outputs"], *, key: PRNGKey) -> Array:
        """A sample ``a ~ π(·|z)``."""

    @abc.abstractmethod
    def mode_from(self, z: Float[Array, " outputs"]) -> Array:
        """The most likely action (greedy evaluation)."""

    def log_prob(self, features: Float[Array, " features"], action: Array) -> Scalar:
        """``log π(action | y)``."""
        return self.log_prob_from(self.preactivation(features), action)

    def entropy(self, features: Float[Array, " features"]) -> Scalar:
        """``H(π(·|y))``."""
        return self.entropy_from(self.preactivation(features))

    def sample(self, features: Float[Array, " features"], *, key: PRNGKey) -> Array:
        """``a ~ π(·|y)``."""
        return self.sample_from(self.preactivation(features), key=key)


class CategoricalActor(AbstractActor):
    """``π(a|y) = softmax(W y + b)_a`` over ``num_actions`` discrete actions.

    **Arguments:** ``feature_size``, ``num_actions``, ``key``.
    """

    weight: Float[Array, "actions features"]
    bias: Float[Array, " actions"]

    def __init__(self, feature_size: int, num_actions: int, *, key: PRNGKey):
        if num_actions < 2:
            raise ValueError(f"CategoricalActor needs num_actions >= 2, got {num_actions}.")
        self.weight, self.bias = init_linear(num_actions, feature_size, key=key)

    @property
    def num_actions(self) -> int:
        return self.weight.shape[0]

    def log_prob_from(self, z: Float[Array, " actions"], action: Int[Array, ""]) -> Scalar:
        return jax.nn.log_softmax(z)[action]

    def entropy_from(self, z: Float[Array, " actions"]) -> Scalar:
        log_p = jax.nn.log_softmax(z)
        return -jnp.sum(jnp.exp(log_p) * log_p)

    def sample_from(self, z: Float[Array, " actions"], *, key: PRNGKey) -> Int[Array, ""]:
        return jax.random.categorical(key, z).astype(jnp.int32)

    def mode_from(self, z: Float[Array, " actions"]) -> Int[Array, ""]:
        return jnp.argmax(z).astype(jnp.int32)


class GaussianActor(AbstractActor):
    """A diagonal Gaussian policy with a bounded log-scale.

    ``z = W y + b = [μ, s]`` with ``μ, s ∈ R^A``; ``log σ = log σ_min + (log σ_max - log σ_min)
    · sigmoid(s)`` keeps the scale in ``[σ_min, σ_max]`` without clipping (so gradients never
    vanish at a bound). Samples are unbounded; `clip_action` maps them into the environment's
    box ``[low, high]`` (log-probabilities are of the unclipped sample, as in PPO).

    **Arguments:** ``feature_size``, ``low``, ``high`` (action bounds, one per dimension),
    ``key``, ``log_std_min=-5.0``, ``log_std_max=1.0``.
    """

    weight: Float[Array, "outputs features"]
    bias: Float[Array, " outputs"]
    low: tuple[float, ...] = eqx.field(static=True)
    high: tuple[float, ...] = eqx.field(static=True)
    log_std_min: float = eqx.field(static=True)
    log_std_max: float = eqx.field(static=True)

    def __init__(
        self,
        feature_size: int,
        low: tuple[float, ...],
        high: tuple[float, ...],
        *,
        key: PRNGKey,
        log_std_min: float = -5.0,
        log_std_max: float = 1.0,
    ):
        self.low, self.high = tuple(map(float, low)), tuple(map(float, high))
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)
        self.weight, self.bias = init_linear(2 * len(self.low), feature_size, key=key)

    def __check_init__(self):
        if len(self.low) != len(self.high):
            raise ValueError(
                f"GaussianActor: `low` and `high` need one bound per action dimension each, got "
                f"{len(self.low)} and {len(self.high)} (low={self.low}, high={self.high})."
            )
        if not all(lo < hi for lo, hi in zip(self.low, self.high, strict=True)):
            raise ValueError(
                f"GaussianActor: need low < high per dimension, got low={self.low}, "
                f"high={self.high}."
            )
        if not self.log_std_min < self.log_std_max:
            raise ValueError(
                f"GaussianActor: need log_std_min < log_std_max, got {self.log_std_min} and "
                f"{self.log_std_max}."
            )

    @property
    def action_size(self) -> int:
        return len(self.low)

    def mean_and_log_std(
        self, z: Float[Array, " outputs"]
    ) -> tuple[Float[Array, " actions"], Float[Array, " actions"]]:
        """Split ``z`` into the mean and the bounded log standard deviation."""
        mean, raw = z[: self.action_size], z[self.action_size :]
        span = self.log_std_max - self.log_std_min
        return mean, self.log_std_min + span * jax.nn.sigmoid(raw)

    def log_prob_from(
        self, z: Float[Array, " outputs"], action: Float[Array, " actions"]
    ) -> Scalar:
        mean, log_std = self.mean_and_log_std(z)
        scaled = (action - mean) * jnp.exp(-log_std)
        return jnp.sum(-0.5 * scaled**2 - log_std - 0.5 * jnp.log(2 * jnp.pi))

    def entropy_from(self, z: Float[Array, " outputs"]) -> Scalar:
        _, log_std = self.mean_and_log_std(z)
        return jnp.sum(log_std + 0.5 * (1.0 + jnp.log(2 * jnp.pi)))

    def sample_from(self, z: Float[Array, " outputs"], *, key: PRNGKey) -> Float[Array, " actions"]:
        mean, log_std = self.mean_and_log_std(z)
        return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)

    def mode_from(self, z: Float[Array, " outputs"]) -> Float[Array, " actions"]:
        return self.mean_and_log_std(z)[0]

    def clip_action(self, action: Float[Array, " actions"]) -> Float[Array, " actions"]:
        """The action the environment receives: clipped into ``[low, high]``."""
        dtype = action.dtype
        return jnp.clip(action, jnp.asarray(self.low, dtype), jnp.asarray(self.high, dtype))
