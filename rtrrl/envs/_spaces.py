"""Action spaces: what an agent may send to `AbstractEnvironment.step`."""

import equinox as eqx
import jax
import jax.core  # `jax.core.Tracer`: a submodule, imported by name for type checkers
import jax.numpy as jnp
import numpy as np

from .._types import Array, Float, Int, PRNGKey


class Discrete(eqx.Module):
    """Actions are integers ``0 .. n-1`` (scalar, integer dtype)."""

    n: int = eqx.field(static=True)

    def __check_init__(self) -> None:
        if not (isinstance(self.n, int) and self.n >= 1):
            raise ValueError(f"Discrete(n={self.n!r}): `n` must be an integer >= 1.")

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    @property
    def size(self) -> int:
        """Length of the action's encoding in the Meta-RL input (a one-hot of length `n`)."""
        return self.n

    def sample(self, key: PRNGKey) -> Int[Array, ""]:
        """A uniformly random action (``int32``)."""
        return jax.random.randint(key, (), 0, self.n, dtype=jnp.int32)

    def zero(self) -> Int[Array, ""]:
        """A placeholder action of the right type (action 0)."""
        return jnp.zeros((), jnp.int32)

    def check(self, action: Array, env_name: str) -> None:
        """Raise a `TypeError` naming the environment if `action` does not fit (trace time)."""
        action = jnp.asarray(action)
        if action.shape != () or not jnp.issubdtype(action.dtype, jnp.integer):
            raise TypeError(
                f"{env_name}: expected one discrete action, an integer scalar in [0, {self.n}), "
                f"got an array of shape {action.shape} and dtype {action.dtype}. For a batch of "
                "environments use `rtrrl.envs.VectorEnv` (or `jax.vmap`)."
            )
        if not isinstance(action, jax.core.Tracer) and not 0 <= int(action) < self.n:
            # A concrete action (a call outside `jit`) can be checked by value as well.
            raise ValueError(f"{env_name}: action {int(action)} is outside [0, {self.n}).")


class Box(eqx.Module):
    """Continuous actions: a float vector with per-dimension bounds ``low <= a <= high``."""

    low: tuple[float, ...] = eqx.field(static=True)
    high: tuple[float, ...] = eqx.field(static=True)

    def __check_init__(self) -> None:
        if len(self.low) != len(self.high) or len(self.low) == 0:
            raise ValueError(
                f"Box(low={self.low}, high={self.high}): `low` and `high` must be non-empty and "
                "of the same length."
            )
        if not np.all(np.asarray(self.low) < np.asarray(self.high)):
            raise ValueError(f"Box(low={self.low}, high={self.high}): need low < high everywhere.")

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.low),)

    @property
    def size(self) -> int:
        """Number of action dimensions."""
        return len(self.low)

    def sample(self, key: PRNGKey) -> Float[Array, " action"]:
        """A uniformly random action within the bounds (default float dtype)."""
        dtype = jax.dtypes.canonicalize_dtype(jnp.float64)  # float32 unless x64 is on
        low, high = jnp.asarray(self.low, dtype), jnp.asarray(self.high, dtype)
        return jax.random.uniform(key, self.shape, dtype, low, high)

    def zero(self) -> Float[Array, " action"]:
        """A placeholder action of the right type (all zeros)."""
        return jnp.zeros(self.shape, jax.dtypes.canonicalize_dtype(jnp.float64))

    def check(self, action: Array, env_name: str) -> None:
        """Raise a `TypeError` naming the environment if `action` does not fit (trace time)."""
        action = jnp.asarray(action)
        if action.shape != self.shape or not jnp.issubdtype(action.dtype, jnp.floating):
            raise TypeError(
                f"{env_name}: expected a continuous action, a float array of shape {self.shape} "
                f"within [{self.low}, {self.high}], got shape {action.shape} and dtype "
                f"{action.dtype}. For a batch of environments use `rtrrl.envs.VectorEnv`."
            )


ActionSpace = Discrete | Box
