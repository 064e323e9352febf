"""RTRRL's optimiser: Adam on the flat parameter vector with a step size per group.

Adam runs with a unit step on the flat vector of all trainable parameters, and the step sizes
``α_C``, ``α_A``, ``α_R`` (times the schedule's multiplier) are applied afterwards. This is
identical to one Adam per group, but one fused update instead of one per leaf. A custom optax
optimiser instead receives the descent direction as a PyTree shaped like the parameters.
"""

from typing import Any, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from .._types import Array, Float, PyTree
from ..agent import AgentParams


def trainable(tree: PyTree[Any]) -> PyTree[Any]:
    """The inexact-array leaves of `tree` (what the optimiser updates)."""
    return eqx.filter(tree, eqx.is_inexact_array)


def optimizer(alg) -> optax.GradientTransformation:
    """`alg.optimizer`, or Adam with a unit step (the paper's optimiser; the clipping happens
    per step, before the traces)."""
    if alg.optimizer is not None:
        return alg.optimizer
    return optax.scale_by_adam()


def step_sizes(alg, params: AgentParams) -> Float[Array, " params"]:
    """The step size of every parameter, flattened like the optimiser's target (a compile-time
    constant)."""
    sizes = AgentParams(
        cell=jax.tree.map(lambda x: jnp.full_like(x, alg.lr_cell), trainable(params.cell)),
        actor=jax.tree.map(lambda x: jnp.full_like(x, alg.lr_actor), trainable(params.actor)),
        critic=jax.tree.map(lambda x: jnp.full_like(x, alg.lr_critic), trainable(params.critic)),
    )
    return ravel_pytree(sizes)[0]


def optimizer_target(alg, tree: PyTree[Any]) -> PyTree[Any]:
    """What the optimiser sees: the default one a flat vector, a custom one the PyTree."""
    return ravel_pytree(tree)[0] if alg.optimizer is None else tree


def init_optimizer(alg, params: AgentParams) -> PyTree[Any]:
    """The optimiser's state for `params`."""
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int and float counters.
        return optimizer(alg).init(optimizer_target(alg, trainable(params)))


def apply_optimizer(
    alg, params: AgentParams, descent: AgentParams, opt_state: PyTree[Any]
) -> tuple[AgentParams, PyTree[Any]]:
    """One optimiser update of `params` along the `descent` direction."""
    target = trainable(params)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int and float counters.
        updates, opt_state = optimizer(alg).update(
            optimizer_target(alg, descent), opt_state, optimizer_target(alg, target)
        )
    if alg.optimizer is None:
        _, unravel = ravel_pytree(target)
        sizes = step_sizes(alg, params)
        if alg.lr_schedule is not None:
            # The multiplier of this update: Adam's count before it (0 at the first).
            multiplier = alg.lr_schedule(opt_state.count - 1)
            sizes = sizes * jnp.asarray(multiplier, sizes.dtype)
        # The default optimiser runs on the flat parameter vector: `updates` is one array.
        updates = unravel(-sizes * cast(Array, updates))
    return eqx.apply_updates(params, updates), opt_state


def adam_diagnostics(alg, params: AgentParams, opt_state) -> dict[str, Array]:
    """Per-group statistics of the default optimiser (Adam on the flat parameter vector):
    ``direction_norm_<group>``, Adam's running RMS of the direction's norm, and
    ``step_<group>``, the mean absolute parameter change of one step."""
    adam = opt_state  # optax.ScaleByAdamState: count, mu, nu
    count = adam.count.astype(adam.mu.dtype)
    decay1, decay2, epsilon = 0.9, 0.999, 1e-8  # optax.scale_by_adam's defaults
    mu_hat = adam.mu / jnp.maximum(1.0 - decay1**count, epsilon)
    nu_hat = adam.nu / jnp.maximum(1.0 - decay2**count, epsilon)
    step = step_sizes(alg, params) * jnp.abs(mu_hat) / (jnp.sqrt(nu_hat) + epsilon)
    out = {}
    start = 0
    for group in ("cell", "actor", "critic"):
        size = sum(leaf.size for leaf in jax.tree.leaves(trainable(getattr(params, group))))
        part = slice(start, start + size)
        start += size
        if size == 0:
            continue
        out[f"direction_norm_{group}"] = jnp.sqrt(jnp.sum(nu_hat[part]))
        out[f"step_{group}"] = jnp.mean(step[part])
    return out
