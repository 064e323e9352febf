"""The Battleship port agrees with popgym's Battleship on the same boards.

popgym's board (its ``board`` right after ``reset``) is injected into the port, and whole
episodes are replayed: random shots (repeats included; the time limit), a hunter that often
shoots an unhit ship tile (a win), a row-major sweep, a perfect game (return 1), all misses
(the lowest return, ``-L/(L - 12)``) and every tile with the ships last (the last hit on the
last step: popgym reports terminated *and* truncated, rtrrl terminated only). One-hot
hit/miss observations, rewards and flags must agree at every step. popgym's
``MultiDiscrete([size, size])`` action ``(r, c)`` is the port's ``r * size + c``. Ship
placement is compared with popgym's by the occupancy frequency of every tile.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _popgym_reference import (
    assert_agrees,
    one_hot,
    pad_actions,
    port_resets,
    port_rollout,
    reference_env,
    reference_episode,
)

from rtrrl.envs import Discrete, make
from rtrrl.envs._popgym._battleship import BattleshipState
from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id


def random_shot(env, rng):
    return rng.integers(env.board_size, size=2)


def hunter_shot(env, rng):
    """Half the time an unhit ship tile, otherwise a random tile."""
    targets = np.argwhere((env.board == 1) & (env.guesses == 0))
    if rng.random() < 0.5:
        return targets[rng.integers(len(targets))]
    return random_shot(env, rng)


def sweep_shot(env, rng):
    return np.argwhere(env.guesses == 0)[0]


def perfect_shot(env, rng):
    return np.argwhere((env.board == 1) & (env.guesses == 0))[0]


def miss_shot(env, rng):
    return np.argwhere(env.board == 0)[0]


def ships_last_shot(env, rng):
    water = np.argwhere((env.board == 0) & (env.guesses == 0))
    return water[0] if len(water) else perfect_shot(env, rng)


def read_board(env):
    return np.array(env.board == 1)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_episodes_agree_on_popgym_boards(difficulty):
    env_id = popgym_id("Battleship", difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    length = ref.max_episode_length
    assert env.max_episode_length == length
    policies = [random_shot] * 4 + [hunter_shot] * 4
    policies += [sweep_shot, perfect_shot, miss_shot, ships_last_shot]
    episodes = [
        reference_episode(ref, seed, policy, read_start=read_board)
        for seed, policy in enumerate(policies)
    ]

    needed = sum(ref.ship_sizes)
    returns = [sum(e.rewards) for e in episodes]
    assert returns[-3] == pytest.approx(1.0) and episodes[-3].length == needed
    assert returns[-2] == pytest.approx(-length / (length - needed))
    assert returns[-1] == pytest.approx(0.0)
    assert episodes[-1].terminated[-1] and episodes[-1].truncated[-1]
    assert any(e.truncated[-1] and not e.terminated[-1] for e in episodes)
    assert any(e.terminated[-1] and e.length < length for e in episodes)

    board = jnp.asarray(np.stack([e.start for e in episodes]))
    zeros = jnp.zeros(len(episodes), jnp.int32)
    # Built under vmap: the state's annotations describe one environment.
    inner = jax.vmap(BattleshipState)(board, jnp.zeros_like(board), zeros, zeros)
    size = ref.board_size
    actions = pad_actions(episodes, lambda a: int(a[0]) * size + int(a[1]), 0)
    encode = lambda o: one_hot(o, ref.observation_space)  # noqa: E731
    port = port_rollout(env, inner, actions)
    assert_agrees(port, episodes, encode)

    # The first observation of the next episode (auto-reset at each end) is popgym's reset
    # observation, one-hot.
    for b, e in enumerate(episodes):
        np.testing.assert_array_equal(port.obs[b, e.length - 1], encode(e.obs[0]))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_ships_are_placed_like_popgym(difficulty):
    """Twelve ship tiles per board, tile occupancy frequencies as popgym's."""
    env_id = popgym_id("Battleship", difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    _, inner = port_resets(env, 4000)
    np.testing.assert_array_equal(inner.board.sum((1, 2)), sum(ref.ship_sizes))
    assert not inner.guesses.any() and not inner.hits.any() and not inner.num_steps.any()
    ref_boards = []
    for seed in range(2000):
        ref.reset(seed=seed)
        ref_boards.append(ref.board.copy())
    ref_frequency = np.mean(ref_boards, axis=0)
    frequency = inner.board.mean(0)
    # Corners are rarer than the middle; the port must reproduce that shape.
    p = ref_frequency.mean()
    tolerance = 5 * np.sqrt(p * (1 - p) * (1 / 4000 + 1 / 2000))
    assert np.abs(frequency - ref_frequency).max() < tolerance
    mid = ref.board_size // 2
    assert frequency[0, 0] < frequency[mid, mid] and ref_frequency[0, 0] < ref_frequency[mid, mid]


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_spaces_match_popgym(difficulty):
    env_id = popgym_id("Battleship", difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    assert env.name == env_id
    assert env.observation_size == ref.observation_space.n
    assert env.action_space == Discrete(int(np.prod(ref.action_space.nvec)))
    assert env.size == ref.board_size and env.ship_sizes == tuple(ref.ship_sizes)
