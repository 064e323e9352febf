"""POPGym RepeatPrevious: name the suit of the card dealt ``k - 1`` steps before the latest."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment
from .._spaces import Discrete
from . import _cards
from ._common import difficulty_config, discrete_action, one_hot_concat, popgym_id, register_task

# difficulty -> (number of 52-card decks, k), as in popgym.envs.repeat_previous.
_CONFIG = {"Easy": (1, 4), "Medium": (2, 32), "Hard": (3, 64)}


class RepeatPreviousState(eqx.Module):
    """One episode of `RepeatPrevious`.

    - ``cards``: the shuffled card ids in dealing order (``cards[0]`` is the first observation).
    - ``step``: steps taken in this episode; ``cards[step]`` is the latest card shown.
    """

    cards: Int[Array, " cards"]
    step: Int[Array, ""]


class RepeatPrevious(AbstractEpisodicEnvironment):
    """JAX port of POPGym's ``RepeatPrevious`` (Morad et al., ICLR 2023; ``popgym`` 1.0.7).

    A shuffled deck of ``N = 52 * num_decks`` cards is dealt one card per step. The agent sees
    the suit of the card just dealt and must answer with the suit of the card that was dealt
    ``k - 1`` deals before it (popgym's ``hand[-k]``, looked up *before* the step's deal).

    - Observation: the suit of the latest card, one-hot, size 4.
    - Action: ``Discrete(4)``, a suit.
    - Reward: the first ``k - 1`` steps give 0 (nothing to recall yet); every later step
      gives ``+1/(N - k)`` for the right suit and ``-1/(N - k)`` otherwise, so returns lie
      in ``[-1, 1]``.
    - Episode: ``o_0`` is the first card; the episode *terminates* after ``N - 1`` steps, when
      the deck is empty (no time limit).

    Difficulties (decks, k): Easy (1, 4), Medium (2, 32), Hard (3, 64).
    """

    difficulty: str = eqx.field(static=True)
    num_decks: int = eqx.field(static=True)
    k: int = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.num_decks, self.k = difficulty_config("RepeatPrevious", difficulty, _CONFIG)

    @property
    def name(self) -> str:
        return popgym_id("RepeatPrevious", self.difficulty)

    @property
    def observation_size(self) -> int:
        return _cards.NUM_SUITS

    @property
    def action_space(self) -> Discrete:
        return Discrete(_cards.NUM_SUITS)

    @property
    def num_cards(self) -> int:
        return _cards.DECK_SIZE * self.num_decks

    def _obs(self, card: Int[Array, ""]) -> Float[Array, " obs"]:
        return one_hot_concat(_cards.suit(card)[None], [_cards.NUM_SUITS])

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, " obs"], RepeatPreviousState]:
        cards = _cards.shuffled_deck(key, self.num_decks)
        return self._obs(cards[0]), RepeatPreviousState(cards, jnp.zeros((), jnp.int32))

    def step_episode(
        self, key: PRNGKey, inner: RepeatPreviousState, action: Int[ArrayLike, ""]
    ) -> tuple[
        Float[Array, " obs"],
        RepeatPreviousState,
        Float[Array, ""],
        Bool[Array, ""],
        Bool[Array, ""],
    ]:
        del key  # the deck was shuffled at reset; a step is deterministic
        step = inner.step
        # Before this step's deal the hand holds ``step + 1`` cards; popgym scores only once
        # the hand holds at least k of them, against ``hand[-k]``.
        target = step + 1 - self.k
        scored = target >= 0
        recalled = inner.cards[jnp.maximum(target, 0)]
        correct = discrete_action(action) == _cards.suit(recalled)
        scale = 1.0 / (self.num_cards - self.k)
        reward = jnp.where(scored, jnp.where(correct, scale, -scale), 0.0)
        # popgym terminates on the step that deals the last card of the deck.
        terminated = step == self.num_cards - 2
        new = RepeatPreviousState(inner.cards, step + 1)
        return self._obs(inner.cards[step + 1]), new, reward, terminated, jnp.asarray(False)


register_task(
    "RepeatPrevious",
    RepeatPrevious,
    "recall the suit of the card seen k-1 steps ago (suit one-hot obs)",
)
