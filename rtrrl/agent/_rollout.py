"""Evaluation rollouts shared by every algorithm: returns of the first episode per env."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._types import Array, Bool, Float, PRNGKey, PyTree, Scalar
from ..envs import AbstractEnvironment

# policy(carry, obs, prev_reward, is_first, key) -> (env_action, carry): `is_first` marks the
# first observation of an episode, so the policy resets its own memory there.
Policy = Callable[
    [PyTree[Any], Float[Array, " obs"], Scalar, Bool[Array, ""], PRNGKey],
    tuple[Array, PyTree[Any]],
]


def first_episode_returns(
    env: AbstractEnvironment,
    policy: Policy,
    policy_carry: PyTree[Any],
    key: PRNGKey,
    *,
    num_envs: int,
    num_steps: int,
) -> Float[Array, " num_envs"]:
    """Run `policy` (no learning) on `num_envs` fresh environments for `num_steps` steps.

    Returns the undiscounted return of each environment's first completed episode. An
    environment whose first episode is still running after `num_steps` reports the return so
    far, so choose `num_steps` >= the episode limit for exact numbers.

    Arguments:
        env: the environment (unbatched interface; vmapped here).
        policy: ``policy(carry, obs, prev_reward, is_first, key) -> (env_action, carry)``.
        policy_carry: the policy's initial memory for one environment.
        key: evaluation key, separate from the training keys.
        num_envs: how many environments.
        num_steps: how many steps.
    """
    reset_key, run_key = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
    carry = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_envs, *jnp.shape(x))), policy_carry)
    dtype = obs.dtype
    zeros = jnp.zeros((num_envs,), dtype)
    first = jnp.ones((num_envs,), bool)
    finished = jnp.zeros((num_envs,), bool)

    def one_step(loop, step_key):
        carry, obs, env_state, reward, first, finished, returns = loop
        act_key, env_key = jax.random.split(step_key)
        act_keys = jax.random.split(act_key, num_envs)
        env_keys = jax.random.split(env_key, num_envs)
        action, carry = jax.vmap(policy)(carry, obs, reward, first, act_keys)
        obs, env_state, reward, done, info = jax.vmap(env.step)(env_keys, env_state, action)
        returns = jnp.where(finished, returns, info.episode_return)
        finished = finished | done
        return (carry, obs, env_state, reward, done, finished, returns), None

    loop = (carry, obs, env_state, zeros, first, finished, zeros)
    loop, _ = jax.lax.scan(one_step, loop, jax.random.split(run_key, num_steps))
    return loop[-1]


def mean_over_rollout(
    env: AbstractEnvironment,
    policy: Policy,
    policy_carry: PyTree[Any],
    statistic: Callable[[PyTree[Any]], PyTree[Any]],
    key: PRNGKey,
    *,
    num_envs: int,
    num_steps: int,
) -> PyTree[Any]:
    """The mean of ``statistic(carry)`` over every step of `policy` (no learning) in
    `num_envs` fresh environments run for `num_steps` steps (episodes restart as they end).

    ``statistic`` reads the policy's memory after each step (e.g. the cell's features) and
    returns a PyTree of scalars.
    """
    reset_key, run_key = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))
    carry = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_envs, *jnp.shape(x))), policy_carry)
    reward = jnp.zeros((num_envs,), obs.dtype)
    first = jnp.ones((num_envs,), bool)

    def one_step(loop, step_key):
        carry, obs, env_state, reward, first = loop
        act_key, env_key = jax.random.split(step_key)
        action, carry = jax.vmap(policy)(
            carry, obs, reward, first, jax.random.split(act_key, num_envs)
        )
        values = jax.tree.map(jnp.mean, jax.vmap(statistic)(carry))
        obs, env_state, reward, done, _ = jax.vmap(env.step)(
            jax.random.split(env_key, num_envs), env_state, action
        )
        return (carry, obs, env_state, reward, done), values

    _, values = jax.lax.scan(
        one_step, (carry, obs, env_state, reward, first), jax.random.split(run_key, num_steps)
    )
    return jax.tree.map(jnp.mean, values)
