"""Shared pieces of the paper benchmarks (``paper.py``, ``memory_chain.py``, ``ablations.py``).

- `run_cell`: train one `TrainConfig` (all seeds vmapped in one compiled program) and return
  a JSON-ready record of every raw number;
- `ResultStore`: a JSON file of such records, rewritten atomically after every cell, so an
  interrupted sweep keeps what finished and a re-run skips the cells already done with the
  same configuration;
- `Cell` and `run_cells`: the sweep loop every script shares (skip finished cells, train,
  store, re-render the report, print one line per cell);
- `machine_info`, `stability`, `spread` and small Markdown helpers.

The scripts import this module as ``_experiments`` (Python puts the script's folder first on
``sys.path``); the smoke test puts ``benchmarks/`` on the path itself.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from rtrrl.app.config import TrainConfig, build_algorithm, build_env
from rtrrl.app.runs import write_atomic
from rtrrl.training import NonFiniteError, train

RESULTS = Path(__file__).resolve().parent / "results"

# The PPO baseline's settings, shared by every script (the paper's PPO baselines train with
# BPTT on several environments; these are the settings of tests/algorithms/test_ppo.py's slow test):
# 8 environments x 128-step segments (full BPTT over each segment), 4 epochs of 4 minibatches
# of 2 environments, Adam 1e-3, clip 0.2, GAE λ 0.95, entropy 0.01, value coefficient 0.5,
# global-norm clip 0.5, the same Meta-RL input and reward scaling as RTRRL.
PPO_OPTIONS: dict[str, Any] = dict(
    algo="ppo", num_envs=8, rollout_length=128, epochs=4, minibatches=4, lr=1e-3
)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: CPU count, platform, JAX version and devices, load."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "load_average": load,
        # Compiler options change speed and, through float32 rounding, results (docs/results.md,
        # "Throughput"): a number is only comparable with others made under the same flags.
        "xla_flags": os.environ.get("XLA_FLAGS") or None,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _clean(values: Any) -> Any:
    """NumPy arrays and scalars to nested lists of floats, NaN/inf to None (strict JSON)."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        value = float(array)
        return value if math.isfinite(value) else None
    return [_clean(v) for v in array]


def run_cell(config: TrainConfig, *, progress: bool = True) -> dict[str, Any]:
    """Train `config` with `rtrrl.train` and return every raw number as a JSON-ready dict.

    A run that diverges (`NonFiniteError`) is recorded with ``"error"`` set and no returns,
    so a sweep goes on and the table says what happened.

    Returns:
        ``config`` (the full `TrainConfig`), ``seeds``, ``steps`` (evals,), ``eval_returns``
        (evals, seeds; None after a seed stopped early), ``best_eval_return``, ``best_step``,
        ``final_eval_return``, ``stopped_early`` (seeds,), ``total_steps`` (per seed),
        ``run_seconds`` (compiled chunks), ``compile_seconds``, ``wall_seconds`` (everything,
        environment construction included), ``env_steps_per_second`` (all seeds, compile
        excluded), ``finished_at`` and ``load_average``.
    """
    start = time.perf_counter()
    record: dict[str, Any] = {"config": config.to_json()}
    try:
        env = build_env(config)
        result = train(build_algorithm(config, env), env, config.loop(), progress=progress)
    except NonFiniteError as error:
        record.update(error=str(error), wall_seconds=time.perf_counter() - start)
        return record
    record.update(
        seeds=list(result.seeds),
        steps=[int(s) for s in result.steps],
        eval_returns=_clean(result.eval_returns),
        best_eval_return=_clean(result.best_eval_return),
        best_step=[int(s) for s in result.best_step],
        final_eval_return=_clean(result.final_eval_return),
        stopped_early=[bool(s) for s in result.stopped_early],
        total_steps=int(result.total_steps),
        run_seconds=float(result.run_seconds),
        compile_seconds=float(result.compile_seconds),
        wall_seconds=time.perf_counter() - start,
        env_steps_per_second=_clean(result.env_steps_per_second),
        finished_at=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        load_average=machine_info()["load_average"],
    )
    return record


class ResultStore:
    """A JSON file ``{"meta": ..., "cells": {key: record}}`` rewritten after every cell.

    `done` says whether a cell already holds a finished record of the *same* configuration,
    so a continued sweep skips it (a changed budget or option runs the cell again).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data: dict[str, Any] = {"meta": {}, "cells": {}}
        if self.path.exists():
            self.data = json.loads(self.path.read_text())
            self.data.setdefault("meta", {})
            self.data.setdefault("cells", {})

    @property
    def cells(self) -> dict[str, dict[str, Any]]:
        return self.data["cells"]

    @property
    def meta(self) -> dict[str, Any]:
        return self.data["meta"]

    def done(self, key: str, config: TrainConfig) -> bool:
        record = self.cells.get(key)
        return record is not None and record.get("config") == config.to_json()

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.cells[key] = record
        self.save()

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.data, indent=1, allow_nan=False) + "\n")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One cell of a sweep: its key in the `ResultStore`, its configuration, the labels stored
    in its record (task, method, ...), and the paper's number to print beside ours."""

    key: str
    config: TrainConfig
    labels: dict[str, Any]
    paper: float | None = None


def check_choices(name: str, chosen: Sequence[Any], known: Sequence[Any]) -> None:
    """Exit with a clear message if `chosen` holds something not in `known`."""
    for item in chosen:
        if item not in known:
            raise SystemExit(f"Unknown {name} {item!r}; choose from {', '.join(map(str, known))}.")


def run_cells(
    store: ResultStore,
    cells: Sequence[Cell],
    *,
    report: Callable[[], None],
    force: bool = False,
    progress: bool = True,
    command: str = "",
) -> None:
    """Train every cell not already in `store` with the same configuration (all if `force`).

    After each cell the store is saved and `report()` re-renders the Markdown and PNG, so an
    interrupted sweep keeps what finished. The invocation (command, cells run and skipped,
    wall time, whether it finished) is recorded in ``store.meta["invocations"]``.
    """
    store.meta.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    store.meta["machine"] = machine_info()
    invocation = {
        "command": command,
        "cells_run": 0,
        "cells_skipped": 0,
        "wall_seconds": 0.0,
        "finished": False,
    }
    store.meta.setdefault("invocations", []).append(invocation)
    start = time.perf_counter()
    for index, cell in enumerate(cells, 1):
        tag = f"[{index}/{len(cells)}] {cell.key}"
        if not force and store.done(cell.key, cell.config):
            invocation["cells_skipped"] += 1
            print(f"{tag}: done already, skipped", flush=True)
            continue
        print(f"{tag}: {cell.config.steps:,} steps/seed × {cell.config.seeds} seeds", flush=True)
        record = run_cell(cell.config, progress=progress)
        record.update(cell.labels)
        invocation["cells_run"] += 1
        invocation["wall_seconds"] = time.perf_counter() - start
        store.meta["updated"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        store.put(cell.key, record)
        report()
        print(f"    {_outcome(record, cell.paper)}", flush=True)
    invocation["wall_seconds"] = time.perf_counter() - start
    invocation["finished"] = True
    store.save()
    report()
    print(f"Done in {duration(invocation['wall_seconds'])}.", flush=True)


def _outcome(record: dict[str, Any], paper: float | None) -> str:
    if "error" in record:
        return f"diverged: {record['error']}"
    best, std = spread(record["best_eval_return"])
    beside = f" (paper {fmt(paper)})" if paper is not None else ""
    return (
        f"best {fmt(best)} ± {fmt(std)}{beside}, final "
        f"{fmt(spread(record['final_eval_return'])[0])}, "
        f"{record['total_steps']:,} steps, {duration(record['wall_seconds'])}"
    )


def invocation_lines(meta: dict[str, Any]) -> list[str]:
    """One Markdown bullet per recorded invocation of a sweep script."""
    return [
        f"- Invocation `{run['command']}`: {run['cells_run']} cells run, "
        f"{run['cells_skipped']} skipped (already done), wall {duration(run['wall_seconds'])}"
        f"{'' if run.get('finished') else ' (interrupted or still running)'}."
        for run in meta.get("invocations", [])
    ]


def evaluations(record: dict[str, Any]) -> np.ndarray:
    """All recorded evaluation returns of a cell (every seed, every evaluation), flat."""
    table = np.asarray(record.get("eval_returns") or [], dtype=float)
    return table[np.isfinite(table)]


def stability(record: dict[str, Any], max_return: float | None) -> float | None:
    """Fraction of the recorded evaluations at >= 95 % of the best attainable return.

    Evaluations of a seed stop when it stops early (patience), so this is the fraction over
    the evaluations each seed actually ran. None when the task has no known maximum.
    """
    values = evaluations(record)
    if max_return is None or values.size == 0:
        return None
    threshold = 0.95 * max_return if max_return > 0 else max_return * 1.05
    return float(np.mean(values >= threshold))


def spread(values: Sequence[float | None]) -> tuple[float, float]:
    """``(median, std)`` over seeds, NaN-safe (std is the population std, ddof=0)."""
    array = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    if not np.isfinite(array).any():
        return math.nan, math.nan
    return float(np.nanmedian(array)), float(np.nanstd(array))


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for a table ('—' for missing)."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``12 s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def machine_line(info: dict[str, Any]) -> str:
    """One Markdown line naming the machine of `machine_info`."""
    return (
        f"{info.get('cpu_count')} CPU cores ({info.get('processor')}, {info.get('platform')}), "
        f"devices {', '.join(info.get('devices', []))}, JAX {info.get('jax')}, "
        f"{'float64' if info.get('x64') else 'float32'}, Python {info.get('python')}; "
        f"load average at start {info.get('load_average')} (the machine is shared)"
        + (f"; XLA_FLAGS `{info['xla_flags']}`" if info.get("xla_flags") else "")
    )


def write_report(out: Path, name: str, markdown: str, record: dict[str, Any]) -> None:
    """``out/<name>.md`` (`markdown`) and ``out/<name>.json`` (`record`), each written whole or
    not at all (a benchmark killed while writing leaves the previous report)."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / f"{name}.md", markdown if markdown.endswith("\n") else markdown + "\n")
    write_atomic(out / f"{name}.json", json.dumps(record, indent=1) + "\n")


def replace(config: TrainConfig, **changes: Any) -> TrainConfig:
    """`dataclasses.replace` for configs (a name the scripts read well)."""
    return dataclasses.replace(config, **changes)
