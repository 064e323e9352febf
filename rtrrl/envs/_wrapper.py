"""Base of the environment wrappers: forward everything to the wrapped environment."""

from typing import Any

import equinox as eqx

from .._types import Array, Bool, Float, PRNGKey, PyTree
from ._base import AbstractEnvironment, StepInfo
from ._spaces import ActionSpace


class AbstractWrapper(AbstractEnvironment):
    """An environment that wraps another one and changes one aspect of it.

    Every property and method forwards to `env`; a concrete wrapper overrides only what it
    changes. Wrappers compose: ``NormalizeReward(ObservationMask(make("CartPole-v1"), "vel"))``.
    """

    env: eqx.AbstractVar[AbstractEnvironment]

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def observation_size(self) -> int:
        return self.env.observation_size

    @property
    def action_space(self) -> ActionSpace:
        return self.env.action_space

    @property
    def unwrapped(self) -> AbstractEnvironment:
        """The innermost environment, below every wrapper."""
        env = self.env
        while isinstance(env, AbstractWrapper):
            env = env.env
        return env

    def reset(self, key: PRNGKey) -> tuple[Float[Array, " obs"], PyTree[Any]]:
        return self.env.reset(key)

    def step(
        self, key: PRNGKey, state: PyTree[Any], action: Array
    ) -> tuple[Float[Array, " obs"], PyTree[Any], Float[Array, ""], Bool[Array, ""], StepInfo]:
        return self.env.step(key, state, action)
