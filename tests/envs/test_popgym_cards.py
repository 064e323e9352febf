"""The card-game ports number their cards as popgym's `Deck` does (``_popgym/_cards.py``)."""

import jax.numpy as jnp
import numpy as np
import pytest
from popgym.core.deck import Deck

from rtrrl.envs._popgym import _cards


@pytest.mark.parametrize("num_decks", [1, 2, 3, 4, 8])
def test_card_attributes_match_popgym_deck(num_decks):
    deck = Deck(num_decks)
    cards = jnp.arange(deck.num_cards, dtype=jnp.int32)
    np.testing.assert_array_equal(_cards.suit(cards), deck.suits_idx)
    np.testing.assert_array_equal(_cards.rank(cards), deck.ranks_idx)
    np.testing.assert_array_equal(_cards.color(cards), deck.colors_idx)
