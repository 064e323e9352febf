"""POPGym HigherLower: guess whether the next card's rank is higher or lower."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment
from .._spaces import Discrete
from . import _cards
from ._common import difficulty_config, discrete_action, one_hot_concat, popgym_id, register_task

# difficulty -> number of 52-card decks, as in popgym.envs.higher_lower.
_CONFIG = {"Easy": 1, "Medium": 2, "Hard": 3}
# popgym reads action 0 as "higher"; any other action is "lower".
_HIGHER = 0


class HigherLowerState(eqx.Module):
    """One episode of `HigherLower`.

    - ``cards``: the shuffled card ids in dealing order.
    - ``step``: steps taken in this episode; ``cards[step]`` is the card face up.
    """

    cards: Int[Array, " cards"]
    step: Int[Array, ""]


class HigherLower(AbstractEpisodicEnvironment):
    """JAX port of POPGym's ``HigherLower`` (Morad et al., ICLR 2023; ``popgym`` 1.0.7).

    The cards of a shuffled deck of ``N = 52 * num_decks`` are turned one per step. Seeing
    the current card's rank, the agent bets whether the next card's rank is higher or lower;
    counting the cards already seen improves the odds.

    - Observation: the rank of the face-up card (ace = 0 ... king = 12), one-hot, size 13.
    - Action: ``Discrete(2)``: 0 = higher, 1 = lower.
    - Reward: ``+1/N`` for a right bet, ``-1/N`` for a wrong one, 0 when the ranks are equal,
      so returns lie in ``[-(N - 1)/N, (N - 1)/N]``.
    - Episode: ``o_0`` is the first card; the episode *terminates* after ``N - 1`` steps,
      when the deck is empty (no time limit).

    Difficulties (decks): Easy 1, Medium 2, Hard 3.
    """

    difficulty: str = eqx.field(static=True)
    num_decks: int = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.num_decks = difficulty_config("HigherLower", difficulty, _CONFIG)

    @property
    def name(self) -> str:
        return popgym_id("HigherLower", self.difficulty)

    @property
    def observation_size(self) -> int:
        return _cards.NUM_RANKS

    @property
    def action_space(self) -> Discrete:
        return Discrete(2)

    @property
    def num_cards(self) -> int:
        return _cards.DECK_SIZE * self.num_decks

    def _obs(self, card: Int[Array, ""]) -> Float[Array, " obs"]:
        return one_hot_concat(_cards.rank(card)[None], [_cards.NUM_RANKS])

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, " obs"], HigherLowerState]:
        cards = _cards.shuffled_deck(key, self.num_decks)
        return self._obs(cards[0]), HigherLowerState(cards, jnp.zeros((), jnp.int32))

    def step_episode(
        self, key: PRNGKey, inner: HigherLowerState, action: Int[ArrayLike, ""]
    ) -> tuple[
        Float[Array, " obs"], HigherLowerState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]
    ]:
        del key  # the deck was shuffled at reset; a step is deterministic
        step = inner.step
        current = _cards.rank(inner.cards[step])
        following = _cards.rank(inner.cards[step + 1])
        guessed_higher = discrete_action(action) == _HIGHER
        scale = 1.0 / self.num_cards
        right = jnp.where((following > current) == guessed_higher, scale, -scale)
        reward = jnp.where(following == current, 0.0, right)
        # popgym terminates on the step that turns the last card of the deck.
        terminated = step == self.num_cards - 2
        new = HigherLowerState(inner.cards, step + 1)
        return self._obs(inner.cards[step + 1]), new, reward, terminated, jnp.asarray(False)


register_task(
    "HigherLower",
    HigherLower,
    "bet whether the next card ranks higher or lower (rank one-hot obs)",
)
