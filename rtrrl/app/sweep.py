"""Sweep folders: what ``rtrrl sweep`` (and `rtrrl.sweep`) writes, and how it resumes.

A sweep folder holds

- ``sweep.json``: the sweep as given (base options and its ``grid:`` or ``random:``), the
  configurations, their groups and run folders;
- ``runs/<index>-<values>/``: one run folder per configuration, with the files of an
  ``rtrrl train`` run (``config.json``, ``metrics.csv``, ``checkpoint.rtrrl``,
  ``summary.json``, ``learning_curve.png``), so ``rtrrl eval`` and ``rtrrl plot`` read it;
- ``group-<g>.rtrrl``: the checkpoint of all runs of structural group ``g`` (what a resume
  continues from);
- ``sweep.csv``, ``sweep.md``, ``sweep.png``: the table and figure of `rtrrl.app.sweep_report`.

Configurations that differ only in continuous options (`CONTINUOUS`) form one group: one
compiled program trains all of them and all seeds (`rtrrl.training.train_swept`). Every
other difference (cell, estimator, hidden size, environment, ...) starts a new group. Files
are written atomically, under the folder's lock.
"""

import dataclasses
import json
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..training import TrainProgress, TrainResult
from ..training._sweep import (
    SweptResult,
    configuration_progress,
    configuration_states,
    initial_states,
    train_swept,
)
from ._run_lock import run_folder_lock
from .checkpoint import load_checkpoint, save_checkpoint
from .config import build_algorithm, build_env
from .cpu_codegen import configure_cpu_codegen
from .cpu_threads import configure_cpu_threads
from .effective import EFFECTIVE_KEY, effective_settings
from .plotting import plot_runs, read_metrics
from .runs import (
    CONFIG_NAME,
    METRICS_NAME,
    PLOT_NAME,
    SUMMARY_NAME,
    metrics_text,
    summary,
    write_atomic,
)
from .sweep_report import csv_text, markdown_text, report_rows, write_sweep_plot
from .sweep_spec import SweepSpec, load_sweep_file, sweep_spec

SWEEP_NAME = "sweep.json"
TABLE_NAME = "sweep.csv"
MARKDOWN_NAME = "sweep.md"
FIGURE_NAME = "sweep.png"


@dataclasses.dataclass
class SweepOutcome:
    """What `run_sweep` returns: the folder, each configuration's values, run folder and
    `TrainResult`, the report's rows, and per group its configurations and the chunk
    programs it compiled (1 per group; 0 for a group a resume found finished)."""

    folder: Path
    configurations: list[dict[str, Any]]
    run_folders: list[Path]
    results: list[TrainResult]
    rows: list[dict[str, Any]]
    groups: list[list[int]]
    num_compilations: list[int]


def run_sweep(
    spec: SweepSpec | Mapping[str, Any] | str | Path | None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    stop_check: Callable[[], None] | None = None,
) -> SweepOutcome:
    """Run a sweep into a sweep folder (see the module docstring); resumes an unfinished one.

    Arguments:
        spec: a sweep file's path, its mapping (base options and ``grid:`` or ``random:``),
            or a parsed `SweepSpec`; ``None`` with `resume`.
        out: the sweep folder (default: the spec's ``out``, else ``runs/sweep-<time>``). A
            folder holding this same sweep is resumed; one holding another is refused.
        resume: continue the sweep saved in this folder (its ``sweep.json`` gives the spec).
        stop_check: as for `rtrrl.training.train` (``rtrrl sweep`` passes one that raises the
            Ctrl-C, SIGTERM or SIGHUP it has received, where nothing is in flight).
    """
    if resume is not None:
        folder = Path(resume)
        if not (folder / SWEEP_NAME).is_file():
            raise FileNotFoundError(f"No {SWEEP_NAME} in {folder}: nothing to resume.")
        saved = json.loads((folder / SWEEP_NAME).read_text())
        spec = sweep_spec(saved["spec"], f"{folder / SWEEP_NAME}")
    elif spec is None:
        raise ValueError("rtrrl.sweep: give a sweep (a file or its mapping), or `resume`.")
    elif isinstance(spec, str | Path):
        spec = load_sweep_file(spec)
    elif not isinstance(spec, SweepSpec):
        spec = sweep_spec(dict(spec), "rtrrl.sweep")
    if resume is None:
        default = spec.base.get("out") or Path("runs") / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
        folder = Path(out) if out is not None else Path(default)
    folder.mkdir(parents=True, exist_ok=True)
    with run_folder_lock(folder):
        return _run_locked(spec, folder, progress, log, stop_check)


def _folder_name(k: int, values: dict[str, Any]) -> str:
    text = "-".join(f"{name}={value}" for name, value in values.items())
    return f"{k:03d}-" + re.sub(r"[^A-Za-z0-9_.=+-]", "_", text)


def _groups(spec: SweepSpec) -> list[list[int]]:
    """Configurations grouped by their structural (not traced) values, in order."""
    groups: dict[str, list[int]] = {}
    for k, values in enumerate(spec.configurations):
        traced = spec.continuous(spec.train_config(k))
        key = json.dumps({n: v for n, v in values.items() if n not in traced}, default=str)
        groups.setdefault(key, []).append(k)
    return list(groups.values())


def _record(spec: SweepSpec, folders: list[str], groups: list[list[int]]) -> dict[str, Any]:
    return {
        "spec": spec.to_json(),
        "configurations": [dict(c) for c in spec.configurations],
        "runs": folders,
        "groups": groups,
    }


def _run_locked(
    spec: SweepSpec, folder: Path, progress: bool, log, stop_check: Callable[[], None] | None
) -> SweepOutcome:
    folders = [f"runs/{_folder_name(k, c)}" for k, c in enumerate(spec.configurations)]
    groups = _groups(spec)
    record = _record(spec, folders, groups)
    record_path = folder / SWEEP_NAME
    if record_path.exists():
        saved = json.loads(record_path.read_text())
        if saved != json.loads(json.dumps(record)):
            raise ValueError(
                f"{folder} holds another sweep (its {SWEEP_NAME} differs from this one): "
                "choose a new folder with --out, or continue it with `rtrrl sweep --resume "
                f"{folder}`."
            )
        log(f"Continuing the sweep in {folder}.")
    elif any(folder.iterdir()) and not all(p.name.startswith(".") for p in folder.iterdir()):
        raise FileExistsError(
            f"{folder} is not empty and holds no sweep: choose a new or empty folder with --out."
        )
    write_atomic(record_path, json.dumps(record, indent=2) + "\n")
    base = spec.train_config(0)
    cpu_threads = configure_cpu_threads(base)
    configure_cpu_codegen(base)
    results: list[TrainResult | None] = [None] * len(spec.configurations)
    compilations = []
    for g, members in enumerate(groups):
        log(
            f"group {g + 1}/{len(groups)}: {len(members)} configuration(s) × {base.seeds} "
            "seed(s), one compiled program"
        )
        swept = _run_group(
            spec, folder, g, members, folders, cpu_threads, progress, log, stop_check
        )
        compilations.append(swept.num_compilations)
        for k, result in zip(members, swept.results, strict=True):
            results[k] = result
    done = [r for r in results if r is not None]
    rows = report_rows(
        spec.names,
        list(spec.configurations),
        folders,
        [r.final_eval_return for r in done],
        [r.best_eval_return for r in done],
    )
    _write_report(spec, folder, rows, groups, compilations, done)
    return SweepOutcome(
        folder,
        [dict(c) for c in spec.configurations],
        [folder / f for f in folders],
        done,
        rows,
        groups,
        compilations,
    )


def _run_group(
    spec: SweepSpec,
    folder: Path,
    g: int,
    members: list[int],
    folders: list[str],
    cpu_threads: str,
    progress: bool,
    log,
    stop_check: Callable[[], None] | None,
) -> SweptResult:
    """Train group `g` (configurations `members`) as one program, writing their run folders
    and the group's checkpoint; resumes from that checkpoint when there is one."""
    configs = [spec.train_config(k, out=folder / folders[k]) for k in members]
    first = configs[0]
    traced = spec.continuous(first)
    env = build_env(first)
    algorithm = build_algorithm(first, env)
    loop = first.loop()
    values = [{n: float(getattr(c, n)) for n in traced} for c in configs]
    checkpoint = folder / f"group-{g}.rtrrl"
    fingerprint = {"runs": [c.fingerprint() for c in configs]}
    for config in configs:
        saved = config.to_json() | {EFFECTIVE_KEY: effective_settings(config, env, cpu_threads)}
        write_atomic(Path(config.out or folder) / CONFIG_NAME, json.dumps(saved, indent=2) + "\n")
    resume = None
    if checkpoint.exists():
        like = initial_states(algorithm, env, loop, values)
        states, book, _ = load_checkpoint(checkpoint, like, fingerprint)
        resume = (states, book)
        log(f"Resuming group {g + 1} from step {book.steps_done:,} (evaluation {book.chunk}).")

    def write_runs(states, book: TrainProgress, *, checkpoints: bool) -> None:
        for i, config in enumerate(configs):
            run = Path(config.out or folder)
            own = configuration_progress(book, loop, i)
            write_atomic(run / METRICS_NAME, metrics_text(own.rows))
            if checkpoints:
                own_states = configuration_states(states, loop, i)
                save_checkpoint(run, own_states, own, config.fingerprint())

    def save(states, book: TrainProgress) -> None:
        save_checkpoint(checkpoint, states, book, fingerprint)
        write_runs(states, book, checkpoints=True)

    def on_chunk(states, book: TrainProgress) -> None:
        if book.chunk % first.checkpoint_every == 0:
            save(states, book)
        else:
            write_runs(states, book, checkpoints=False)

    def on_interrupt(states, book: TrainProgress) -> None:
        save(states, book)
        log(f"\nInterrupted: checkpoint saved. Continue with `rtrrl sweep --resume {folder}`.")

    swept = train_swept(
        algorithm,
        env,
        loop,
        values,
        progress=progress,
        resume=resume,
        on_chunk=on_chunk,
        on_interrupt=on_interrupt,
        stop_check=stop_check,
    )
    save(swept.runs.final_state, swept.runs.progress)
    for config, result in zip(configs, swept.results, strict=True):
        run = Path(config.out or folder)
        info = summary(result, config) | {"cpu_threads": cpu_threads, "sweep": str(folder)}
        write_atomic(run / SUMMARY_NAME, json.dumps(info, indent=2) + "\n")
        plot_runs({config.run_name(): read_metrics(run)}, run / PLOT_NAME, title=config.env)
    return swept


def _write_report(spec, folder: Path, rows, groups, compilations, results) -> None:
    base = spec.train_config(0)
    compile_seconds = sum(results[members[0]].compile_seconds for members in groups)
    run_seconds = sum(results[members[0]].run_seconds for members in groups)
    header = (
        f"Sweep of {len(rows)} configurations × {base.seeds} seeds on {base.env} "
        f"({spec.kind}, {base.steps:,} steps per run): {len(groups)} group(s), each one "
        f"compiled program (compilations in the last session, per group: {compilations}); "
        f"compiling {compile_seconds:.1f} s, training {run_seconds:.1f} s. Evaluation returns "
        "over seeds as median (min–max): final is the last evaluation, best the best one."
    )
    write_atomic(folder / TABLE_NAME, csv_text(rows))
    write_atomic(folder / MARKDOWN_NAME, markdown_text(rows, spec.names, header))
    title = f"{base.env}: {len(rows)} configurations × {base.seeds} seeds"
    write_sweep_plot(rows, spec.names, folder / FIGURE_NAME, title)
