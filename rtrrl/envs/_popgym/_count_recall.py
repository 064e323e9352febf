"""POPGym CountRecall: say how often the queried kind of card has been dealt so far."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment
from .._spaces import Discrete
from . import _cards
from ._common import difficulty_config, discrete_action, one_hot_concat, popgym_id, register_task

# difficulty -> (number of 52-card decks, what is counted), as in popgym.envs.count_recall.
_CONFIG = {"Easy": (1, "colors"), "Medium": (2, "suits"), "Hard": (4, "ranks")}
_KINDS = {
    "colors": (_cards.color, _cards.NUM_COLORS),
    "suits": (_cards.suit, _cards.NUM_SUITS),
    "ranks": (_cards.rank, _cards.NUM_RANKS),
}


class CountRecallState(eqx.Module):
    """One episode of `CountRecall`.

    - ``values``: the shuffled value deck (card ids) in dealing order.
    - ``queries``: the shuffled, independent query deck in dealing order.
    - ``counts``: how many dealt value cards of each kind have been shown so far.
    - ``step``: steps taken; ``values[step]`` and ``queries[step]`` are the latest shown.
    """

    values: Int[Array, " cards"]
    queries: Int[Array, " cards"]
    counts: Int[Array, " kinds"]
    step: Int[Array, ""]


class CountRecall(AbstractEpisodicEnvironment):
    """JAX port of POPGym's ``CountRecall`` (Morad et al., ICLR 2023; ``popgym`` 1.0.7).

    Two independently shuffled decks of ``N = 52 * num_decks`` cards each are dealt one card
    per step: a *value* card and a *query* card, both shown by their kind (colour, suit or
    rank, depending on the difficulty; ``K`` kinds). At the next step the agent must answer
    how many value cards of the queried kind it has been shown so far, including the value
    card shown together with the query.

    - Observation: ``(value kind, query kind)``, each one-hot, size ``2 K``.
    - Action: ``Discrete(N / K + 1)``, a count (every kind appears ``N / K`` times).
    - Reward: ``+1/(N - 1)`` for the right count, ``-1/(N - 1)`` otherwise, at every step,
      so returns lie in ``[-1, 1]``.
    - Episode: ``o_0`` is the first pair; the episode *terminates* after ``N - 1`` steps,
      when the decks are empty (no time limit).

    Difficulties (decks, kind): Easy (1, colours; K = 2), Medium (2, suits; K = 4),
    Hard (4, ranks; K = 13).
    """

    difficulty: str = eqx.field(static=True)
    num_decks: int = eqx.field(static=True)
    deck_type: str = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.num_decks, self.deck_type = difficulty_config("CountRecall", difficulty, _CONFIG)

    @property
    def name(self) -> str:
        return popgym_id("CountRecall", self.difficulty)

    @property
    def num_kinds(self) -> int:
        return _KINDS[self.deck_type][1]

    @property
    def num_cards(self) -> int:
        return _cards.DECK_SIZE * self.num_decks

    @property
    def max_count(self) -> int:
        return self.num_cards // self.num_kinds

    @property
    def observation_size(self) -> int:
        return 2 * self.num_kinds

    @property
    def action_space(self) -> Discrete:
        return Discrete(self.max_count + 1)

    def _kind(self, card: Int[Array, ""]) -> Int[Array, ""]:
        return _KINDS[self.deck_type][0](card)

    def _obs(self, value: Int[Array, ""], query: Int[Array, ""]) -> Float[Array, " obs"]:
        kinds = jnp.stack([self._kind(value), self._kind(query)])
        return one_hot_concat(kinds, [self.num_kinds, self.num_kinds])

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, " obs"], CountRecallState]:
        key_values, key_queries = jax.random.split(key)
        values = _cards.shuffled_deck(key_values, self.num_decks)
        queries = _cards.shuffled_deck(key_queries, self.num_decks)
        counts = jax.nn.one_hot(self._kind(values[0]), self.num_kinds, dtype=jnp.int32)
        state = CountRecallState(values, queries, counts, jnp.zeros((), jnp.int32))
        return self._obs(values[0], queries[0]), state

    def step_episode(
        self, key: PRNGKey, inner: CountRecallState, action: Int[ArrayLike, ""]
    ) -> tuple[
        Float[Array, " obs"], CountRecallState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]
    ]:
        del key  # the decks were shuffled at reset; a step is deterministic
        step = inner.step
        # The answer is the count *before* this step's deal: it covers the value cards shown
        # up to and including the one shown with the query.
        answer = inner.counts[self._kind(inner.queries[step])]
        correct = discrete_action(action) == answer
        scale = 1.0 / (self.num_cards - 1)
        reward = jnp.where(correct, scale, -scale)
        value, query = inner.values[step + 1], inner.queries[step + 1]
        counts = inner.counts + jax.nn.one_hot(self._kind(value), self.num_kinds, dtype=jnp.int32)
        # popgym terminates on the step that deals the last card of the decks.
        terminated = step == self.num_cards - 2
        new = CountRecallState(inner.values, inner.queries, counts, step + 1)
        return self._obs(value, query), new, reward, terminated, jnp.asarray(False)


register_task(
    "CountRecall",
    CountRecall,
    "count how often the queried card kind was dealt ((value, query) one-hot obs)",
)
