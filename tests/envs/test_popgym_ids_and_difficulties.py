"""Every POPGym port: registered under popgym's id for each difficulty, and a clear error for a
difficulty popgym does not have (``_popgym/_common.py``)."""

import pytest

import rtrrl.envs._popgym  # noqa: F401  (registers the ports)
from rtrrl.envs import names
from rtrrl.envs._popgym._autoencode import Autoencode
from rtrrl.envs._popgym._battleship import Battleship
from rtrrl.envs._popgym._cartpole import (
    NoisyPositionOnlyCartPole,
    PositionOnlyCartPole,
    VelocityOnlyCartPole,
)
from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id
from rtrrl.envs._popgym._concentration import Concentration
from rtrrl.envs._popgym._count_recall import CountRecall
from rtrrl.envs._popgym._higher_lower import HigherLower
from rtrrl.envs._popgym._minesweeper import MineSweeper
from rtrrl.envs._popgym._multiarmed_bandit import MultiarmedBandit
from rtrrl.envs._popgym._pendulum import NoisyPositionOnlyPendulum, PositionOnlyPendulum
from rtrrl.envs._popgym._repeat_first import RepeatFirst
from rtrrl.envs._popgym._repeat_previous import RepeatPrevious

# Task as spelt in popgym's ids (``VelocityOnlyCartpole`` with a lower-case "p") -> port.
_PORTS = {
    "RepeatPrevious": RepeatPrevious,
    "RepeatFirst": RepeatFirst,
    "CountRecall": CountRecall,
    "Autoencode": Autoencode,
    "MultiarmedBandit": MultiarmedBandit,
    "HigherLower": HigherLower,
    "Concentration": Concentration,
    "Battleship": Battleship,
    "MineSweeper": MineSweeper,
    "PositionOnlyCartPole": PositionOnlyCartPole,
    "VelocityOnlyCartpole": VelocityOnlyCartPole,
    "NoisyPositionOnlyCartPole": NoisyPositionOnlyCartPole,
    "PositionOnlyPendulum": PositionOnlyPendulum,
    "NoisyPositionOnlyPendulum": NoisyPositionOnlyPendulum,
}


def test_every_port_id_is_registered():
    registered = set(names("popgym"))
    for task, port in _PORTS.items():
        for difficulty in DIFFICULTIES:
            assert popgym_id(task, difficulty) in registered
            assert port(difficulty).name == popgym_id(task, difficulty)


@pytest.mark.parametrize(("task", "port"), list(_PORTS.items()), ids=list(_PORTS))
def test_unknown_difficulty_is_a_clear_error(task, port):
    with pytest.raises(ValueError, match=f"{task}: unknown difficulty 'Expert'.*Easy"):
        port("Expert")
