"""B independent copies of an environment, stepped together."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Bool, Float, PRNGKey, PyTree
from ._base import AbstractEnvironment, StepInfo
from ._spaces import ActionSpace


class VectorEnv(eqx.Module):
    """``num_envs`` independent copies of `env`, each with its own key, state and episodes.

    `reset` and `step` are `jax.vmap` of the single environment's: every output gains a
    leading ``batch`` axis (the `StepInfo` fields too), and the key passed in is split into
    one key per environment, so no two environments share randomness (a pitfall of the paper's code: one shared key correlates the environments).
    Each environment resets on its own when its episode ends.

    Not an `AbstractEnvironment`: its arrays carry the batch axis.

    **Arguments:**

    - `env`: the environment to copy.
    - `num_envs`: ``B``, the number of copies.
    """

    env: AbstractEnvironment
    num_envs: int = eqx.field(static=True)

    def __check_init__(self) -> None:
        if not (isinstance(self.num_envs, int) and self.num_envs >= 1):
            raise ValueError(f"VectorEnv(num_envs={self.num_envs!r}): need an integer >= 1.")

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def observation_size(self) -> int:
        return self.env.observation_size

    @property
    def action_space(self) -> ActionSpace:
        """The action space of *one* environment; `step` takes a batch of such actions."""
        return self.env.action_space

    def sample_actions(self, key: PRNGKey) -> Array:
        """One uniformly random action per environment, shape ``(batch, *action_space.shape)``."""
        return jax.vmap(self.env.action_space.sample)(jax.random.split(key, self.num_envs))

    def reset(self, key: PRNGKey) -> tuple[Float[Array, "batch obs"], PyTree[Any]]:
        """``(o_0, state)`` of every environment."""
        return jax.vmap(self.env.reset)(jax.random.split(key, self.num_envs))

    def step(
        self, key: PRNGKey, state: PyTree[Any], action: Array
    ) -> tuple[
        Float[Array, "batch obs"],
        PyTree[Any],
        Float[Array, " batch"],
        Bool[Array, " batch"],
        StepInfo,
    ]:
        """Step every environment; `action` has shape ``(batch, *action_space.shape)``."""
        action = jnp.asarray(action)
        expected = (self.num_envs, *self.env.action_space.shape)
        if action.shape != expected:
            raise TypeError(
                f"{self.name} (VectorEnv of {self.num_envs}): expected actions of shape "
                f"{expected} (one per environment), got shape {action.shape}."
            )
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.step)(keys, state, action)
