"""The compiled program of one chunk: ``steps_per_chunk`` scanned steps of every seed, then
one evaluation, vmapped over seeds."""

from collections.abc import Callable, Sequence
from typing import Any, cast

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import prng
from .._types import Array, PRNGKey, PyTree
from ..algorithms import AbstractAlgorithm
from ..envs import AbstractEnvironment
from ._records import ChunkPlan, LoopConfig


class _ChunkTotals(eqx.Module):
    td_error_sq: Array
    episodes: Array
    return_sum: Array
    all_finite: Array


def build_learner(algorithm: Any, key: PRNGKey):
    """`algorithm`, or ``algorithm(key)`` when it is a function ``key -> learner``."""
    learner = (
        algorithm(key)
        if callable(algorithm) and not isinstance(algorithm, eqx.Module)
        else algorithm
    )
    return cast(AbstractAlgorithm, learner)  # typed for checkers; not checked at runtime


def evaluation_steps(config: LoopConfig, env: AbstractEnvironment) -> int:
    """Steps of each evaluation episode: ``config.eval_steps``, else the environment's episode
    limit, else 1000 (what run folders record as the value in use)."""
    if config.eval_steps is not None:
        return config.eval_steps
    limit = getattr(env, "max_episode_steps", None)
    return int(limit) if limit else 1000


def make_chunk_function(
    algorithm: AbstractAlgorithm,
    env: AbstractEnvironment,
    config: LoopConfig,
    plan: ChunkPlan,
) -> Callable:
    """The program of one chunk for all seeds, ``(states, seed_keys, chunk, active)``, jitted
    (`train` lowers and compiles it once)."""
    eval_steps = evaluation_steps(config, env)

    def one_seed(state, seed_key, chunk, active):
        key = jax.random.fold_in(seed_key, chunk)
        train_key, eval_key = jax.random.split(key)

        def body(carry, step_key):
            state, totals = carry
            state, metrics = algorithm.step(state, env, step_key)
            totals = _ChunkTotals(
                totals.td_error_sq + metrics.td_error_sq,
                totals.episodes + metrics.episodes_finished,
                totals.return_sum + metrics.return_sum,
                totals.all_finite & metrics.all_finite,
            )
            return (state, totals), None

        dtype = jnp.zeros(()).dtype
        zero = jnp.zeros((), dtype)
        totals = _ChunkTotals(zero, jnp.zeros((), jnp.int32), zero, jnp.ones((), bool))
        keys = jax.random.split(train_key, plan.steps_per_chunk)
        (new_state, totals), _ = jax.lax.scan(body, (state, totals), keys)
        returns = algorithm.evaluate(
            new_state,
            env,
            eval_key,
            num_envs=config.eval_envs,
            num_steps=eval_steps,
            greedy=config.greedy_eval,
        )
        # A seed that stopped early keeps its state (early stopping per seed).
        new_state = jax.tree.map(
            lambda new, old: jnp.where(active, new, old) if eqx.is_array(new) else new,
            new_state,
            state,
        )
        extra = {}
        if config.diagnostics:  # a key of its own: the evaluation above used `eval_key`
            extra = algorithm.diagnostics(new_state, env, jax.random.fold_in(eval_key, 1))
        return new_state, totals, jnp.mean(returns), extra

    def chunk_fn(states, seed_keys, chunk, active):
        return jax.vmap(one_seed, in_axes=(0, 0, None, 0))(states, seed_keys, chunk, active)

    return eqx.filter_jit(chunk_fn)


def seed_keys(config: LoopConfig, run_seeds: Sequence[int] | None = None) -> tuple[Array, Array]:
    """``(init_keys, run_keys)``, one per seed, from ``prng.key(seed + i)``.

    `run_seeds`: the seed of each entry of the batch axis instead (``num_seeds`` of them; a
    sweep repeats its seeds once per configuration)."""
    if run_seeds is None:
        run_seeds = [config.seed + i for i in range(config.num_seeds)]
    keys = jnp.stack([prng.key(seed) for seed in run_seeds])
    split = jax.vmap(jax.random.split)(keys)
    return split[:, 0], split[:, 1]


def init_states(
    algorithm: Any,
    env: AbstractEnvironment,
    config: LoopConfig,
    run_seeds: Sequence[int] | None = None,
) -> PyTree[Any]:
    """The algorithm state of every seed (or of every entry of `run_seeds`, as in
    `seed_keys`), stacked on a leading axis."""
    init_keys, _ = seed_keys(config, run_seeds)

    def one(key):
        return build_learner(algorithm, key).init(key, env, num_envs=config.num_envs)

    return eqx.filter_jit(eqx.filter_vmap(one))(init_keys)
