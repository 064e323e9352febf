"""POPGym Concentration: turn face-down cards two at a time to find all matching pairs."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment, default_float
from .._spaces import Discrete
from . import _cards
from ._common import difficulty_config, discrete_action, popgym_id, register_task

# difficulty -> (number of 52-card decks, what must match), as in popgym.envs.concentration.
_CONFIG = {"Easy": (1, "colors"), "Medium": (2, "colors"), "Hard": (1, "ranks")}
_KINDS = {
    "colors": (_cards.color, _cards.NUM_COLORS),
    "ranks": (_cards.rank, _cards.NUM_RANKS),
}


class ConcentrationState(eqx.Module):
    """One episode of `Concentration`.

    - ``layout``: the card id lying at each table position (a shuffled deck).
    - ``face_up``: positions of cards already matched, which stay face up.
    - ``first``: position of the card turned at the start of an unfinished turn, -1 if none.
    - ``step``: steps taken in this episode.
    """

    layout: Int[Array, " cards"]
    face_up: Bool[Array, " cards"]
    first: Int[Array, ""]
    step: Int[Array, ""]


class Concentration(AbstractEpisodicEnvironment):
    """JAX port of POPGym's ``Concentration`` (Morad et al., ICLR 2023; ``popgym`` 1.0.7).

    ``N = 52 * num_decks`` shuffled cards lie face down. Each action turns one card; every
    two turns form a turn-pair: if the two cards match (same colour or same rank, by
    difficulty; ``K`` kinds) they stay face up, otherwise both go face down again. Turning a
    card that is already face up ends the turn-pair at once, as a failure.

    - Observation: per position, the kind of the card if it is face up or was turned at this
      step (so a mismatched pair is visible for one step), else ``K`` ("face down"); one-hot
      per position, size ``N (K + 1)``.
    - Action: ``Discrete(N)``, the position to turn. popgym flags this task
      ``obs_requires_prev_action``.
    - Reward, with the time limit ``L = ceil(2 N - N / (2 N - 1))`` (popgym's estimate of
      the steps a perfect-memory player needs): ``+1/(N/2)`` for a match; ``-2/L`` for a
      mismatch, or for turning the same position twice; ``-1/L`` per card in play when a
      face-up card is turned; 0 for a valid first card. A perfect player gets 1; returns lie
      in ``[-1, 1]``.
    - Episode: *terminates* when every card is face up; *truncated* after ``L`` steps.
      popgym can report both flags on the same step; this port then reports only
      ``terminated`` (the base class's rule: a terminal step is not a time-limit cut).

    Difficulties (decks, match on): Easy (1, colours; L = 104), Medium (2, colours; L = 208),
    Hard (1, ranks; L = 104).
    """

    difficulty: str = eqx.field(static=True)
    num_decks: int = eqx.field(static=True)
    deck_type: str = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.num_decks, self.deck_type = difficulty_config("Concentration", difficulty, _CONFIG)

    @property
    def name(self) -> str:
        return popgym_id("Concentration", self.difficulty)

    @property
    def num_cards(self) -> int:
        return _cards.DECK_SIZE * self.num_decks

    @property
    def num_kinds(self) -> int:
        return _KINDS[self.deck_type][1]

    @property
    def episode_length(self) -> int:
        n = self.num_cards
        return math.ceil(2 * n - n / (2 * n - 1))

    @property
    def observation_size(self) -> int:
        return self.num_cards * (self.num_kinds + 1)

    @property
    def action_space(self) -> Discrete:
        return Discrete(self.num_cards)

    def _kind(self, card: Int[Array, "*shape"]) -> Int[Array, "*shape"]:
        return _KINDS[self.deck_type][0](card)

    def _obs(
        self, layout: Int[Array, " cards"], visible: Bool[Array, " cards"]
    ) -> Float[Array, " obs"]:
        facedown = self.num_kinds
        values = jnp.where(visible, self._kind(layout), facedown)
        # All positions share one size, so this equals ``one_hot_concat(values, [K + 1] * N)``
        # without unrolling N one-hots into the graph.
        return jax.nn.one_hot(values, facedown + 1, dtype=default_float()).reshape(-1)

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, " obs"], ConcentrationState]:
        layout = _cards.shuffled_deck(key, self.num_decks)
        face_up = jnp.zeros(self.num_cards, bool)
        state = ConcentrationState(
            layout, face_up, jnp.asarray(-1, jnp.int32), jnp.zeros((), jnp.int32)
        )
        return self._obs(layout, face_up), state

    def step_episode(
        self, key: PRNGKey, inner: ConcentrationState, action: Int[ArrayLike, ""]
    ) -> tuple[
        Float[Array, " obs"], ConcentrationState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]
    ]:
        del key  # the layout was shuffled at reset; a step is deterministic
        turned = discrete_action(action)
        positions = jnp.arange(self.num_cards, dtype=jnp.int32)
        has_first = inner.first >= 0
        first = jnp.maximum(inner.first, 0)
        turned_mask = positions == turned
        first_mask = has_first & (positions == first)

        # popgym renders the observation before resolving the turn: both turned cards show.
        obs = self._obs(inner.layout, inner.face_up | turned_mask | first_mask)

        already_up = inner.face_up[turned] | (has_first & inner.face_up[first])
        same_kind = self._kind(inner.layout[first]) == self._kind(inner.layout[turned])
        matched = has_first & ~already_up & same_kind & (first != turned)

        success = 1.0 / (self.num_cards // 2)
        failure = -1.0 / self.episode_length
        # Turning a face-up card costs ``failure`` per card in play (1 or 2 of them).
        reward_up = jnp.where(has_first, 2 * failure, failure)
        reward_pair = jnp.where(matched, success, 2 * failure)
        reward = jnp.where(already_up, reward_up, jnp.where(has_first, reward_pair, 0.0))

        face_up = inner.face_up | (matched & (turned_mask | first_mask))
        # A valid first card waits for its partner; anything else ends the turn-pair.
        next_first = jnp.where(has_first | already_up, -1, turned).astype(jnp.int32)
        terminated = matched & jnp.all(face_up)
        truncated = inner.step >= self.episode_length - 1
        new = ConcentrationState(inner.layout, face_up, next_first, inner.step + 1)
        return obs, new, reward, terminated, truncated


register_task(
    "Concentration",
    Concentration,
    "memory card game: find matching pairs (per-position one-hot obs)",
)
