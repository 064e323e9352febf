"""Name → builder registries: how ``--cell`` and ``--estimator`` (and config files, and the
benchmarks) turn a name into an object.

Every name the command line accepts is an entry here; nothing else in the application
compares cell or estimator names. A researcher adds their own in one of two ways:

- **by import path**, with no registration: ``rtrrl train --cell mypkg.cells:TanhRNN
  --estimator mypkg.est:MyEstimator``. The module must be importable (installed, or on
  ``PYTHONPATH``). A cell class is built as ``TanhRNN(input_size, hidden_size, key=key)``
  and an estimator class as ``MyEstimator()``; a function in their place is called with the
  same arguments. Run folders record the path, so ``--resume`` and ``rtrrl eval`` rebuild
  the same objects;
- **by name**, from Python: ``CELLS.register("tanh", builder)`` with
  ``builder(part: CellPart, input_size: int, *, key) -> AbstractCell`` (or
  ``ESTIMATORS.register("mine", lambda part: MyEstimator())``), then
  ``rtrrl.app.cli.main(["train", "--cell", "tanh"])``.
"""

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..cells import CTRNN, GRU, LRU, LSTM, NCP, AbstractCell, Identity, RandomSparse
from ..estimators import (
    RFLO,
    RTRL,
    UORO,
    AbstractGradientEstimator,
    LocalMSE,
    SnAp1,
    TruncatedBPTT,
)

_Builder = TypeVar("_Builder", bound=Callable[..., Any])


class Registry(Generic[_Builder]):
    """Builders of one kind of object (``"cell"``, ``"estimator"``), by name.

    ``resolve(name)`` returns the builder of a registered name, or of an import path
    ``module:Name`` (see the module docstring); every failure is a `ValueError` that names
    the flag and what to write instead.
    """

    def __init__(self, kind: str, base: type, from_class: Callable[[Callable[..., Any]], _Builder]):
        self.kind = kind
        self.base = base
        self._from_class = from_class
        self._builders: dict[str, _Builder] = {}

    def register(self, name: str, builder: _Builder) -> _Builder:
        """Make `name` build with `builder` (replacing an earlier entry of that name)."""
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"A {self.kind} name must be a non-empty string without ':'.")
        self._builders[name] = builder
        return builder

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._builders)

    def resolve(self, name: str) -> _Builder:
        """The builder of `name` (a registered name or ``module:Name``)."""
        if ":" in name:
            return self._import(name)
        if name not in self._builders:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"Unknown {self.kind} {name!r} (--{self.kind}): use one of "
                f"{', '.join(self.names())}, or an import path module:Name.{hint}"
            )
        return self._builders[name]

    def _import(self, path: str) -> _Builder:
        module_name, _, attribute = path.partition(":")
        flag = f"--{self.kind} {path}"
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ValueError(
                f"{flag}: cannot import {module_name!r} ({error}). Install it or add its "
                "folder to PYTHONPATH."
            ) from None
        target = getattr(module, attribute, None)
        if target is None:
            raise ValueError(f"{flag}: module {module_name!r} has no {attribute!r}.")
        if inspect.isclass(target) and not issubclass(target, self.base):
            raise ValueError(f"{flag}: {attribute} is not a subclass of {self.base.__name__}.")
        if callable(target):
            return self._from_class(target)
        raise ValueError(f"{flag}: {attribute} is neither a class nor a function.")


# ---------------------------------------------------------------------------------- cells


def _cell_from_class(cls: Callable[..., AbstractCell]) -> Callable[..., AbstractCell]:
    def build(part, input_size: int, *, key) -> AbstractCell:
        cell = cls(input_size, part.hidden_size, key=key)
        if not isinstance(cell, AbstractCell):
            raise ValueError(f"--cell {part.name}: it built a {type(cell).__name__}, not a cell.")
        return cell

    return build


def _ctrnn(part, input_size: int, *, key) -> AbstractCell:
    wiring = None
    if part.wiring == "random":
        wiring = RandomSparse(part.density)
    elif part.wiring == "ncp":
        if part.motor_neurons >= part.hidden_size:
            raise ValueError(
                f"`motor_neurons` (--motor-neurons) must be < hidden_size ({part.hidden_size}), "
                f"got {part.motor_neurons}."
            )
        wiring = NCP(part.motor_neurons, density=part.density)
    return CTRNN(input_size, part.hidden_size, key=key, dt=part.dt, wiring=wiring)


CELLS: Registry[Callable[..., AbstractCell]] = Registry("cell", AbstractCell, _cell_from_class)
"""Cells by name: ``builder(part: CellPart, input_size, *, key) -> AbstractCell``."""
CELLS.register("ctrnn", _ctrnn)
CELLS.register("lru", _cell_from_class(LRU))
CELLS.register("lstm", _cell_from_class(LSTM))
CELLS.register("gru", _cell_from_class(GRU))
CELLS.register("linear", lambda part, input_size, *, key: Identity(input_size))

# ----------------------------------------------------------------------------- estimators


def _estimator_from_class(
    cls: Callable[[], AbstractGradientEstimator],
) -> Callable[..., AbstractGradientEstimator]:
    def build(part) -> AbstractGradientEstimator:
        estimator = cls()
        if not isinstance(estimator, AbstractGradientEstimator):
            raise ValueError(
                f"--estimator {part.name}: it built a {type(estimator).__name__}, not an "
                "AbstractGradientEstimator."
            )
        return estimator

    return build


ESTIMATORS: Registry[Callable[..., AbstractGradientEstimator]] = Registry(
    "estimator", AbstractGradientEstimator, _estimator_from_class
)
"""Estimators by name: ``builder(part: EstimatorPart) -> AbstractGradientEstimator``."""
ESTIMATORS.register("rflo", lambda part: RFLO())
ESTIMATORS.register("rtrl", lambda part: RTRL())
ESTIMATORS.register("local-mse", lambda part: LocalMSE())
ESTIMATORS.register("tbptt", lambda part: TruncatedBPTT(part.window))
ESTIMATORS.register("snap1", lambda part: SnAp1())
ESTIMATORS.register("uoro", lambda part: UORO())
