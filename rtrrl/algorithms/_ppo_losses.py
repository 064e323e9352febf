"""PPO's advantage estimates and losses, as functions of arrays (no learner state)."""

import jax
import jax.numpy as jnp

from .._types import Array, Bool, Float, Scalar


def generalized_advantages(
    rewards: Float[Array, " time"],
    values: Float[Array, " time"],
    next_values: Float[Array, " time"],
    terminated: Bool[Array, " time"],
    done: Bool[Array, " time"],
    *,
    gamma: float,
    gae_lambda: float,
) -> Float[Array, " time"]:
    r"""Generalised advantage estimates of one environment's segment (Schulman et al. 2016).

        δ_t = r_{t+1} + γ (1 - terminated_t) V(o_{t+1}) - V(o_t),
        A_t = δ_t + γλ (1 - done_t) A_{t+1},        A_T = 0.

    ``next_values[t]`` is ``V(o_{t+1})`` of the observation step ``t`` produced *before* any
    automatic reset (`StepInfo.final_observation`), so a time-limit cut (``done`` but not
    ``terminated``) still bootstraps while a terminal state does not; either way the
    recursion stops at ``done`` because the next step belongs to another episode. At the end
    of the segment ``next_values[T-1]`` bootstraps the unfinished episode.

    **Arguments:** ``rewards``, ``values``, ``next_values``, ``terminated``, ``done``, each of
    shape ``(T,)``; ``gamma`` (γ) and ``gae_lambda`` (λ).

    **Returns:** the advantages ``A_t``, shape ``(T,)``; the value targets are ``A_t + V_t``.
    """
    dtype = values.dtype
    not_terminal = 1.0 - terminated.astype(dtype)
    deltas = rewards + gamma * not_terminal * next_values - values
    continues = gamma * gae_lambda * (1.0 - done.astype(dtype))

    def backward(next_advantage, step):
        delta, carry_on = step
        advantage = delta + carry_on * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros((), dtype), (deltas, continues), reverse=True)
    return advantages


def clipped_surrogate_loss(
    log_probs: Float[Array, "*batch"],
    old_log_probs: Float[Array, "*batch"],
    advantages: Float[Array, "*batch"],
    clip_eps: float,
) -> Scalar:
    r"""PPO's clipped policy loss (Schulman et al. 2017, eq. 7), to be minimised.

        ρ = exp(log π(a|s) - log π_old(a|s)),
        L^CLIP = -E[min(ρ A, clip(ρ, 1 - ε, 1 + ε) A)].

    The minimum makes the objective a pessimistic bound: moving ``ρ`` outside
    ``[1 - ε, 1 + ε]`` in the direction the advantage favours earns nothing more.
    """
    ratio = jnp.exp(log_probs - old_log_probs)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return -jnp.mean(jnp.minimum(ratio * advantages, clipped * advantages))


def value_loss(
    values: Float[Array, "*batch"],
    old_values: Float[Array, "*batch"],
    returns: Float[Array, "*batch"],
    clip_eps: float | None,
) -> Scalar:
    r"""``½ E[(V - R)²]``, or with ``clip_eps`` the clipped form of the PPO implementations,

        ½ E[max((V - R)², (V_old + clip(V - V_old, -ε, ε) - R)²)],

    which, like the policy clip, removes the incentive to move ``V`` far from ``V_old`` in one
    update.
    """
    squared = (values - returns) ** 2
    if clip_eps is None:
        return 0.5 * jnp.mean(squared)
    clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum(squared, (clipped - returns) ** 2))
