"""Recurrent cells: `CTRNN`, `LRU` and wiring masks."""

from ._abstract import AbstractCell as AbstractCell
