"""The MineSweeper port agrees with popgym's MineSweeper on the same boards.

popgym's mine field (its ``hidden_grid`` right after ``reset``) is injected into the port,
and whole episodes are replayed: random clicks (mostly a mine soon), "careful" clicks on
free tiles only (repeats included: a win or the time limit), a perfect game (return 1) and
the worst game (return -1). Observations (one-hot counts), rewards and flags must agree at
every step. popgym's ``MultiDiscrete([rows, cols])`` action ``(r, c)`` is the port's
``r * cols + c``.
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
from popgym.envs.minesweeper import HiddenSquare

from rtrrl.envs import Discrete, make
from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id
from rtrrl.envs._popgym._minesweeper import MineSweeperState


def random_click(env, rng):
    return rng.integers(env.dims)


def careful_click(env, rng):
    """A uniformly random free tile, viewed or not: never a mine."""
    free = np.argwhere(env.hidden_grid != HiddenSquare.MINE)
    return free[rng.integers(len(free))]


def perfect_click(env, rng):
    """A free tile not yet viewed: clears the board in L steps."""
    return np.argwhere(env.hidden_grid == HiddenSquare.CLEAR)[0]


def worst_click(env, rng):
    """View one tile, repeat it L - 2 times, then hit a mine on the last step."""
    viewed = np.argwhere(env.hidden_grid == HiddenSquare.VIEWED)
    if len(viewed) == 0:
        return np.argwhere(env.hidden_grid == HiddenSquare.CLEAR)[0]
    if env.timestep < env.max_episode_length - 1:
        return viewed[0]
    return np.argwhere(env.hidden_grid == HiddenSquare.MINE)[0]


def read_mines(env):
    return np.array(env.hidden_grid == HiddenSquare.MINE)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_episodes_agree_on_popgym_boards(difficulty):
    env_id = popgym_id("MineSweeper", difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    length = ref.max_episode_length
    assert env.max_episode_length == length
    policies = [random_click] * 12 + [careful_click] * 12 + [perfect_click, worst_click]
    episodes = [
        reference_episode(ref, seed, policy, read_start=read_mines)
        for seed, policy in enumerate(policies)
    ]

    # Every ending is exercised: a mine, a win, the time limit; both return bounds are hit.
    returns = [sum(e.rewards) for e in episodes]
    assert returns[-2] == pytest.approx(1.0) and returns[-1] == pytest.approx(-1.0)
    assert all(-1.0 - 1e-9 <= r <= 1.0 + 1e-9 for r in returns)
    assert any(e.terminated[-1] and e.length < length for e in episodes)
    assert any(e.truncated[-1] and e.length == length for e in episodes)
    assert episodes[-2].terminated[-1] and episodes[-2].length == length  # the win

    mines = jnp.asarray(np.stack([e.start for e in episodes]))
    # Built under vmap: the state's annotations describe one environment.
    inner = jax.vmap(MineSweeperState)(
        mines, jnp.zeros_like(mines), jnp.zeros(len(episodes), jnp.int32)
    )
    cols = ref.dims[1]
    actions = pad_actions(episodes, lambda a: int(a[0]) * cols + int(a[1]), 0)
    encode = lambda o: one_hot(o, ref.observation_space)  # noqa: E731
    port = port_rollout(env, inner, actions)
    assert_agrees(port, episodes, encode)

    # The first observation of the next episode (auto-reset at each end) is popgym's reset
    # observation, one-hot.
    for b, e in enumerate(episodes):
        np.testing.assert_array_equal(port.obs[b, e.length - 1], encode(e.obs[0]))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_mines_are_placed_like_popgym(difficulty):
    """Exactly ``num_mines`` mines, each tile equally likely, no tile viewed at the start."""
    env_id = popgym_id("MineSweeper", difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    n = 4000
    _, inner = port_resets(env, n)
    assert inner.mines.shape == (n, *ref.dims)
    np.testing.assert_array_equal(inner.mines.sum((1, 2)), ref.num_mines)
    assert not inner.viewed.any() and not inner.timestep.any()
    p = ref.num_mines / np.prod(ref.dims)
    frequency = inner.mines.mean(0)
    assert np.abs(frequency - p).max() < 5 * np.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_spaces_match_popgym(difficulty):
    env_id = popgym_id("MineSweeper", difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    assert env.name == env_id
    assert env.observation_size == ref.observation_space.n
    assert env.action_space == Discrete(int(np.prod(ref.action_space.nvec)))
    assert (env.rows, env.cols) == tuple(ref.action_space.nvec)
