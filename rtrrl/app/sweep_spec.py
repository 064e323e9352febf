"""The sweep file of ``rtrrl sweep --config sweep.yaml``: base options and a grid or a sample.

A sweep file holds `TrainConfig` options under their config-file names (as in a ``--config``
file of ``rtrrl train``), which every configuration shares, and one of

- ``grid:`` a list of values per option; the configurations are their Cartesian product, the
  last option varying fastest::

      grid:
        lr_cell: [1e-4, 1e-3]
        lambda_cell: [0.9, 0.99]

- ``random:`` ``samples`` draws (from ``seed``, default 0) of each option, from
  ``{uniform: [low, high]}``, ``{log_uniform: [low, high]}`` (``exp`` of a uniform draw of the
  logarithm: step sizes) or a list of choices::

      random:
        samples: 8
        seed: 0
        lr_cell: {log_uniform: [1e-4, 1e-2]}
        cell: [ctrnn, lru]
"""

import dataclasses
import difflib
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .config import TrainConfig, option_name, option_value
from .options import yaml_value

CONTINUOUS = (
    "gamma",
    "lambda_actor",
    "lambda_critic",
    "lambda_cell",
    "lr_actor",
    "lr_critic",
    "lr_cell",
    "eta_actor",
    "eta_critic",
    "eta_entropy",
)
"""RTRRL options that a sweep traces (one compiled program serves all their values); every
other swept option is structural: one program per value."""

_NOT_SWEPT = ("out", "seed", "seeds")  # the sweep's folder and its seeds are shared
# Set once for the sweep's process, before JAX starts (`rtrrl.app.cpu_threads`, `cpu_codegen`).
_PROCESS_WIDE = ("cpu_threads", "fast_cpu_codegen")
_KINDS = ("grid", "random")
_DISTRIBUTIONS = ("uniform", "log_uniform")


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file: ``base`` options and the ``configurations`` (each a mapping of the
    swept options to values, in order), with the ``kind`` and ``section`` they came from."""

    base: dict[str, Any]
    kind: str
    section: dict[str, Any]
    configurations: tuple[dict[str, Any], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The swept options."""
        return tuple(self.configurations[0]) if self.configurations else ()

    def train_config(self, k: int, **changes: Any) -> TrainConfig:
        """The `TrainConfig` of configuration `k`."""
        return TrainConfig(**(self.base | self.configurations[k] | changes))

    def continuous(self, config: TrainConfig) -> tuple[str, ...]:
        """The swept options that are traced for `config`'s learner."""
        return tuple(n for n in self.names if config.algo == "rtrrl" and n in CONTINUOUS)

    def to_json(self) -> dict[str, Any]:
        """What ``sweep.json`` records (and a resume reads back)."""
        base = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.base.items()}
        base = {k: (list(v) if isinstance(v, tuple) else v) for k, v in base.items()}
        return {"base": base, self.kind: self.section}


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (YAML); every error is a `ValueError` naming the key."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Sweep file {path} does not exist or is not a file: give a .yaml file.")
    try:
        data = yaml_value(path.read_text())
    except yaml.YAMLError as error:
        reason = str(error).replace("\n", " ")
        raise ValueError(f"Sweep file {path} could not be parsed: {reason}") from None
    return sweep_spec(data, f"Sweep file {path}")


def sweep_spec(data: Any, where: str = "sweep") -> SweepSpec:
    """Check the mapping of a sweep file (or of ``sweep.json``'s record, or the argument of
    `rtrrl.sweep`) and expand its configurations."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} must hold a mapping of option names to values.")
    data = dict(data)
    if "base" in data and isinstance(data["base"], dict):  # sweep.json's layout
        data = data.pop("base") | data
    kinds = [kind for kind in _KINDS if kind in data]
    if len(kinds) != 1:
        raise ValueError(
            f"{where}: give exactly one of `grid:` (lists of values) or `random:` (samples), "
            f"got {', '.join(kinds) or 'neither'}."
        )
    kind = kinds[0]
    section = data.pop(kind)
    if not isinstance(section, dict) or not section:
        raise ValueError(f"{where}: `{kind}:` must map option names to values.")
    base = {option_name(k, where): option_value(k, v, where) for k, v in data.items()}
    configurations = _grid(section, where) if kind == "grid" else _random(section, where)
    spec = SweepSpec(base, kind, _plain(section), tuple(configurations))
    for k in range(len(configurations)):
        try:
            spec.train_config(k)
        except ValueError as error:
            values = ", ".join(f"{n}={v!r}" for n, v in configurations[k].items())
            raise ValueError(f"{where}: configuration {k} ({values}): {error}") from None
    return spec


def _swept_name(key: Any, where: str, kind: str) -> str:
    name = option_name(key, f"{where}, `{kind}:`")
    if name in _NOT_SWEPT:
        raise ValueError(
            f"{where}, `{kind}:`: {key!r} cannot be swept (the sweep's folder and seeds are "
            f"shared): set it next to `{kind}:`, outside it."
        )
    if name in _PROCESS_WIDE:
        raise ValueError(
            f"{where}, `{kind}:`: {key!r} cannot be swept (it is set once for the sweep's "
            f"process, before JAX starts): set it next to `{kind}:`, outside it."
        )
    return name


def _grid(section: dict, where: str) -> list[dict[str, Any]]:
    names, lists = [], []
    for key, values in section.items():
        name = _swept_name(key, where, "grid")
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"{where}, `grid:`: {key!r} must be a non-empty list of values, e.g. "
                f"`{key}: [0.001, 0.01]`, got {values!r}."
            )
        names.append(name)
        lists.append([option_value(key, v, f"{where}, `grid:`") for v in values])
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*lists)]


def _random(section: dict, where: str) -> list[dict[str, Any]]:
    section = dict(section)
    samples, seed = section.pop("samples", None), section.pop("seed", 0)
    here = f"{where}, `random:`"
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"{here}: `samples` must be an integer >= 1 (the draws), got {samples!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{here}: `seed` must be an integer >= 0, got {seed!r}.")
    if not section:
        raise ValueError(f"{here}: name at least one option to draw.")
    rng = np.random.default_rng(seed)
    columns = {}
    for key, law in section.items():
        name = _swept_name(key, where, "random")
        columns[name] = [option_value(key, v, here) for v in _draws(key, law, samples, rng, here)]
    return [{name: column[i] for name, column in columns.items()} for i in range(samples)]


def _draws(key: Any, law: Any, samples: int, rng: np.random.Generator, here: str) -> list:
    """`samples` draws of one option: a list is a choice, a mapping a distribution."""
    if isinstance(law, list) and law:
        return [law[int(i)] for i in rng.integers(len(law), size=samples)]
    if isinstance(law, dict) and len(law) == 1:
        ((kind, bounds),) = law.items()
        if kind not in _DISTRIBUTIONS:
            close = difflib.get_close_matches(str(kind), _DISTRIBUTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{here}: {key!r} has unknown distribution {kind!r}{hint}; use uniform or "
                "log_uniform."
            )
        ok = isinstance(bounds, list) and len(bounds) == 2
        ok = ok and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
        if not ok or not bounds[0] < bounds[1] or (kind == "log_uniform" and bounds[0] <= 0):
            raise ValueError(
                f"{here}: {key!r}: {kind} needs [low, high] with low < high"
                + (" and low > 0" if kind == "log_uniform" else "")
                + f", got {bounds!r}."
            )
        low, high = (math.log(b) if kind == "log_uniform" else float(b) for b in bounds)
        draws = rng.uniform(low, high, size=samples)
        return [float(math.exp(d) if kind == "log_uniform" else d) for d in draws]
    raise ValueError(
        f"{here}: {key!r} must be a list of choices or one of {{uniform: [low, high]}}, "
        f"{{log_uniform: [low, high]}}, got {law!r}."
    )


def _plain(section: dict) -> dict:
    """`section` as JSON holds it (a round trip, so that a resume compares equal values)."""
    return json.loads(json.dumps(section, default=str))
