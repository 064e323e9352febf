"""What the group-A POPGym ports share: popgym's card numbering, ids and difficulty errors."""

import jax.numpy as jnp
import numpy as np
import pytest
from popgym.core.deck import Deck

import rtrrl.envs._popgym  # noqa: F401  (registers the ports)
from rtrrl.envs import names
from rtrrl.envs._popgym import _cards
from rtrrl.envs._popgym._autoencode import Autoencode
from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id
from rtrrl.envs._popgym._concentration import Concentration
from rtrrl.envs._popgym._count_recall import CountRecall
from rtrrl.envs._popgym._higher_lower import HigherLower
from rtrrl.envs._popgym._multiarmed_bandit import MultiarmedBandit
from rtrrl.envs._popgym._repeat_first import RepeatFirst
from rtrrl.envs._popgym._repeat_previous import RepeatPrevious

_PORTS = {
    "RepeatPrevious": RepeatPrevious,
    "RepeatFirst": RepeatFirst,
    "CountRecall": CountRecall,
    "Autoencode": Autoencode,
    "MultiarmedBandit": MultiarmedBandit,
    "HigherLower": HigherLower,
    "Concentration": Concentration,
}


@pytest.mark.parametrize("num_decks", [1, 2, 3, 4, 8])
def test_card_attributes_match_popgym_deck(num_decks):
    deck = Deck(num_decks)
    cards = jnp.arange(deck.num_cards, dtype=jnp.int32)
    np.testing.assert_array_equal(_cards.suit(cards), deck.suits_idx)
    np.testing.assert_array_equal(_cards.rank(cards), deck.ranks_idx)
    np.testing.assert_array_equal(_cards.color(cards), deck.colors_idx)


def test_every_group_a_id_is_registered():
    registered = set(names("popgym"))
    for task, port in _PORTS.items():
        for difficulty in DIFFICULTIES:
            assert popgym_id(task, difficulty) in registered
            assert port(difficulty).name == popgym_id(task, difficulty)


@pytest.mark.parametrize("port", list(_PORTS.values()))
def test_unknown_difficulty_is_a_clear_error(port):
    with pytest.raises(ValueError, match="unknown difficulty 'Expert'.*Easy"):
        port("Expert")
