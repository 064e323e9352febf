"""Linear actors: a categorical policy for discrete actions, a Gaussian one for continuous."""

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Float, Int, PRNGKey, PyTree, Scalar
from ._linear import check_features, init_linear


class AbstractActor(eqx.Module):
    """A linear policy head: pre-activations ``z = W y + b``, then a distribution ``π(·|z)``.

    Everything the online learner needs is a function of ``z``: the error signals
    ``∂ log π(a|z)/∂z`` and ``∂H(π(·|z))/∂z`` are sent back to the features ``y`` by a feedback
    mode (``Wᵀ e`` or ``Bᵀ e``, through `readout_error`), and the parameter gradients are outer
    products ``e yᵀ`` (`parameter_gradient`).
    """

    weight: eqx.AbstractVar[Float[Array, "readouts features"]]
    bias: eqx.AbstractVar[Float[Array, " readouts"]]

    def preactivation(self, features: Float[Array, " features"]) -> Float[Array, " outputs"]:
        """``z = W y + b``."""
        check_features(self, features, self.weight.shape[1])
        return self.weight @ features + self.bias

    def readout_error(self, error: Float[Array, " outputs"]) -> Float[Array, " readouts"]:
        """The part of an error ``∂L/∂z`` that belongs to the outputs read from the features.

        A feedback mode sends ``Mᵀ readout_error(e)`` to the features (``M`` has the shape of
        `weight`). For a head whose every output is ``W y + b`` this is ``e`` itself.
        """
        return error

    def parameter_gradient(
        self, features: Float[Array, " features"], error: Float[Array, " outputs"]
    ) -> PyTree[Any]:
        """``∂L/∂θ`` of the head's trainable leaves, for an error ``e = ∂L/∂z`` at ``z(y)``.

        For ``z = W y + b``: ``∂L/∂W = e yᵀ`` and ``∂L/∂b = e``. Shaped like
        ``eqx.filter(head, eqx.is_inexact_array)``.
        """
        readout = self.readout_error(error)
        return eqx.tree_at(
            lambda h: (h.weight, h.bias),
            eqx.filter(self, eqx.is_inexact_array),
            (jnp.outer(readout, features), readout),
        )

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

    The mean is linear in the features, ``μ = W y + b ∈ R^A``. The log-scale is
    ``log σ = log σ_min + (log σ_max - log σ_min) · sigmoid(s)``, which keeps it in
    ``[σ_min, σ_max]`` without clipping (so gradients never vanish at a bound), where ``s`` is

    - ``state_dependent_std=True``: read from the features too, ``[μ, s] = W y + b`` (``W`` has
      ``2A`` rows);
    - ``state_dependent_std=False``: a learned vector ``std_logit ∈ R^A`` that does not depend
      on the features (the usual choice in PPO implementations). Its gradient then never
      reaches the cell, only the mean's does.

    Either way the pre-activations are ``z = [μ-part, s] ∈ R^{2A}``, so every method below is a
    function of ``z``. Samples are unbounded; `clip_action` maps them into the environment's box
    ``[low, high]``, and that clipped action is what the environment executes.

    **Log-probabilities.** With ``censored=False`` they are the Gaussian density of the
    unclipped sample (as in most PPO code). With ``censored=True`` they are those of the action
    the environment executes: a sample clipped to a bound has the probability mass beyond that
    bound, ``log Φ((low - μ)/σ)`` or ``log Φ((μ - high)/σ)``, per dimension (a censored
    Gaussian; Fujita & Maeda 2018, "Clipped action policy gradient"). The policy gradient then
    stays unbiased and loses the noise of samples whose outcome cannot differ: when ``μ`` lies
    far outside the box, every sample is clipped to the same action, the density's gradient
    ``(a - μ)/σ²`` is pure noise, and it random-walks ``μ`` further out; the censored gradient
    is close to zero there.

    **Arguments:** ``feature_size``, ``low``, ``high`` (action bounds, one per dimension),
    ``key``, ``log_std_min=-5.0``, ``log_std_max=1.0``, ``state_dependent_std=True``,
    ``censored=False``.
    """

    weight: Float[Array, "readouts features"]
    bias: Float[Array, " readouts"]
    std_logit: Float[Array, " actions"] | None
    low: tuple[float, ...] = eqx.field(static=True)
    high: tuple[float, ...] = eqx.field(static=True)
    log_std_min: float = eqx.field(static=True)
    log_std_max: float = eqx.field(static=True)
    censored: bool = eqx.field(static=True)

    def __init__(
        self,
        feature_size: int,
        low: tuple[float, ...],
        high: tuple[float, ...],
        *,
        key: PRNGKey,
        log_std_min: float = -5.0,
        log_std_max: float = 1.0,
        state_dependent_std: bool = True,
        censored: bool = False,
    ):
        self.low, self.high = tuple(map(float, low)), tuple(map(float, high))
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)
        self.censored = censored
        actions = len(self.low)
        if state_dependent_std:
            self.weight, self.bias = init_linear(2 * actions, feature_size, key=key)
            self.std_logit = None
        else:
            self.weight, self.bias = init_linear(actions, feature_size, key=key)
            # sigmoid(0) = 1/2: the same starting scale as a state-dependent head's (whose
            # s = W_s y + b_s starts near 0).
            self.std_logit = jnp.zeros((actions,), self.weight.dtype)

    def __check_init__(self) -> None:
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
        if not isinstance(self.censored, bool):
            raise TypeError(
                f"GaussianActor: `censored` must be True or False, got {self.censored!r}."
            )

    @property
    def action_size(self) -> int:
        return len(self.low)

    @property
    def state_dependent_std(self) -> bool:
        """Whether the log-scale is read from the features (see the class docstring)."""
        return self.std_logit is None

    def preactivation(self, features: Float[Array, " features"]) -> Float[Array, " outputs"]:
        """``z = [μ-part, s]``: ``W y + b``, followed by ``std_logit`` if it is a parameter."""
        z = super().preactivation(features)
        if self.std_logit is None:
            return z
        return jnp.concatenate([z, self.std_logit])

    def readout_error(self, error: Float[Array, " outputs"]) -> Float[Array, " readouts"]:
        return error if self.std_logit is None else error[: self.action_size]

    def parameter_gradient(
        self, features: Float[Array, " features"], error: Float[Array, " outputs"]
    ) -> PyTree[Any]:
        grads = super().parameter_gradient(features, error)
        if self.std_logit is None:
            return grads
        return eqx.tree_at(lambda h: h.std_logit, grads, error[self.action_size :])

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
        inverse_std = jnp.exp(-log_std)
        scaled = (action - mean) * inverse_std
        density = -0.5 * scaled**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
        if not self.censored:
            return jnp.sum(density)
        low = jnp.asarray(self.low, z.dtype)
        high = jnp.asarray(self.high, z.dtype)
        below = jax.scipy.special.log_ndtr((low - mean) * inverse_std)  # log P(sample <= low)
        above = jax.scipy.special.log_ndtr((mean - high) * inverse_std)  # log P(sample >= high)
        return jnp.sum(jnp.where(action <= low, below, jnp.where(action >= high, above, density)))

    def entropy_from(self, z: Float[Array, " outputs"]) -> Scalar:
        """The entropy of the (unclipped) Gaussian, ``Σ log σ + A (1 + log 2π)/2``."""
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
