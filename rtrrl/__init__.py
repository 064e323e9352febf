"""rtrrl: online recurrent reinforcement learning in JAX (Lemmel & Grosu, AAAI 2025).

Namespaces: `rtrrl.cells`, `rtrrl.estimators`, `rtrrl.heads`, `rtrrl.traces`, `rtrrl.agent`
(reward and observation normalisation), `rtrrl.algorithms`, `rtrrl.envs`, `rtrrl.presets`,
`rtrrl.prng`. The most used names are re-exported here. `rtrrl.testing` (checks of an
estimator against backpropagation through time, for your own test suite) is imported on its
own: ``import rtrrl.testing``.

``RTRRL_RUNTIME_CHECKS=1`` in the environment before ``import rtrrl`` turns on jaxtyping +
beartype checks of the shapes, dtypes and types of every rtrrl function (needs
``pip install 'rtrrl[checks]'``); see `rtrrl.runtime_checks_enabled`.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _runtime_checks

if TYPE_CHECKING:
    from .app.sweep import SweepOutcome

if _runtime_checks.requested():
    # Before the submodules below are imported: the hook decorates them as they load.
    _runtime_checks.install()

from . import (
    agent as agent,
    algorithms as algorithms,
    cells as cells,
    envs as envs,
    estimators as estimators,
    heads as heads,
    presets as presets,
    prng as prng,
    traces as traces,
)
from .algorithms import PPO as PPO, RTRRL as RTRRL, AbstractAlgorithm as AbstractAlgorithm
from .online import fit_sequence as fit_sequence
from .training import LoopConfig as LoopConfig, TrainResult as TrainResult, train as train

__version__ = "0.1.0"


def sweep(
    spec: "str | os.PathLike[str] | Mapping[str, Any] | None",
    *,
    out: "str | os.PathLike[str] | None" = None,
    resume: "str | os.PathLike[str] | None" = None,
    progress: bool = True,
) -> "SweepOutcome":
    """Run a hyperparameter sweep into a sweep folder, as ``rtrrl sweep`` does.

    `spec` is a sweep file's path or its mapping: `TrainConfig` options (as in a config file)
    and a ``grid:`` (lists of values: their Cartesian product) or ``random:`` section
    (``samples`` draws from ``seed``; ``{log_uniform: [low, high]}``, ``{uniform: [...]}`` or a
    list of choices per option). Continuous RTRRL options (step sizes, λ, γ, η) are traced:
    one compiled program trains every configuration that differs only in them, and all seeds.
    Returns a `rtrrl.app.sweep.SweepOutcome` (one `TrainResult` per configuration); see
    `rtrrl.app.sweep.run_sweep` for `out` and `resume`.
    """
    from .app.sweep import run_sweep

    def path(value):
        return None if value is None else Path(value)

    if spec is not None and not isinstance(spec, Mapping):
        spec = Path(spec)
    return run_sweep(spec, out=path(out), resume=path(resume), progress=progress)


def runtime_checks_enabled() -> bool:
    """Whether this process checks rtrrl's types at runtime (``RTRRL_RUNTIME_CHECKS`` was set
    when rtrrl was imported): every rtrrl function and module then raises on an argument of
    the wrong shape, dtype or type (jaxtyping + beartype)."""
    return _RUNTIME_CHECKS


_RUNTIME_CHECKS = _runtime_checks.requested()
