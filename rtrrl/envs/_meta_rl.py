"""The Meta-RL input ``x_t = [o_t, a_{t-1}, r_t]`` the recurrent cell reads (Lemmel & Grosu 2025)."""

import jax
import jax.numpy as jnp

from .._types import Array, Bool, Float
from ._base import AbstractEnvironment, default_float
from ._spaces import ActionSpace, Discrete
from ._vector import VectorEnv


def meta_rl_input_size(env: AbstractEnvironment | VectorEnv) -> int:
    """Length of `meta_rl_input` for `env`: ``observation_size + action encoding + 1``.

    The action encoding has ``n`` entries for ``Discrete(n)`` (a one-hot) and ``d`` for a
    ``d``-dimensional `Box`.
    """
    return env.observation_size + env.action_space.size + 1


def meta_rl_input(
    obs: Float[Array, " obs"],
    prev_action: Array,
    prev_reward: Float[Array, ""] | float,
    action_space: ActionSpace,
    *,
    episode_start: Bool[Array, ""] | bool,
) -> Float[Array, " input"]:
    """Concatenate observation, previous action and previous reward into the cell input.

    ``x_t = [o_t, enc(a_{t-1}), r_t]`` where ``enc`` is a one-hot of length ``n`` for a
    `Discrete` space and the action itself for a `Box`. At an episode's first observation
    there is no previous action or reward of *this* episode, so both are zeroed (the
    one-hot becomes all zeros, not action 0's code): pass ``episode_start=True`` after
    `reset`, and ``episode_start=done`` after a `step` (when ``done`` the returned
    observation is already the next episode's first). Bootstrapping from
    ``info.final_observation`` at a time-limit cut uses ``episode_start=False``.

    One example per call; `jax.vmap` for a batch.

    **Arguments:**

    - `obs`: ``o_t``, shape ``(obs,)``.
    - `prev_action`: ``a_{t-1}``: an integer scalar (`Discrete`) or a float vector (`Box`).
      Any value of that type when ``episode_start`` (e.g. ``action_space.zero()``).
    - `prev_reward`: ``r_t``, the reward returned with ``o_t``.
    - `action_space`: the environment's action space.
    - `episode_start`: whether ``o_t`` starts an episode.

    **Returns:**

    ``x_t`` of shape ``(obs + action encoding + 1,)``, see `meta_rl_input_size`.
    """
    action_space.check(prev_action, "meta_rl_input(prev_action)")
    dtype = default_float()
    obs = jnp.asarray(obs, dtype)
    if isinstance(action_space, Discrete):
        action = jax.nn.one_hot(prev_action, action_space.n, dtype=dtype)
    else:
        action = jnp.asarray(prev_action, dtype).reshape(action_space.shape)
    keep = 1 - jnp.asarray(episode_start, dtype)
    reward = jnp.asarray(prev_reward, dtype).reshape(1)
    return jnp.concatenate([obs, keep * action, keep * reward])
