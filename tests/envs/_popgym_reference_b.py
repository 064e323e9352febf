"""Shared machinery of the group-B POPGym agreement tests (control and board tasks).

The reference is the `popgym` package itself: `reference_episode` plays one episode of a
popgym environment with a policy that may look at popgym's hidden state, recording what it
returns; `port_rollout` replays the same actions in the JAX port from the same start state
(injected by the test) under ``jit(scan)``; `assert_agrees` compares them step by step.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import popgym  # noqa: F401  (registers popgym's ids with gymnasium)
import popgym.envs

from rtrrl.envs import EpisodeState

DIFFICULTIES = ("Easy", "Medium", "Hard")


def reference_env(task_class: str, difficulty: str, popgym_id: str) -> gymnasium.Env:
    """popgym's ``<task_class><difficulty>``, after checking popgym registers it as `popgym_id`."""
    cls = getattr(popgym.envs, f"{task_class}{difficulty}")
    entry_point = gymnasium.spec(popgym_id).entry_point
    assert entry_point.split(":")[-1] == cls.__name__, (popgym_id, entry_point)
    return cls()


@dataclasses.dataclass
class Episode:
    """One popgym episode: ``obs[0]`` is the reset observation, ``obs[t + 1]`` follows
    ``actions[t]``; ``start`` is whatever the test read from popgym right after reset."""

    start: Any
    actions: list
    obs: list
    rewards: list
    terminated: list
    truncated: list
    states: list  # hidden state read after each step (test-specific)

    @property
    def length(self) -> int:
        return len(self.actions)


def reference_episode(
    env: gymnasium.Env,
    seed: int,
    policy: Callable[[gymnasium.Env, np.random.Generator], Any],
    read_start: Callable[[gymnasium.Env], Any],
    read_state: Callable[[gymnasium.Env], Any] = lambda env: None,
) -> Episode:
    """Play one popgym episode until it terminates or is truncated."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    episode = Episode(read_start(env), [], [obs], [], [], [], [])
    while True:
        action = policy(env, rng)
        obs, reward, terminated, truncated, _ = env.step(action)
        episode.actions.append(action)
        episode.obs.append(obs)
        episode.rewards.append(float(reward))
        episode.terminated.append(bool(terminated))
        episode.truncated.append(bool(truncated))
        episode.states.append(read_state(env))
        if terminated or truncated:
            return episode


@eqx.filter_jit
def _rollout(env, inner, actions, key):
    # One episode per call: a scan without vmap compiles in about half the time, and the
    # batch axis is cheap to loop over in Python (vmap is exercised by the other helpers).
    keys = jax.random.split(key, actions.shape[0])
    # A fresh episode from the injected inner state (statistics at zero).
    state = EpisodeState(inner, jnp.zeros((), jnp.zeros(()).dtype), jnp.zeros((), jnp.int32))

    def body(state, xs):
        key, action = xs
        obs, state, reward, done, info = env.step(key, state, action)
        return state, (obs, reward, done, info, state.inner)

    return jax.lax.scan(body, state, (keys, actions))[1]


def port_rollout(env, inner, actions, seed: int = 0) -> dict[str, Any]:
    """Step the port from the batched inner states `inner` with ``actions[batch, time]``.

    Each row is one jitted ``scan`` of ``env.step`` (auto-reset included). Returns numpy
    arrays ``[batch, time, ...]``: ``obs``, ``final_obs``, ``reward``, ``done``,
    ``terminated``, ``truncated``, ``episode_return``, ``episode_length`` and ``inner`` (the
    inner state after each step, already reset where ``done``).
    """
    actions = jnp.asarray(actions)
    keys = jax.random.split(jax.random.PRNGKey(seed), actions.shape[0])
    rows = [
        _rollout(env, jax.tree.map(lambda x, b=b: x[b], inner), actions[b], keys[b])
        for b in range(actions.shape[0])
    ]
    obs, reward, done, info, inner_after = jax.tree.map(lambda *xs: np.stack(xs), *rows)
    return {
        "obs": obs,
        "final_obs": info.final_observation,
        "reward": reward,
        "done": done,
        "terminated": info.terminated,
        "truncated": info.truncated,
        "episode_return": info.episode_return,
        "episode_length": info.episode_length,
        "inner": inner_after,
    }


def pad_actions(episodes: list[Episode], encode: Callable[[Any], Any], fill: Any) -> np.ndarray:
    """``[batch, max_length, ...]`` port actions; steps after an episode's end get `fill`."""
    length = max(e.length for e in episodes)
    rows = [[encode(a) for a in e.actions] + [fill] * (length - e.length) for e in episodes]
    return np.asarray(rows)


def assert_agrees(
    port: dict[str, Any],
    episodes: list[Episode],
    encode_obs: Callable[[Any], np.ndarray] | None,
    atol: float = 1e-5,
    horizon: int | None = None,
) -> None:
    """Check the port's steps against popgym's, episode by episode, step by step.

    Observations (after `encode_obs`; skipped when it is None) and rewards to `atol`; the
    terminated flag exactly; ``truncated`` as popgym's ``truncated and not terminated`` (rtrrl
    never reports both); ``done`` exactly at the episode's last step and nowhere before; the
    episode statistics (return, length) at the last step. Only the first `horizon` steps of
    each episode are compared (all when None).
    """
    for b, episode in enumerate(episodes):
        n = episode.length
        m = n if horizon is None else min(n, horizon)
        where = f"episode {b} (length {n})"
        if encode_obs is not None:
            expected_obs = np.stack([encode_obs(o) for o in episode.obs[1 : m + 1]])
            np.testing.assert_allclose(
                port["final_obs"][b, :m], expected_obs, atol=atol, err_msg=where
            )
        rewards = np.asarray(episode.rewards)
        terminated = np.asarray(episode.terminated)
        truncated = np.asarray(episode.truncated) & ~terminated
        done = np.zeros(n, bool)
        done[-1] = True
        np.testing.assert_allclose(port["reward"][b, :m], rewards[:m], atol=atol, err_msg=where)
        np.testing.assert_array_equal(port["terminated"][b, :m], terminated[:m], err_msg=where)
        np.testing.assert_array_equal(port["truncated"][b, :m], truncated[:m], err_msg=where)
        np.testing.assert_array_equal(port["done"][b, :m], done[:m], err_msg=where)
        if m == n:
            assert port["episode_length"][b, n - 1] == n, where
            np.testing.assert_allclose(
                port["episode_return"][b, n - 1], rewards.sum(), atol=atol, err_msg=where
            )


@eqx.filter_jit
def _resets(env, key, n):
    return jax.vmap(env.reset_episode)(jax.random.split(key, n))


def port_resets(env, n: int, seed: int = 0) -> tuple[np.ndarray, Any]:
    """`n` first observations and inner states of the port, as numpy arrays."""
    obs, inner = _resets(env, jax.random.PRNGKey(seed), n)
    return np.asarray(obs), jax.tree.map(np.asarray, inner)


@eqx.filter_jit
def _one_step(env, inner, actions, key):
    keys = jax.random.split(key, actions.shape[0])
    return jax.vmap(env.step_episode)(keys, inner, actions)


def assert_one_step_agrees(
    env,
    inner,
    episodes: list[Episode],
    encode_obs: Callable[[Any], np.ndarray],
    atol: float = 1e-5,
) -> None:
    """Every step of every episode, in order, from popgym's state before it.

    `inner` holds one port state per step (batched, in the episodes' order); the port's
    ``step_episode`` (the transition itself, without auto-reset) must give popgym's
    observation and reward to `atol` and popgym's raw ``terminated`` and ``truncated``.
    """
    actions = jnp.asarray(np.asarray([a for e in episodes for a in e.actions]))
    obs, _, reward, terminated, truncated = _one_step(env, inner, actions, jax.random.PRNGKey(0))
    expected_obs = np.stack([encode_obs(o) for e in episodes for o in e.obs[1:]])
    np.testing.assert_allclose(np.asarray(obs), expected_obs, atol=atol)
    rewards = np.concatenate([e.rewards for e in episodes])
    np.testing.assert_allclose(np.asarray(reward), rewards, atol=atol)
    np.testing.assert_array_equal(terminated, np.concatenate([e.terminated for e in episodes]))
    np.testing.assert_array_equal(truncated, np.concatenate([e.truncated for e in episodes]))
