"""Statistics of an RTRRL learner during training (``rtrrl train --diagnostics``)."""

import jax
import jax.numpy as jnp
import optax

from .._env_axis import gather_envs
from .._types import PRNGKey, Scalar
from ..agent import mean_over_rollout
from ..envs import AbstractEnvironment
from ._rtrrl_optimizer import adam_diagnostics, trainable
from ._rtrrl_state import RTRRLState


def rtrrl_diagnostics(
    alg, state: RTRRLState, env: AbstractEnvironment, key: PRNGKey
) -> dict[str, Scalar]:
    """`RTRRL.diagnostics` (see there for the names)."""
    params = state.params
    dtype = state.average_reward.dtype
    agent = alg.agent

    def statistic(memory):
        features = params.cell.output(memory[0])
        return {
            "saturated": jnp.mean((jnp.abs(features) > 0.99).astype(dtype)),
            "value": params.critic(features),
            "entropy": params.actor.entropy(features),
        }

    probe = mean_over_rollout(
        env,
        agent.policy(params, state.return_stats, state.observation_stats, env, greedy=False),
        agent.initial_memory(params, env),
        statistic,
        key,
        num_envs=4,
        num_steps=256,
    )

    def norm(tree):
        return optax.tree.norm(tree) if jax.tree.leaves(tree) else jnp.zeros((), dtype)

    def mean_norm(batched):  # mean over environments (all devices') of each one's norm
        if not jax.tree.leaves(batched):
            return norm(None)
        return jnp.mean(gather_envs(jax.vmap(norm)(batched)))

    out = probe | {
        "reward_scale": jnp.asarray(agent.reward_divisor(state.return_stats), dtype),
        "norm_cell": norm(trainable(params.cell)),
        **{
            f"norm_cell{jax.tree_util.keystr(path)}": norm(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(trainable(params.cell))
        },
        "norm_actor": norm(trainable(params.actor)),
        "norm_critic": norm(trainable(params.critic)),
        "trace_norm_cell": mean_norm(state.envs.traces.cell),
        "estimator_norm": mean_norm(state.envs.estimator),
    }
    tau = getattr(params.cell, "tau", None)
    if tau is not None:
        out |= {"tau_min": jnp.min(tau), "tau_max": jnp.max(tau)}
    if alg.optimizer is None:
        out |= adam_diagnostics(alg, params, state.opt_state)
    return out
