"""Recurrent cells: `CTRNN`, `LRU`, `LSTM`, `GRU`, the `Identity` feature map, and CTRNN wirings."""

from ._abstract import AbstractCell as AbstractCell
from ._ctrnn import CTRNN as CTRNN
from ._gated import GRU as GRU, LSTM as LSTM
from ._identity import Identity as Identity
from ._lru import LRU as LRU
from ._wiring import (
    NCP as NCP,
    AbstractWiring as AbstractWiring,
    Dense as Dense,
    RandomSparse as RandomSparse,
)
