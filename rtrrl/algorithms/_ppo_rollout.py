"""PPO's rollout: ``rollout_length`` acting steps in every environment, recorded for the loss."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._types import Array, PRNGKey
from ..envs import AbstractEnvironment
from ._ppo_state import PPOEnvCarry, PPOState


class _StepRecord(NamedTuple):
    """What one acting step leaves for the update (leading axes added by scan and vmap)."""

    inputs: Array
    episode_start: Array
    actions: Array
    log_probs: Array
    values: Array
    rewards: Array
    next_values: Array
    terminated: Array
    done: Array
    episode_return: Array


def rollout(alg, state: PPOState, env: AbstractEnvironment, key: PRNGKey):
    """``rollout_length`` acting steps in every environment with the current parameters.

    Returns the next environment carry and return statistics, and the per-step records
    with a leading time axis.
    """
    params = state.params
    num_envs = state.envs.obs.shape[0]
    start_hidden = params.cell.init_hidden()
    agent = alg.agent

    def one_step(loop, step_key):
        envs, return_stats = loop
        act_keys, env_keys = jnp.split(jax.random.split(step_key, 2 * num_envs), 2)

        def act(carry: PPOEnvCarry, act_key, env_key):
            x = agent.input(
                carry.obs, carry.prev_action, carry.prev_reward, carry.episode_start, env
            )
            hidden = params.cell(jnp.where(carry.episode_start, start_hidden, carry.hidden), x)
            features = params.cell.output(hidden)
            z = params.actor.preactivation(features)
            action = params.actor.sample_from(z, key=act_key)
            log_prob = params.actor.log_prob_from(z, action)
            value = params.critic(features)
            executed = agent.env_action(params.actor, action)
            step = env.step(env_key, carry.env_state, executed)
            return (x, hidden, action, executed, log_prob, value), step

        acted, (obs, env_state, reward, done, info) = jax.vmap(act)(envs, act_keys, env_keys)
        # The loss scores the sampled `action`; the next input reads the `executed` one.
        x, hidden, action, executed, log_prob, value = acted
        starts = envs.episode_start

        # Shared reward scale, updated once per step from every environment (as RTRRL).
        reward, return_stats, discounted = agent.scale_rewards(
            return_stats, envs.discounted_return, reward, info.terminated, alg.gamma
        )

        # V(o_{t+1}) from the observation before the automatic reset: equal to the next
        # step's V_t when the episode continues, and the bootstrap at a time-limit cut.
        def bootstrap(hidden, action, reward, final_obs):
            x_next = agent.input(final_obs, action, reward, jnp.zeros((), bool), env)
            return params.critic(params.cell.output(params.cell(hidden, x_next)))

        next_value = jax.vmap(bootstrap)(hidden, executed, reward, info.final_observation)
        # The hidden state is kept as it is: a done step's successor resets it on reading.
        envs = jax.vmap(PPOEnvCarry)(env_state, obs, executed, reward, done, hidden, discounted)
        record = _StepRecord(
            inputs=x,
            episode_start=starts,
            actions=action,
            log_probs=log_prob,
            values=value,
            rewards=reward,
            next_values=next_value,
            terminated=info.terminated,
            done=done,
            episode_return=info.episode_return,
        )
        return (envs, return_stats), record

    keys = jax.random.split(key, alg.rollout_length)
    (envs, return_stats), records = jax.lax.scan(one_step, (state.envs, state.return_stats), keys)
    return envs, return_stats, records
