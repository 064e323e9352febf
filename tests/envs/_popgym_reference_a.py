"""Reference side of the group-A POPGym agreement tests (memory and card tasks).

The `popgym` package (numpy/gymnasium) is the reference. A test resets a popgym env with a
seed, reads the deck it shuffled, forces the same deck into the JAX port, plays the same
actions in both and compares every step. This module provides:

- `encode`: popgym observations one-hot encoded with numpy, independently of the port's
  `one_hot_concat`, following the gym observation space;
- `deal_order`: popgym's shuffled deck in the order its cards are dealt;
- `play_reference`: one popgym episode with given actions;
- `forced_reset` / `play_port`: the port reset onto given decks, and a batch of episodes under
  ``jit(vmap(scan))``;
- `assert_agree`: the step-by-step comparison.
"""

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import popgym  # noqa: F401  (registers the popgym ids with gymnasium)
import pytest

import rtrrl.envs._popgym  # noqa: F401  (registers the ports)
from rtrrl.envs import AbstractEnvironment, make
from rtrrl.envs._popgym import _cards


def encode(obs, space: gym.Space) -> np.ndarray:
    """One-hot encode a popgym observation by its gym space (concatenated per component)."""
    if isinstance(space, gym.spaces.Discrete):
        out = np.zeros(int(space.n))
        out[int(obs) - int(space.start)] = 1.0
        return out
    if isinstance(space, gym.spaces.MultiDiscrete):
        obs = np.asarray(obs).reshape(-1)
        sizes = np.asarray(space.nvec).reshape(-1)
        return np.concatenate([np.eye(int(n))[int(v)] for v, n in zip(obs, sizes, strict=True)])
    if isinstance(space, gym.spaces.Tuple):
        return np.concatenate([encode(o, s) for o, s in zip(obs, space.spaces, strict=True)])
    raise TypeError(f"no one-hot encoding for {space}")


def encoded_size(space: gym.Space) -> int:
    """Length of `encode`'s output for this space."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, gym.spaces.Tuple):
        return sum(encoded_size(s) for s in space.spaces)
    raise TypeError(f"no one-hot encoding for {space}")


def deal_order(deck) -> np.ndarray:
    """A popgym ``Deck``'s cards in the order it deals them (it deals from the end of ``idx``)."""
    return np.asarray(deck.idx[::-1], dtype=np.int32)


@dataclasses.dataclass
class Episode:
    """One episode: ``obs[0]`` is the reset observation, ``obs[t + 1]`` follows step ``t``."""

    obs: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray

    @property
    def length(self) -> int:
        return len(self.rewards)


def play_reference(env: gym.Env, first_obs, actions: Sequence[int]) -> Episode:
    """Step a freshly reset popgym env with `actions` until its episode ends.

    Fails if the actions run out first, so a wrong episode length in the test's setup shows.
    """
    space = env.observation_space
    obs, rewards, terminated, truncated = [encode(first_obs, space)], [], [], []
    for action in actions:
        o, r, term, trunc, _ = env.step(np.int64(action))
        obs.append(encode(o, space))
        rewards.append(float(r))
        terminated.append(bool(term))
        truncated.append(bool(trunc))
        if term or trunc:
            break
    else:
        pytest.fail(f"popgym episode did not end within {len(actions)} steps")
    return Episode(np.stack(obs), np.array(rewards), np.array(terminated), np.array(truncated))


def reset_reference(env_id: str, seed: int) -> tuple[gym.Env, object]:
    """``(env, o_0)`` of the popgym env `env_id` reset with `seed`."""
    env = gym.make(env_id)
    first_obs, _ = env.reset(seed=seed)
    return env, first_obs


@contextlib.contextmanager
def _forced_decks(decks: Iterator) -> Iterator[None]:
    """Make the ports' `shuffled_deck` hand out `decks` in order instead of shuffling."""
    original = _cards.shuffled_deck
    _cards.shuffled_deck = lambda key, num_decks: next(decks)
    try:
        yield
    finally:
        _cards.shuffled_deck = original


def forced_reset(env: AbstractEnvironment, decks: Sequence[jax.Array]):
    """``env.reset`` where each shuffle the port draws returns the next of `decks` (batched).

    Forcing the shuffle (rather than editing the state after reset) runs the port's own reset
    code, so the first observation is checked too.
    """

    def reset_one(*one_decks):
        remaining = iter(one_decks)
        with _forced_decks(remaining):
            out = env.reset(jax.random.key(0))
        assert next(remaining, None) is None, "the port drew fewer decks than were forced"
        return out

    return jax.vmap(reset_one)(*[jnp.asarray(d) for d in decks])


def play_port(env: AbstractEnvironment, first_obs, states, actions: np.ndarray, seed: int = 0):
    """Run a batch of port episodes from `states` with `actions` (batch × time).

    Returns a dict of numpy arrays (batch × time [× obs]) with the pre-reset observation of
    each step (``info.final_observation``), reward, done and the info fields, plus the reset
    observations under ``"first_obs"``.
    """
    batch, steps = actions.shape

    @jax.jit
    def rollout(states, actions, keys):
        def one(state, acts, key):
            def body(s, xs):
                k, a = xs
                _, s, r, done, info = env.step(k, s, a)
                return s, (info.final_observation, r, done, info)

            return jax.lax.scan(body, state, (jax.random.split(key, steps), acts))[1]

        return jax.vmap(one)(states, actions, keys)

    keys = jax.random.split(jax.random.key(seed), batch)
    obs, rewards, done, info = rollout(states, jnp.asarray(actions, jnp.int32), keys)
    return {
        "first_obs": np.asarray(first_obs),
        "obs": np.asarray(obs),
        "rewards": np.asarray(rewards),
        "done": np.asarray(done),
        "terminated": np.asarray(info.terminated),
        "truncated": np.asarray(info.truncated),
        "episode_return": np.asarray(info.episode_return),
        "episode_length": np.asarray(info.episode_length),
    }


def assert_agree(port: dict, b: int, ref: Episode, label: str = "") -> None:
    """Episode `b` of a `play_port` batch equals the popgym episode `ref`, step by step."""
    n = ref.length
    where = f"{label} (episode {b})"
    np.testing.assert_array_equal(port["first_obs"][b], ref.obs[0], err_msg=f"o_0 {where}")
    np.testing.assert_array_equal(port["obs"][b, :n], ref.obs[1:], err_msg=f"obs {where}")
    np.testing.assert_allclose(
        port["rewards"][b, :n], ref.rewards, rtol=0, atol=1e-12, err_msg=f"rewards {where}"
    )
    np.testing.assert_array_equal(
        port["terminated"][b, :n], ref.terminated, err_msg=f"terminated {where}"
    )
    # The port never reports a terminal step as a time-limit cut as well (see `StepInfo`).
    np.testing.assert_array_equal(
        port["truncated"][b, :n], ref.truncated & ~ref.terminated, err_msg=f"truncated {where}"
    )
    # The episode ends at the same step in both, and the statistics describe it.
    expected_done = np.zeros(n, bool)
    expected_done[-1] = True
    np.testing.assert_array_equal(port["done"][b, :n], expected_done, err_msg=f"done {where}")
    assert port["episode_length"][b, n - 1] == n, where
    np.testing.assert_allclose(port["episode_return"][b, n - 1], ref.rewards.sum(), atol=1e-12)


def check_spaces(env_id: str) -> AbstractEnvironment:
    """`make(env_id)` has popgym's encoded observation size and action count; returns it."""
    env = make(env_id)
    ref = gym.make(env_id)
    assert env.name == env_id
    assert env.observation_size == encoded_size(ref.observation_space)
    assert isinstance(ref.action_space, gym.spaces.Discrete)
    assert env.action_space.n == int(ref.action_space.n)
    return env


@dataclasses.dataclass
class Agreement:
    """Outcome of `run_agreement`: the popgym episodes and the port's batch, all compared."""

    labels: list[tuple[int, str]]
    reference: list[Episode]
    port: dict

    def returns(self, policy: str) -> tuple[np.ndarray, np.ndarray]:
        """``(popgym returns, port returns)`` of every seed's episode under `policy`."""
        idx = [b for b, (_, name) in enumerate(self.labels) if name == policy]
        ref = np.array([self.reference[b].rewards.sum() for b in idx])
        port = np.array([self.port["rewards"][b, : self.reference[b].length].sum() for b in idx])
        return ref, port

    def lengths(self) -> np.ndarray:
        return np.array([ep.length for ep in self.reference])


def run_agreement(
    env_id: str,
    *,
    steps: int,
    decks: Callable[[gym.Env], Sequence[np.ndarray]],
    policies: Callable[[gym.Env, np.random.Generator, int], dict[str, np.ndarray]],
    seeds: Sequence[int] = (0, 1, 2),
) -> Agreement:
    """Play popgym and the port on the same decks and actions and compare every step.

    For each seed the popgym env `env_id` is reset with it; ``decks(unwrapped_env)`` reads
    the shuffled deck(s) to force into the port and ``policies(unwrapped_env, rng, steps)``
    builds named action sequences (random, always right, always wrong, ...) of `steps`
    actions, which may look at the deck. Every (seed, policy) pair is one popgym episode
    (the env is reset with the same seed again) and one episode of the port's batch.
    """
    port_env = check_spaces(env_id)
    rng = np.random.default_rng(12345)
    labels, reference, forced, actions = [], [], [], []
    for seed in seeds:
        probe, _ = reset_reference(env_id, seed)
        seed_decks = [np.asarray(d, np.int32) for d in decks(probe.unwrapped)]
        for name, acts in policies(probe.unwrapped, rng, steps).items():
            assert len(acts) == steps, name
            env, first_obs = reset_reference(env_id, seed)
            reference.append(play_reference(env, first_obs, acts))
            labels.append((seed, name))
            forced.append(seed_decks)
            actions.append(np.asarray(acts))
    batched_decks = [np.stack(ds) for ds in zip(*forced, strict=True)]
    first_obs, states = forced_reset(port_env, batched_decks)
    port = play_port(port_env, first_obs, states, np.stack(actions))
    for b, (ref, (seed, name)) in enumerate(zip(reference, labels, strict=True)):
        assert_agree(port, b, ref, f"{env_id} seed={seed} policy={name}")
    return Agreement(labels, reference, port)
