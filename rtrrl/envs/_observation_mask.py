"""Partial observability by masking: keep only some entries of the observation vector."""

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._types import Array, Bool, Float, PRNGKey, PyTree
from ._base import AbstractEnvironment, StepInfo
from ._wrapper import AbstractWrapper

# Named masks per environment id: name -> indices of the observation entries kept.
# Filled by the modules that know each environment's observation layout (see `register_masks`).
_NAMED_MASKS: dict[str, dict[str, tuple[int, ...]]] = {}


def register_masks(env_id: str, **masks: Sequence[int]) -> None:
    """Declare named masks for `env_id`, e.g. ``register_masks("CartPole-v1", pos=(0, 2))``."""
    _NAMED_MASKS.setdefault(env_id, {}).update({k: tuple(v) for k, v in masks.items()})


def named_masks(env_id: str) -> dict[str, tuple[int, ...]]:
    """The named masks of `env_id` (``{}`` if it has none)."""
    return dict(_NAMED_MASKS.get(env_id, {}))


def resolve_mask(env: AbstractEnvironment, mask: str | Sequence[int]) -> tuple[int, ...]:
    """Turn ``"pos"``, ``"vel"`` or a sequence of indices into checked indices for `env`."""
    if isinstance(mask, str):
        masks = named_masks(env.name)
        if mask not in masks:
            known = f"its named masks are {sorted(masks)}" if masks else "it has no named masks"
            raise ValueError(
                f"{env.name}: unknown obs_mask {mask!r}; {known}. Pass a tuple of observation "
                f"indices in [0, {env.observation_size}) instead."
            )
        return masks[mask]
    indices = tuple(mask)
    size = env.observation_size
    if (
        not indices
        or not all(isinstance(i, int | np.integer) and 0 <= i < size for i in indices)
        or len(set(indices)) != len(indices)
    ):
        raise ValueError(
            f"{env.name}: obs_mask={mask!r} must be a non-empty sequence of distinct integer "
            f"indices in [0, {size}) (the observation has {size} entries)."
        )
    return tuple(int(i) for i in indices)


class ObservationMask(AbstractWrapper):
    """Keep only the observation entries `indices` (the paper's "CartPole-vel" and friends).

    ``o'_t = o_t[indices]``, applied to the returned observation and to
    ``info.final_observation`` alike, so bootstrapping at a time-limit cut sees the same
    partial view as the agent.

    Arguments:
        env: the environment to mask.
        mask: ``"pos"`` / ``"vel"`` (or another name registered for ``env.name``; e.g.
            ``CartPole-v1``: pos = (x, θ) = (0, 2), vel = (ẋ, θ̇) = (1, 3)), or a sequence of
            indices into the observation vector.
        name: the id reported by `name`; defaults to ``"{env.name}[obs_mask={mask}]"``.
    """

    env: AbstractEnvironment
    indices: tuple[int, ...] = eqx.field(static=True)
    _name: str = eqx.field(static=True)

    def __init__(
        self, env: AbstractEnvironment, mask: str | Sequence[int], *, name: str | None = None
    ):
        self.env = env
        self.indices = resolve_mask(env, mask)
        label = mask if isinstance(mask, str) else self.indices
        self._name = name if name is not None else f"{env.name}[obs_mask={label}]"

    @property
    def name(self) -> str:
        return self._name

    @property
    def observation_size(self) -> int:
        return len(self.indices)

    def _mask(self, obs: Float[Array, " obs"]) -> Float[Array, " masked"]:
        return obs[jnp.asarray(self.indices)]

    def reset(self, key: PRNGKey) -> tuple[Float[Array, " masked"], PyTree[Any]]:
        obs, state = self.env.reset(key)
        return self._mask(obs), state

    def step(
        self, key: PRNGKey, state: PyTree[Any], action: Array
    ) -> tuple[Float[Array, " masked"], PyTree[Any], Float[Array, ""], Bool[Array, ""], StepInfo]:
        obs, state, reward, done, info = self.env.step(key, state, action)
        info = eqx.tree_at(lambda i: i.final_observation, info, self._mask(info.final_observation))
        return self._mask(obs), state, reward, done, info
