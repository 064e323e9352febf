"""The one functional environment protocol the learner sees.

Every environment, whatever library it comes from, is an `AbstractEnvironment`: a pure,
jittable pair ``reset(key) -> (obs, state)`` and
``step(key, state, action) -> (obs, state, reward, done, info)`` with automatic reset.
One example per call; batch with `rtrrl.envs.VectorEnv` or `jax.vmap`.

Bootstrapping rule (the paper's code treated a time-limit cut as terminal): ``done = terminated | truncated``, but only
``info.terminated`` means the value of the next state is zero. At a time-limit cut
(``info.truncated``) the learner bootstraps from ``info.final_observation``, the observation
the step produced *before* the automatic reset replaced it by the next episode's first one.
"""

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Bool, Float, Int, PRNGKey, PyTree
from ._spaces import ActionSpace


def default_float() -> jnp.dtype:
    """The float dtype JAX uses by default now (float64 only when x64 is enabled)."""
    return jnp.zeros(()).dtype


class StepInfo(eqx.Module):
    """What `step` reports beside the observation and reward.

    - ``terminated``: the episode reached a terminal state (the next state's value is 0).
    - ``truncated``: the episode was cut by a time limit (bootstrap from the next state).
    - ``final_observation``: ``o_{t+1}`` before the automatic reset; equal to the returned
      observation unless ``done``.
    - ``episode_return``, ``episode_length``: undiscounted return and length of the episode so
      far, including this step; when ``done`` they describe the episode that just ended.
    """

    terminated: Bool[Array, ""]
    truncated: Bool[Array, ""]
    final_observation: Float[Array, " obs"]
    episode_return: Float[Array, ""]
    episode_length: Int[Array, ""]


class EpisodeState(eqx.Module):
    """State of an `AbstractEpisodicEnvironment`: the library's state plus episode statistics."""

    inner: PyTree[Any]
    episode_return: Float[Array, ""]
    episode_length: Int[Array, ""]


class AbstractEnvironment(eqx.Module):
    """A functional, jittable environment with automatic reset (see the module docstring)."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The id this environment was made from (used in error messages)."""

    @property
    @abc.abstractmethod
    def observation_size(self) -> int:
        """Length of the (flat, float) observation vector."""

    @property
    @abc.abstractmethod
    def action_space(self) -> ActionSpace:
        """`Discrete(n)` or `Box(low, high)`."""

    @abc.abstractmethod
    def reset(self, key: PRNGKey) -> tuple[Float[Array, " obs"], PyTree[Any]]:
        """Start an episode: ``(o_0, state)``."""

    @abc.abstractmethod
    def step(
        self, key: PRNGKey, state: PyTree[Any], action: Array
    ) -> tuple[Float[Array, " obs"], PyTree[Any], Float[Array, ""], Bool[Array, ""], StepInfo]:
        """``(o_{t+1}, state, r_{t+1}, done, info)``, resetting automatically when ``done``."""


class AbstractEpisodicEnvironment(AbstractEnvironment):
    """Base for adapters and ports: implement one episode, get auto-reset and statistics.

    Subclasses implement `reset_episode` and `step_episode` for a single episode; this class
    turns them into `reset` / `step` with automatic reset, action checking, float
    observations and episode statistics.
    """

    @abc.abstractmethod
    def reset_episode(self, key: PRNGKey) -> tuple[Array, PyTree[Any]]:
        """``(o_0, inner_state)`` of a new episode."""

    @abc.abstractmethod
    def step_episode(
        self, key: PRNGKey, inner: PyTree[Any], action: Array
    ) -> tuple[Array, PyTree[Any], Array, Array, Array]:
        """``(o_{t+1}, inner_state, r_{t+1}, terminated, truncated)``; no reset."""

    def reset(self, key: PRNGKey) -> tuple[Float[Array, " obs"], EpisodeState]:
        obs, inner = self.reset_episode(key)
        dtype = default_float()
        state = EpisodeState(inner, jnp.zeros((), dtype), jnp.zeros((), jnp.int32))
        return jnp.asarray(obs, dtype).reshape(self.observation_size), state

    def step(
        self, key: PRNGKey, state: EpisodeState, action: Array
    ) -> tuple[Float[Array, " obs"], EpisodeState, Float[Array, ""], Bool[Array, ""], StepInfo]:
        self.action_space.check(action, self.name)
        dtype = default_float()
        key_step, key_reset = jax.random.split(key)
        obs, inner, reward, terminated, truncated = self.step_episode(key_step, state.inner, action)
        obs = jnp.asarray(obs, dtype).reshape(self.observation_size)
        reward = jnp.asarray(reward, dtype).reshape(())
        terminated = jnp.asarray(terminated, bool).reshape(())
        # A terminal step is never also reported as a time-limit cut.
        truncated = jnp.asarray(truncated, bool).reshape(()) & ~terminated
        done = terminated | truncated
        episode_return = state.episode_return + reward
        episode_length = state.episode_length + 1
        info = StepInfo(terminated, truncated, obs, episode_return, episode_length)

        reset_obs, reset_inner = self.reset_episode(key_reset)
        reset_obs = jnp.asarray(reset_obs, dtype).reshape(self.observation_size)
        next_obs = jnp.where(done, reset_obs, obs)
        next_inner = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_inner, inner)
        zero = jnp.zeros((), dtype)
        next_state = EpisodeState(
            next_inner,
            jnp.where(done, zero, episode_return),
            jnp.where(done, jnp.zeros((), jnp.int32), episode_length),
        )
        return next_obs, next_state, reward, done, info
