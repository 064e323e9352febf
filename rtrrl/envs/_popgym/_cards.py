"""Playing cards as POPGym's `popgym.core.deck.Deck` numbers them, for the card-game ports.

A deck of ``num_decks`` standard decks holds ``52 * num_decks`` cards with ids
``0 .. 52 * num_decks - 1``. POPGym lays its attribute tables out so that, for card ``c``,

- suit  ``c % 4``   (4 suits),
- rank  ``(c // 4) % 13``  (ace, 2, ..., king; 13 ranks),
- colour ``c % 2``  (2 colours).

POPGym shuffles an index array and deals from its *end*; the ports store the deck directly in
dealing order (``cards[0]`` is the first card dealt), which is the reversed popgym array.
"""

import jax
import jax.numpy as jnp

from ..._types import Array, Int, PRNGKey

DECK_SIZE = 52
NUM_SUITS = 4
NUM_RANKS = 13
NUM_COLORS = 2


def suit(card: Int[Array, "*shape"]) -> Int[Array, "*shape"]:
    """The suit index of each card id (popgym's ``Deck.suits_idx``)."""
    return card % NUM_SUITS


def rank(card: Int[Array, "*shape"]) -> Int[Array, "*shape"]:
    """The rank index of each card id, 0 = ace ... 12 = king (popgym's ``Deck.ranks_idx``)."""
    return (card // NUM_SUITS) % NUM_RANKS


def color(card: Int[Array, "*shape"]) -> Int[Array, "*shape"]:
    """The colour index of each card id (popgym's ``Deck.colors_idx``)."""
    return card % NUM_COLORS


def shuffled_deck(key: PRNGKey, num_decks: int) -> Int[Array, " cards"]:
    """A uniformly shuffled deck of ``52 * num_decks`` card ids (int32), in dealing order."""
    # int32 whatever the x64 setting, so that state dtypes never depend on it.
    return jax.random.permutation(key, DECK_SIZE * num_decks).astype(jnp.int32)
