"""POPGym MineSweeper: clear a hidden mine field, seeing only the count under each click."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment
from .._spaces import Discrete
from ._common import difficulty_config, one_hot_concat, popgym_id, register_task

# difficulty -> (rows, cols, mines), as in popgym.envs.minesweeper.
_CONFIG = {"Easy": (4, 4, 2), "Medium": (6, 6, 6), "Hard": (8, 8, 10)}


class MineSweeperState(eqx.Module):
    """One episode of `MineSweeper` (popgym's ``hidden_grid`` split into two masks).

    - ``mines``: where the mines are (popgym's ``MINE`` tiles).
    - ``viewed``: free tiles already clicked (popgym's ``VIEWED`` tiles; never a mine).
    - ``timestep``: steps taken in this episode.
    """

    mines: Bool[Array, "rows cols"]
    viewed: Bool[Array, "rows cols"]
    timestep: Int[Array, ""]


class MineSweeper(AbstractEpisodicEnvironment):
    """JAX port of POPGym's ``MineSweeper`` (popgym 1.0.7, Morad et al. ICLR 2023).

    ``num_mines`` mines are placed uniformly at random (without replacement) on a
    ``rows x cols`` grid that the agent never sees. Each step the agent clicks a tile and is
    told how many mines lie in the 3x3 block centred on it (the tile itself included, as
    popgym counts). It must click every free tile and no mine.

    - Observation: that count, one-hot over ``min(num_mines + 1, 10)`` values; the first
      observation is the count 0 (popgym's reset observation). Sizes: 3, 7, 10.
    - Action: ``Discrete(rows * cols)``, the tile ``(row, col)`` flattened row-major as
      ``row * cols + col`` (popgym's ``MultiDiscrete([rows, cols])``). Out-of-range actions
      are undefined.
    - Reward, with ``L = rows * cols - num_mines``: ``+1/L`` for a new free tile,
      ``-0.5/(L - 2)`` for a tile already clicked, ``-0.5 - 1/L`` for a mine. Returns lie in
      ``[-1, 1]``: ``1`` clears the field without a repeat.
    - Episode: *terminated* on a mine or when every free tile is clicked (a win); otherwise
      *truncated* after ``L`` steps.

    Difficulties (rows, cols, mines): Easy (4, 4, 2), Medium (6, 6, 6), Hard (8, 8, 10), so
    ``L`` is 14, 30, 54. popgym flags ``obs_requires_prev_action``: the observation is only
    meaningful together with the clicked tile, which rtrrl's Meta-RL input supplies.
    """

    difficulty: str = eqx.field(static=True)
    rows: int = eqx.field(static=True)
    cols: int = eqx.field(static=True)
    num_mines: int = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.rows, self.cols, self.num_mines = difficulty_config("MineSweeper", difficulty, _CONFIG)

    @property
    def name(self) -> str:
        return popgym_id("MineSweeper", self.difficulty)

    @property
    def num_counts(self) -> int:
        """Number of observable counts (popgym's ``Discrete(min(num_mines + 1, 10))``)."""
        return min(self.num_mines + 1, 10)

    @property
    def observation_size(self) -> int:
        return self.num_counts

    @property
    def action_space(self) -> Discrete:
        return Discrete(self.rows * self.cols)

    @property
    def max_episode_length(self) -> int:
        return self.rows * self.cols - self.num_mines

    def _obs(self, count: Int[Array, ""]) -> Float[Array, " obs"]:
        return one_hot_concat(count[None], [self.num_counts])

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, " obs"], MineSweeperState]:
        cells = self.rows * self.cols
        mine_cells = jax.random.choice(key, cells, (self.num_mines,), replace=False)
        mines = jnp.zeros(cells, bool).at[mine_cells].set(True).reshape(self.rows, self.cols)
        state = MineSweeperState(mines, jnp.zeros_like(mines), jnp.zeros((), jnp.int32))
        return self._obs(jnp.zeros((), jnp.int32)), state

    def step_episode(
        self, key: PRNGKey, inner: MineSweeperState, action: Int[ArrayLike, ""]
    ) -> tuple[
        Float[Array, " obs"], MineSweeperState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]
    ]:
        del key
        length = self.max_episode_length
        row, col = jnp.divmod(jnp.asarray(action), self.cols)
        is_mine = inner.mines[row, col]
        was_viewed = inner.viewed[row, col]
        reward = jnp.where(
            is_mine, -0.5 - 1.0 / length, jnp.where(was_viewed, -0.5 / (length - 2), 1.0 / length)
        )
        viewed = inner.viewed.at[row, col].set(was_viewed | ~is_mine)
        timestep = inner.timestep + 1
        terminated = is_mine | jnp.all(inner.mines | viewed)
        truncated = timestep == length
        # Mines in the 3x3 block around (row, col); the zero border stands for off-board tiles.
        padded = jnp.pad(inner.mines.astype(jnp.int32), 1)
        count = jnp.sum(jax.lax.dynamic_slice(padded, (row, col), (3, 3)))
        state = MineSweeperState(inner.mines, viewed, timestep)
        return self._obs(count), state, reward, terminated, truncated


register_task(
    "MineSweeper",
    MineSweeper,
    "hidden MineSweeper 4x4/6x6/8x8; obs: one-hot mine count at the click; returns in [-1, 1]",
)
