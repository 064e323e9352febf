"""Stability of the online learner: the paper's settings against this library's default.

Six tasks (Acrobot-v1, MountainCarContinuous-v0, CartPole-vel, StatelessCartPole,
MemoryChain-32, RepeatPrevious) × the learners

- ``paper-rflo`` / ``paper-rtrl``: RTRRL with a CTRNN-32 as the paper specifies it
  (``--preset paper``), with RFLO or exact RTRL;
- ``default-rflo`` / ``default-rtrl``: the same with this library's default preset
  (rewards scaled by the RMS of the return, normalised observations, censored Gaussian head
  with a state-independent scale, step sizes lowered linearly to zero at the end of the
  budget; see `rtrrl.presets`);
- ``constant-rflo`` / ``constant-rtrl``: the default preset with constant step sizes
  (``--lr-decay none``), to show what the decay adds;
- ``ppo-lstm``: recurrent PPO with an LSTM trained by BPTT, the reference for how fast a
  task can be learned (8 environments, so its env-steps count all of them).

Each cell: 5 seeds trained together (vmapped), no early stopping, an evaluation every 10k
steps per seed (16 episodes, 32 on MemoryChain, sampled actions). Per cell the report gives
the best and the *final* evaluation (median over seeds), the **stability** (the fraction of
all evaluations, every seed, at or above the task's threshold: 95 % of the maximum return,
or Gym's reward threshold where the maximum is not known: -100 on Acrobot, 90 on
MountainCarContinuous) and the env-steps each seed took to first reach the threshold.

Usage::

    python benchmarks/stability.py                     # everything (about 1 h 30 min, 2 cores)
    python benchmarks/stability.py --methods default-rflo,ppo-lstm --tasks Acrobot

Writes ``benchmarks/results/stability.{json,md,png}`` after every cell; re-running skips the
cells already done with the same configuration (``--force`` re-runs them).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _experiments import (
    PPO_OPTIONS,
    RESULTS,
    Cell,
    ResultStore,
    check_choices,
    duration,
    evaluations,
    fmt,
    invocation_lines,
    machine_line,
    markdown_table,
    run_cells,
    spread,
)
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rtrrl.app.config import TrainConfig
from rtrrl.app.runs import write_atomic


@dataclasses.dataclass(frozen=True)
class Task:
    env: str
    env_option: tuple[str, ...]
    eval_steps: int
    eval_envs: int
    threshold: float
    """An evaluation at or above this counts as solved (stability, steps to reach)."""
    steps: int
    about: str


TASKS: dict[str, Task] = {
    "Acrobot": Task(
        "Acrobot-v1",
        (),
        eval_steps=500,
        eval_envs=16,
        threshold=-100.0,
        steps=1_000_000,
        about="gymnax Acrobot-v1 (-1 per step, 500-step episodes; threshold -100, Gym's)",
    ),
    "MountainCarContinuous": Task(
        "MountainCarContinuous-v0",
        (),
        eval_steps=999,
        eval_envs=16,
        threshold=90.0,
        steps=1_000_000,
        about="gymnax MountainCarContinuous-v0 (+100 at the flag, -0.1 a² per step; "
        "threshold 90, Gym's)",
    ),
    "CartPole-vel": Task(
        "CartPole-vel",
        (),
        eval_steps=500,
        eval_envs=16,
        threshold=475.0,
        steps=1_000_000,
        about="gymnax CartPole-v1 observing only the velocities (threshold 475 of 500)",
    ),
    "StatelessCartPole": Task(
        "StatelessCartPole",
        (),
        eval_steps=200,
        eval_envs=16,
        threshold=0.95,
        steps=1_000_000,
        about="POPGym PositionOnlyCartPole Easy (normalised return; threshold 0.95 of 1)",
    ),
    "MemoryChain-32": Task(
        "MemoryChain-bsuite",
        ("memory_length=32",),
        eval_steps=33,
        eval_envs=32,
        threshold=0.95,
        steps=1_000_000,
        about="bsuite MemoryChain, memory length 32 (returns ±1; threshold 0.95)",
    ),
    "RepeatPrevious": Task(
        "popgym-RepeatPreviousEasy-v0",
        (),
        eval_steps=51,
        eval_envs=16,
        threshold=0.95,
        steps=3_000_000,
        about="POPGym RepeatPrevious Easy (normalised return; threshold 0.95 of 1)",
    ),
}

METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "paper-rflo": ("paper preset, RFLO", dict(preset="paper", estimator="rflo")),
    "default-rflo": ("default preset, RFLO", dict(preset="default", estimator="rflo")),
    "paper-rtrl": ("paper preset, RTRL", dict(preset="paper", estimator="rtrl")),
    "default-rtrl": ("default preset, RTRL", dict(preset="default", estimator="rtrl")),
    "constant-rflo": (
        "default preset, constant steps, RFLO",
        dict(preset="default", estimator="rflo", lr_decay="none"),
    ),
    "constant-rtrl": (
        "default preset, constant steps, RTRL",
        dict(preset="default", estimator="rtrl", lr_decay="none"),
    ),
    "ppo-lstm": ("PPO-LSTM (BPTT)", dict(cell="lstm", **PPO_OPTIONS)),
}

CAPS = {"paper-rtrl": 300_000, "default-rtrl": 300_000, "constant-rtrl": 300_000}
"""Lower budgets for the costly methods (exact RTRL on a CTRNN is O(N⁴) per step)."""

PRIORITY = (
    "default-rflo",
    "paper-rflo",
    "ppo-lstm",
    "default-rtrl",
    "paper-rtrl",
    "constant-rflo",
    "constant-rtrl",
)
"""Run order: the methods the targets are about first, RTRL last."""


def cell_config(
    task: str, method: str, *, steps: int | None = None, seeds: int = 5, **overrides: Any
) -> TrainConfig:
    spec = TASKS[task]
    budget = steps or spec.steps
    budget = min(budget, CAPS.get(method, budget))
    options = dict(
        env=spec.env,
        env_option=spec.env_option,
        steps=budget,
        seeds=seeds,
        eval_every=10_000,
        eval_envs=spec.eval_envs,
        eval_steps=spec.eval_steps,
        patience=None,
    )
    return TrainConfig(**{**options, **METHODS[method][1], **overrides})


def _key(task: str, method: str) -> str:
    return f"{task}|{method}"


def first_reach(record: dict[str, Any], threshold: float) -> list[float]:
    """Per seed, the env-steps (per seed) of the first evaluation at or above `threshold`
    (NaN if it never got there)."""
    table = np.asarray(record["eval_returns"], dtype=float)
    steps = np.asarray(record["steps"], dtype=float)
    reached = table >= threshold
    return [float(steps[np.argmax(col)]) if col.any() else np.nan for col in reached.T]


def cell_numbers(record: dict[str, Any], task: Task) -> dict[str, Any]:
    """Best, final, stability and steps to the threshold of one cell."""
    reach = np.asarray(first_reach(record, task.threshold))
    finals = np.asarray(record["final_eval_return"], dtype=float)
    return {
        "best": spread(record["best_eval_return"]),
        "final": spread(record["final_eval_return"]),
        "final_solved": float(np.mean(finals >= task.threshold)),
        "stability": float(np.mean(evaluations(record) >= task.threshold)),
        "reached": float(np.mean(np.isfinite(reach))),
        # Median over seeds, counting a seed that never reached as "after the budget".
        "reach_steps": float(np.median(np.where(np.isfinite(reach), reach, np.inf))),
    }


def _steps_text(value: float) -> str:
    return "never" if not np.isfinite(value) else f"{value / 1000:.0f}k"


def render_markdown(store: ResultStore) -> str:
    cells, meta = store.cells, store.meta
    tasks = [t for t in TASKS if any(_key(t, m) in cells for m in METHODS)]
    total = sum(c.get("wall_seconds", 0.0) for c in cells.values())
    lines = [
        "# Stability: the paper's learner against the default preset",
        "",
        "Generated by `benchmarks/stability.py` (do not edit; hand-written notes go in "
        "`stability_notes.md`). RTRRL with a CTRNN-32, batch 1, the paper's Table 1 "
        "hyperparameters; `paper` is `--preset paper`, `default` the library's default preset. "
        "PPO-LSTM (BPTT, 8 environments) for reference. "
        f"{meta.get('seeds', 5)} seeds per cell (vmapped), no early stopping, an evaluation "
        "every 10k steps per seed (sampled actions).",
        "",
        f"- Machine: {machine_line(meta.get('machine', {}))}.",
        f"- Wall time of the cells reported here: {duration(total)} ({len(cells)} cells).",
    ]
    lines += invocation_lines(meta)
    lines += [
        "",
        "*best*, *final*: median ± std over seeds of each seed's best and last evaluation. "
        "*final ≥ thr.*: fraction of seeds whose last evaluation is at or above the threshold. "
        "*stability*: fraction of all evaluations (every seed) at or above it. *first reached*: "
        "median over seeds of the env-steps per seed to the first evaluation at or above it "
        "(a seed that never got there counts as never), and how many seeds got there.",
        "",
    ]
    header = [
        "task",
        "learner",
        "best",
        "final",
        "final ≥ thr.",
        "stability",
        "first reached",
        "budget",
        "wall",
    ]
    rows = []
    for t in tasks:
        for m in METHODS:
            record = cells.get(_key(t, m))
            if record is None:
                continue
            if "error" in record:
                rows.append([t, METHODS[m][0], "diverged"] + ["—"] * 6)
                continue
            n = cell_numbers(record, TASKS[t])
            rows.append(
                [
                    t,
                    METHODS[m][0],
                    f"{fmt(n['best'][0])} ± {fmt(n['best'][1])}",
                    f"{fmt(n['final'][0])} ± {fmt(n['final'][1])}",
                    f"{n['final_solved']:.0%}",
                    f"{n['stability']:.2f}",
                    f"{_steps_text(n['reach_steps'])} ({n['reached']:.0%})",
                    f"{record['config']['steps'] / 1000:.0f}k",
                    duration(record["wall_seconds"]),
                ]
            )
    lines += [markdown_table(header, rows), ""]
    lines += [
        "Tasks and thresholds: " + "; ".join(f"**{t}** — {TASKS[t].about}" for t in tasks) + ".",
        "",
        "![learning curves](stability.png)",
        "",
    ]
    notes = store.path.with_name("stability_notes.md")
    if notes.exists():
        lines += ["## Notes", "", notes.read_text().strip(), ""]
    return "\n".join(lines)


FIGURE_METHODS = ("paper-rflo", "constant-rflo", "default-rflo", "ppo-lstm")
"""The learners drawn in the figure (RTRL's shorter budget would only crowd it)."""


def render_figure(store: ResultStore, path: Path) -> None:
    """Per task: the median evaluation return over seeds against env-steps per seed, one line
    per learner of `FIGURE_METHODS`, with the range between the worst and best seed shaded;
    the threshold dashed."""
    cells = store.cells
    tasks = [t for t in TASKS if any(_key(t, m) in cells for m in METHODS)]
    columns = 3
    rows = max(1, -(-len(tasks) // columns))
    figure = Figure(figsize=(5.0 * columns, 3.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    for i, t in enumerate(tasks):
        axes = figure.add_subplot(rows, columns, i + 1)
        for j, m in enumerate(FIGURE_METHODS):
            record = cells.get(_key(t, m))
            if record is None or "error" in record:
                continue
            steps = np.asarray(record["steps"], float)
            table = np.asarray(record["eval_returns"], float)
            median = np.nanmedian(table, axis=1)
            axes.plot(steps, median, color=f"C{j}", label=METHODS[m][0], linewidth=1.4)
            axes.fill_between(
                steps, np.nanmin(table, axis=1), np.nanmax(table, axis=1), color=f"C{j}", alpha=0.12
            )
        axes.axhline(TASKS[t].threshold, color="gray", linestyle="--", linewidth=0.8)
        axes.set_title(t)
        axes.set_xlabel("env-steps per seed")
        axes.set_ylabel("evaluation return")
        axes.grid(alpha=0.3)
        if i == 0:
            axes.legend(fontsize="small")
    figure.savefig(path, dpi=110)


def write_report(store: ResultStore, prefix: Path) -> None:
    write_atomic(prefix.with_suffix(".md"), render_markdown(store))
    render_figure(store, prefix.with_suffix(".png"))


def run_stability(
    *,
    tasks: Sequence[str] = tuple(TASKS),
    methods: Sequence[str] = PRIORITY,
    steps: int | None = None,
    seeds: int = 5,
    prefix: Path = RESULTS / "stability",
    force: bool = False,
    progress: bool = True,
    command: str = "",
    overrides: dict[str, Any] | None = None,
) -> ResultStore:
    """Run every (task, method) cell, writing ``<prefix>.{json,md,png}`` after each.

    Arguments mirror the CLI (`steps` None: each task's budget, RTRL capped at 300k);
    `overrides` are extra `TrainConfig` fields for every cell.
    """
    check_choices("task", tasks, list(TASKS))
    check_choices("method", methods, list(METHODS))
    prefix.parent.mkdir(parents=True, exist_ok=True)
    store = ResultStore(prefix.with_suffix(".json"))
    store.meta["seeds"] = seeds
    order = [m for m in PRIORITY if m in methods]
    cells = [
        Cell(
            _key(t, m),
            cell_config(t, m, steps=steps, seeds=seeds, **(overrides or {})),
            dict(task=t, method=m),
        )
        for m in order
        for t in tasks
    ]
    run_cells(
        store,
        cells,
        report=lambda: write_report(store, prefix),
        force=force,
        progress=progress,
        command=command,
    )
    return store


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--methods", default=",".join(PRIORITY))
    parser.add_argument("--steps", type=int, help="budget per seed (default: per task)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "stability")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if args.report_only:
        write_report(ResultStore(args.out.with_suffix(".json")), args.out)
        return
    run_stability(
        tasks=[t.strip() for t in args.tasks.split(",")],
        methods=[m.strip() for m in args.methods.split(",")],
        steps=args.steps,
        seeds=args.seeds,
        prefix=args.out,
        force=args.force,
        progress=not args.no_progress,
        command="python benchmarks/stability.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    )


if __name__ == "__main__":
    main()
