"""MultiarmedBandit port vs the `popgym` package.

Payouts are random draws that no two libraries share, so the comparison forces the arms:

- step by step: the arms popgym drew, rounded to probabilities 0 or 1 and put into both,
  make every payout certain; observations, rewards and flags must then agree exactly;
- in distribution: with popgym's own arm probabilities in the port, each arm's payout rate
  must match its probability.
"""

import equinox as eqx
import jax
import numpy as np
import pytest
from _popgym_reference import (
    assert_agrees,
    check_spaces,
    one_hot,
    port_resets,
    port_rollout,
    reference_env,
    reference_episode,
)

from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id

_ARMS = {"Easy": 10, "Medium": 20, "Hard": 30}
_LENGTH = {"Easy": 200, "Medium": 400, "Hard": 600}


def _certain_arms(bandits: np.ndarray) -> np.ndarray:
    """popgym's arms rounded to 0 / 1: the better half always pays, the rest never."""
    return (np.argsort(np.argsort(bandits)) >= len(bandits) // 2).astype(np.float32)


def _forced_arms(bandits: np.ndarray):
    """A `reference_episode` ``prepare`` that sets popgym's arm probabilities to `bandits`."""

    def prepare(env):
        env.bandits = bandits

    return prepare


def _port_states(env, bandits: np.ndarray):
    """``(o_0, inner)`` of port resets whose arm probabilities are `bandits` (batch × arms)."""
    first_obs, inner = port_resets(env, len(bandits))
    forced = np.asarray(bandits, inner.bandits.dtype)
    return first_obs, eqx.tree_at(lambda i: i.bandits, inner, forced)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_agrees_with_popgym_on_certain_arms(difficulty):
    env_id = popgym_id("MultiarmedBandit", difficulty)
    env = check_spaces(env_id)
    arms, length = _ARMS[difficulty], _LENGTH[difficulty]
    rng = np.random.default_rng(0)
    references, bandits, actions = [], [], []
    for seed in range(3):
        probe = reference_env(env_id)
        probe.reset(seed=seed)
        certain = _certain_arms(probe.bandits)
        paying = np.flatnonzero(certain == 1)
        # Random pulls, and the best policy (always a paying arm) that earns popgym's max 1.
        for acts in (rng.integers(0, arms, length), np.full(length, paying[0])):
            ref = reference_env(env_id)
            references.append(reference_episode(ref, seed, acts, prepare=_forced_arms(certain)))
            bandits.append(certain)
            actions.append(acts)
    first_obs, inner = _port_states(env, np.stack(bandits))
    port = port_rollout(env, inner, np.stack(actions))
    space = probe.observation_space
    assert_agrees(
        port,
        references,
        lambda o: one_hot(o, space),
        atol=1e-12,
        obs_atol=0.0,
        first_obs=first_obs,
        labels=[env_id] * len(references),
    )
    for ref in references:
        # A time limit only: truncated on step L, never terminated.
        assert ref.length == length and ref.truncated[-1] and not ref.terminated.any()
    best = port.rewards[1::2].sum(axis=1)
    np.testing.assert_allclose(best, 1.0, atol=1e-9)
    random_returns = port.rewards[0::2].sum(axis=1)
    assert np.all((random_returns > -1) & (random_returns < 1))


def test_payout_rates_match_popgym_arms():
    # The payout rule does not depend on the difficulty; one is enough to check the rates.
    difficulty = "Easy"
    env_id = popgym_id("MultiarmedBandit", difficulty)
    env = check_spaces(env_id)
    arms, length = _ARMS[difficulty], _LENGTH[difficulty]
    ref = reference_env(env_id)
    ref.reset(seed=7)
    probabilities = np.asarray(ref.bandits, np.float64)
    episodes = 40
    _, inner = _port_states(env, np.tile(probabilities, (episodes, 1)))
    # Every arm pulled equally often: arm = step mod arms.
    actions = np.tile(np.arange(length) % arms, (episodes, 1))
    port = port_rollout(env, inner, actions, seed=3)
    paid = port.rewards > 0
    # The observation says whether the pull paid, and the reward is +-1/L accordingly.
    np.testing.assert_array_equal(port.final_obs[..., 1] == 1, paid)
    np.testing.assert_allclose(np.abs(port.rewards), 1 / length)
    pulls = episodes * length // arms
    rates = np.array([paid[:, a::arms].mean() for a in range(arms)])
    tolerance = 5 * np.sqrt(probabilities * (1 - probabilities) / pulls) + 1e-3
    assert np.all(np.abs(rates - probabilities) < tolerance), (rates, probabilities)


def test_reset_draws_fresh_uniform_arms():
    env = check_spaces(popgym_id("MultiarmedBandit", "Easy"))
    first_obs, states = jax.vmap(env.reset)(jax.random.split(jax.random.key(1), 500))
    bandits = np.asarray(states.inner.bandits)
    # popgym's first observation is "no payout" (0), one-hot [1, 0].
    np.testing.assert_array_equal(np.asarray(first_obs), np.tile([1.0, 0.0], (500, 1)))
    assert bandits.shape == (500, 10)
    assert np.all((bandits >= 0) & (bandits < 1))
    assert abs(bandits.mean() - 0.5) < 0.02 and abs(bandits.var() - 1 / 12) < 0.01
    assert len(np.unique(bandits[:, 0])) == 500
