"""POPGym Autoencode: watch a deck's suits, then recite them in reverse order."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment
from .._spaces import Discrete
from . import _cards
from ._common import difficulty_config, discrete_action, one_hot_concat, popgym_id, register_task

# difficulty -> number of 52-card decks, as in popgym.envs.autoencode.
_CONFIG = {"Easy": 1, "Medium": 2, "Hard": 3}
# popgym's ``Mode`` values, which are what its observation shows.
_PLAY, _WATCH = 0, 1


class AutoencodeState(eqx.Module):
    """One episode of `Autoencode`.

    - ``cards``: the shuffled card ids in dealing order.
    - ``step``: steps taken in this episode. Steps ``0 .. N - 2`` deal (watch phase), steps
      ``N - 1 .. 2 N - 2`` recite (play phase).
    """

    cards: Int[Array, " cards"]
    step: Int[Array, ""]


class Autoencode(AbstractEpisodicEnvironment):
    """JAX port of POPGym's ``Autoencode`` (Morad et al., ICLR 2023; ``popgym`` 1.0.7).

    *Watch phase*: the ``N = 52 * num_decks`` cards of a shuffled deck are shown one per
    step (``o_0`` is the first). *Play phase*: the agent must then name their suits in
    reverse order, last card first.

    - Observation: ``(mode, suit)``, each one-hot, size ``2 + 4``. ``mode`` is 1 while cards
      remain to be dealt and 0 from the observation that shows the *last* card on (popgym
      switches mode when the deck empties). During the play phase popgym shows the suit of
      card id 0, i.e. suit 0, so the play observation is the constant ``(0, 0)``.
    - Action: ``Discrete(4)``, a suit (ignored during the watch phase).
    - Reward: 0 while watching; ``+1/N`` for each correctly recited suit, ``-1/N``
      otherwise, so returns lie in ``[-1, 1]``.
    - Episode: ``N - 1`` watch steps then ``N`` play steps; it *terminates* after
      ``2 N - 1`` steps, on the last recitation (no time limit).

    Difficulties (decks): Easy 1, Medium 2, Hard 3.
    """

    difficulty: str = eqx.field(static=True)
    num_decks: int = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.num_decks = difficulty_config("Autoencode", difficulty, _CONFIG)

    @property
    def name(self) -> str:
        return popgym_id("Autoencode", self.difficulty)

    @property
    def observation_size(self) -> int:
        return 2 + _cards.NUM_SUITS

    @property
    def action_space(self) -> Discrete:
        return Discrete(_cards.NUM_SUITS)

    @property
    def num_cards(self) -> int:
        return _cards.DECK_SIZE * self.num_decks

    def _obs(self, mode: Int[Array, ""], suit: Int[Array, ""]) -> Float[Array, " obs"]:
        return one_hot_concat(jnp.stack([mode, suit]), [2, _cards.NUM_SUITS])

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, " obs"], AutoencodeState]:
        cards = _cards.shuffled_deck(key, self.num_decks)
        obs = self._obs(jnp.asarray(_WATCH, jnp.int32), _cards.suit(cards[0]))
        return obs, AutoencodeState(cards, jnp.zeros((), jnp.int32))

    def step_episode(
        self, key: PRNGKey, inner: AutoencodeState, action: Int[ArrayLike, ""]
    ) -> tuple[
        Float[Array, " obs"], AutoencodeState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]
    ]:
        del key  # the deck was shuffled at reset; a step is deterministic
        n = self.num_cards
        step = inner.step
        watching = step < n - 1

        # Watch phase: deal card ``step + 1``; the mode flips to PLAY with the last card.
        dealt = inner.cards[jnp.minimum(step + 1, n - 1)]
        mode = jnp.where(step + 1 < n - 1, _WATCH, _PLAY).astype(jnp.int32)
        watch_obs = self._obs(mode, _cards.suit(dealt))

        # Play phase: recite the cards last-dealt first.
        recited = step - (n - 1)
        expected = inner.cards[jnp.clip(n - 1 - recited, 0, n - 1)]
        correct = discrete_action(action) == _cards.suit(expected)
        scale = 1.0 / n
        play_reward = jnp.where(correct, scale, -scale)
        zero = jnp.zeros((), jnp.int32)
        play_obs = self._obs(zero, zero)

        obs = jnp.where(watching, watch_obs, play_obs)
        reward = jnp.where(watching, 0.0, play_reward)
        terminated = step == 2 * n - 2
        new = AutoencodeState(inner.cards, step + 1)
        return obs, new, reward, terminated, jnp.asarray(False)


register_task(
    "Autoencode",
    Autoencode,
    "watch a deck's suits, then recite them in reverse ((mode, suit) one-hot obs)",
)
