"""POPGym Battleship: sink hidden ships, seeing only hit or miss for each shot."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment
from .._spaces import Discrete
from ._common import difficulty_config, one_hot_concat, popgym_id, register_task

# difficulty -> board_size, as in popgym.envs.battleship; the fleet is the same everywhere.
_BOARD_SIZE = {"Easy": 8, "Medium": 10, "Hard": 12}
_SHIP_SIZES = (2, 3, 3, 4)


def valid_placements(board: Bool[Array, "size size"], ship: int) -> Bool[Array, "2 size size"]:
    """Where a ship of length `ship` fits: ``[axis, row, col]`` for the segment that starts at
    ``(row, col)`` and extends down (axis 0) or right (axis 1), inside the board and clear of
    every ship already on it (ships may touch, as in popgym).
    """
    size = board.shape[0]
    # Pad with occupied tiles so segments that leave the board count as overlapping.
    padded = jnp.pad(board, ((0, ship - 1), (0, ship - 1)), constant_values=True)
    down = jnp.zeros((size, size), bool)
    right = jnp.zeros((size, size), bool)
    for k in range(ship):
        down = down | padded[k : k + size, :size]
        right = right | padded[:size, k : k + size]
    return ~jnp.stack([down, right])


def place_ships(key: PRNGKey, size: int, ship_sizes: tuple[int, ...]) -> Bool[Array, "size size"]:
    """Place the ships one after another, each uniformly among its valid segments.

    popgym draws a start tile, an axis and a sign uniformly and redraws until the segment is
    valid; every segment is drawn by exactly two such triples (one from each end), so its
    accepted draw is uniform over the valid segments. This samples that distribution directly,
    without a rejection loop, so the shapes stay fixed.
    """
    rows = jnp.arange(size)[:, None]
    cols = jnp.arange(size)[None, :]
    board = jnp.zeros((size, size), bool)
    # The largest of i.i.d. uniforms over the valid segments picks one uniformly; one draw
    # for the whole fleet keeps the compiled reset small.
    scores = jax.random.uniform(key, (len(ship_sizes), 2 * size * size))
    for ship, score in zip(ship_sizes, scores, strict=True):
        valid = valid_placements(board, ship).reshape(-1)
        index = jnp.argmax(jnp.where(valid, score, -1.0))
        axis, row, col = jnp.unravel_index(index, (2, size, size))
        along_rows = (cols == col) & (rows >= row) & (rows < row + ship)
        along_cols = (rows == row) & (cols >= col) & (cols < col + ship)
        board = board | jnp.where(axis == 0, along_rows, along_cols)
    return board


class BattleshipState(eqx.Module):
    """One episode of `Battleship`.

    - ``board``: tiles covered by a ship (popgym's ``board``).
    - ``guesses``: tiles already shot at (popgym's ``guesses``).
    - ``hits``: ship tiles hit for the first time so far.
    - ``num_steps``: steps taken in this episode.
    """

    board: Bool[Array, "size size"]
    guesses: Bool[Array, "size size"]
    hits: Int[Array, ""]
    num_steps: Int[Array, ""]


class Battleship(AbstractEpisodicEnvironment):
    """JAX port of POPGym's ``Battleship`` (popgym 1.0.7, Morad et al. ICLR 2023).

    Ships of lengths 2, 3, 3 and 4 (``H = 12`` tiles) lie hidden on a ``size x size`` board,
    each horizontal or vertical, uniformly among the segments that fit (ships may touch).
    Each step the agent shoots at a tile and is told hit or miss.

    - Observation: hit (1) or miss (0), one-hot, size 2; the first observation is a miss.
      A second shot at a ship tile is a miss.
    - Action: ``Discrete(size * size)``, the tile ``(row, col)`` flattened row-major as
      ``row * size + col`` (popgym's ``MultiDiscrete([size, size])``). Out-of-range actions
      are undefined.
    - Reward, with ``L = size * size``: ``+1/H`` for a hit, ``-1/(L - H)`` for a miss, so a
      perfect game returns 1, shooting every tile once returns 0 and ``L`` misses return
      ``-L/(L - H)``.
    - Episode: *terminated* when every ship tile is hit; otherwise *truncated* after ``L``
      steps.

    Difficulties (size): Easy 8, Medium 10, Hard 12. popgym flags
    ``obs_requires_prev_action``: rtrrl's Meta-RL input supplies the previous shot.
    """

    difficulty: str = eqx.field(static=True)
    size: int = eqx.field(static=True)
    ship_sizes: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.size = difficulty_config("Battleship", difficulty, _BOARD_SIZE)
        self.ship_sizes = _SHIP_SIZES

    @property
    def name(self) -> str:
        return popgym_id("Battleship", self.difficulty)

    @property
    def observation_size(self) -> int:
        return 2

    @property
    def action_space(self) -> Discrete:
        return Discrete(self.size * self.size)

    @property
    def max_episode_length(self) -> int:
        return self.size * self.size

    @property
    def needed_hits(self) -> int:
        return sum(self.ship_sizes)

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, "2"], BattleshipState]:
        board = place_ships(key, self.size, self.ship_sizes)
        zero = jnp.zeros((), jnp.int32)
        state = BattleshipState(board, jnp.zeros_like(board), zero, zero)
        return one_hot_concat(zero[None], [2]), state

    def step_episode(
        self, key: PRNGKey, inner: BattleshipState, action: Int[ArrayLike, ""]
    ) -> tuple[
        Float[Array, "2"], BattleshipState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]
    ]:
        del key
        row, col = jnp.divmod(jnp.asarray(action), self.size)
        hit = inner.board[row, col] & ~inner.guesses[row, col]
        guesses = inner.guesses.at[row, col].set(True)
        hits = inner.hits + hit.astype(jnp.int32)
        num_steps = inner.num_steps + 1
        misses_allowed = self.max_episode_length - self.needed_hits
        reward = jnp.where(hit, 1.0 / self.needed_hits, -1.0 / misses_allowed)
        terminated = hits == self.needed_hits
        truncated = num_steps >= self.max_episode_length
        obs = one_hot_concat(hit.astype(jnp.int32)[None], [2])
        state = BattleshipState(inner.board, guesses, hits, num_steps)
        return obs, state, reward, terminated, truncated


register_task(
    "Battleship",
    Battleship,
    "hidden Battleship 8x8/10x10/12x12, 4 ships; obs: one-hot hit/miss; max return 1",
)
