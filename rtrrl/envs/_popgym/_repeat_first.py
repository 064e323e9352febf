"""POPGym RepeatFirst: keep naming the suit of the first card of the episode."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment
from .._spaces import Discrete
from . import _cards
from ._common import difficulty_config, discrete_action, one_hot_concat, popgym_id, register_task

# difficulty -> number of 52-card decks, as in popgym.envs.repeat_first.
_CONFIG = {"Easy": 1, "Medium": 8, "Hard": 16}


class RepeatFirstState(eqx.Module):
    """One episode of `RepeatFirst`.

    - ``cards``: the shuffled card ids in dealing order; ``cards[0]`` is the card to repeat.
    - ``step``: steps taken in this episode; ``cards[step]`` is the latest card shown.
    """

    cards: Int[Array, " cards"]
    step: Int[Array, ""]


class RepeatFirst(AbstractEpisodicEnvironment):
    """JAX port of POPGym's ``RepeatFirst`` (Morad et al., ICLR 2023; ``popgym`` 1.0.7).

    A shuffled deck of ``N = 52 * num_decks`` cards is dealt one card per step. At every step
    the agent must answer with the suit of the *first* card of the episode, which is only
    shown as the first observation (popgym's code gives no separate "first card" flag).

    - Observation: the suit of the latest card, one-hot, size 4.
    - Action: ``Discrete(4)``, a suit.
    - Reward: ``+1/(N - 1)`` for the first card's suit, ``-1/(N - 1)`` otherwise, at every
      step, so returns lie in ``[-1, 1]``.
    - Episode: ``o_0`` is the first card; the episode *terminates* after ``N - 1`` steps, when
      the deck is empty (no time limit).

    Difficulties (decks): Easy 1, Medium 8, Hard 16.
    """

    difficulty: str = eqx.field(static=True)
    num_decks: int = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.num_decks = difficulty_config("RepeatFirst", difficulty, _CONFIG)

    @property
    def name(self) -> str:
        return popgym_id("RepeatFirst", self.difficulty)

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

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, " obs"], RepeatFirstState]:
        cards = _cards.shuffled_deck(key, self.num_decks)
        return self._obs(cards[0]), RepeatFirstState(cards, jnp.zeros((), jnp.int32))

    def step_episode(
        self, key: PRNGKey, inner: RepeatFirstState, action: Int[ArrayLike, ""]
    ) -> tuple[
        Float[Array, " obs"], RepeatFirstState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]
    ]:
        del key  # the deck was shuffled at reset; a step is deterministic
        step = inner.step
        correct = discrete_action(action) == _cards.suit(inner.cards[0])
        scale = 1.0 / (self.num_cards - 1)
        reward = jnp.where(correct, scale, -scale)
        # popgym terminates on the step that deals the last card of the deck.
        terminated = step == self.num_cards - 2
        new = RepeatFirstState(inner.cards, step + 1)
        return self._obs(inner.cards[step + 1]), new, reward, terminated, jnp.asarray(False)


register_task(
    "RepeatFirst",
    RepeatFirst,
    "repeat the suit of the episode's first card (suit one-hot obs)",
)
