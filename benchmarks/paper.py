"""Reproduce the paper's results table (Lemmel & Grosu, AAAI 2025).

Tasks × methods × 5 seeds, each (task, method) *cell* one `rtrrl.train` call with the seeds
vmapped in one compiled program. Methods (32 neurons, the paper's Table 1 hyperparameters,
Meta-RL input, batch 1 for the online learners):

- ``linear``: linear TD(λ) on the raw input (``--cell linear``);
- ``rflo``: RTRRL, CTRNN + RFLO (``--cell ctrnn --estimator rflo``);
- ``rtrl``: RTRRL, CTRNN + exact RTRL (O(N⁴) per step: the costly one);
- ``lru``: RTRRL, LRU + its exact O(N·I) RTRL;
- ``ppo-ctrnn`` / ``ppo-lstm``: recurrent PPO trained by BPTT over 128-step segments of 8
  environments (see `_experiments.PPO_OPTIONS`);
- ``rflo-default``: RTRRL, CTRNN + RFLO with this library's default preset (`rtrrl.presets`);
  the four RTRRL methods above run the paper's learner (``--preset paper``).

Every cell evaluates every 10k steps (per seed) and stops a seed after 20 evaluations without
improvement (the paper's patience), within a step budget per task (`SUBSETS`). The table
reports, as the paper does, the median ± std over seeds of each seed's *best* evaluation
return, beside the paper's median; and, because the paper notes that learning is unstable,
the median of the *final* evaluation and the fraction of evaluations at >= 95 % of the best
attainable return.

Usage::

    python benchmarks/paper.py --subset quick     # < 20 min on a 2-core CPU
    python benchmarks/paper.py --subset full      # every task and method (about 1 h)
    python benchmarks/paper.py --subset full --tasks MemoryChain-16 --methods rflo,lru
    python benchmarks/paper.py --subset full --dry-run   # the plan, nothing run

Writes ``benchmarks/results/<name>.{json,md,png}`` (``paper`` for the full subset,
``paper_quick`` for the quick one) after every cell: an interrupted run keeps what finished,
and running the same command again continues it, skipping the cells already done with the
same configuration (``--force`` re-runs them). A hand-written ``<name>_notes.md`` beside them,
if present, is included in the Markdown under "Notes".
"""

from __future__ import annotations

import argparse
import dataclasses
import math
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
    fmt,
    invocation_lines,
    machine_line,
    markdown_table,
    run_cells,
    spread,
    stability,
)
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rtrrl.app.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class Task:
    """One row of the table: an environment, how it is evaluated, and the paper's numbers."""

    env: str
    env_option: tuple[str, ...] = ()
    eval_steps: int = 1000
    """Steps per evaluation: the episode limit (an evaluation scores each environment's first
    episode, so this is exact and no longer than needed)."""
    eval_envs: int = 8
    max_return: float | None = None
    """Best attainable return (for the stability column and the normalised bar chart)."""
    paper: dict[str, float] = dataclasses.field(default_factory=dict)
    """The paper's median best evaluation return per method (its results table)."""
    about: str = ""


@dataclasses.dataclass(frozen=True)
class Method:
    label: str
    options: dict[str, Any]


def _memory_chain(length: int, paper: dict[str, float]) -> Task:
    return Task(
        "MemoryChain-bsuite",
        (f"memory_length={length}",),
        eval_steps=length + 1,
        eval_envs=32,
        max_return=1.0,
        paper=paper,
        about=f"bsuite MemoryChain, memory length {length} (returns ±1)",
    )


TASKS: dict[str, Task] = {
    "CartPole-vel": Task(
        "CartPole-vel",
        eval_steps=500,
        max_return=500.0,
        paper={"linear": 454.55, "rtrl": 500.0, "rflo": 500.0, "ppo-ctrnn": 112.11},
        about="gymnax CartPole-v1 observing only the velocities",
    ),
    "MemoryChain-4": _memory_chain(
        4, {"linear": 0.07, "rtrl": 1.00, "rflo": 1.00, "ppo-ctrnn": 1.00}
    ),
    "MemoryChain-8": _memory_chain(
        8, {"linear": 0.07, "rtrl": 0.90, "rflo": 1.00, "ppo-ctrnn": 1.00}
    ),
    "MemoryChain-16": _memory_chain(
        16, {"linear": 0.12, "rtrl": 0.61, "rflo": 1.00, "ppo-ctrnn": 1.00}
    ),
    "MemoryChain-32": _memory_chain(
        32, {"linear": 0.17, "rtrl": 0.56, "rflo": 0.77, "ppo-ctrnn": 1.00}
    ),
    "StatelessCartPole": Task(
        "StatelessCartPole",
        eval_steps=200,
        max_return=1.0,
        paper={"linear": 0.72, "rflo": 1.00, "lru": 1.00, "ppo-ctrnn": 0.99},
        about="POPGym PositionOnlyCartPole Easy (200 steps, normalised return)",
    ),
    "RepeatPrevious": Task(
        "popgym-RepeatPreviousEasy-v0",
        eval_steps=51,
        eval_envs=16,
        max_return=1.0,
        paper={"linear": -0.35, "rflo": 0.54, "lru": 1.00, "ppo-ctrnn": 0.93},
        about="POPGym RepeatPrevious Easy (52 cards, k=4; normalised return)",
    ),
    "Catch": Task(
        "Catch-bsuite",
        eval_steps=9,
        eval_envs=32,
        max_return=1.0,
        paper={"linear": 0.27, "rflo": 1.00, "lru": 0.39, "ppo-ctrnn": 1.00},
        about="bsuite Catch 10x5 (returns ±1)",
    ),
    # The paper's claims without a number in its table (its text and Figure 10).
    "Acrobot": Task(
        "Acrobot-v1",
        eval_steps=500,
        about="gymnax Acrobot-v1 (-1 per step, 500-step episodes); the paper: RFLO solves it "
        "in fewer steps than PPO with BPTT, near -100 by about 120k steps (its Figure 10)",
    ),
    "MountainCarContinuous": Task(
        "MountainCarContinuous-v0",
        eval_steps=999,
        about="gymnax MountainCarContinuous-v0 (+100 at the flag, -0.1 a² per step); the "
        "paper: RTRRL solves it (no number given)",
    ),
    # Beyond the paper's table (no paper numbers).
    "CartPole-v1": Task(
        "CartPole-v1",
        eval_steps=500,
        max_return=500.0,
        about="fully observed CartPole-v1 (a sanity check; the paper notes its instability)",
    ),
    "RepeatFirst": Task(
        "popgym-RepeatFirstEasy-v0",
        eval_steps=51,
        eval_envs=16,
        max_return=1.0,
        about="POPGym RepeatFirst Easy (normalised return)",
    ),
}

METHODS: dict[str, Method] = {
    # The paper's learner (``--preset paper``) for the paper's columns ...
    "linear": Method("linear TD(λ)", dict(cell="linear", preset="paper")),
    "rflo": Method("RTRRL RFLO CTRNN", dict(cell="ctrnn", estimator="rflo", preset="paper")),
    "rtrl": Method("RTRRL RTRL CTRNN", dict(cell="ctrnn", estimator="rtrl", preset="paper")),
    "lru": Method("RTRRL LRU", dict(cell="lru", estimator="rtrl", preset="paper")),
    # ... and this library's default settings beside them (`rtrrl.presets`).
    "rflo-default": Method(
        "RTRRL RFLO CTRNN, default preset",
        dict(cell="ctrnn", estimator="rflo", preset="default"),
    ),
    "ppo-ctrnn": Method("PPO CTRNN (BPTT)", dict(cell="ctrnn", **PPO_OPTIONS)),
    "ppo-lstm": Method("PPO LSTM (BPTT)", dict(cell="lstm", **PPO_OPTIONS)),
    # Estimators the paper does not have, with the default preset (subset "estimators").
    "snap1-default": Method(
        "RTRRL SnAp-1 CTRNN, default preset",
        dict(cell="ctrnn", estimator="snap1", preset="default"),
    ),
    "uoro-default": Method(
        "RTRRL UORO CTRNN, default preset",
        dict(cell="ctrnn", estimator="uoro", preset="default"),
    ),
}


PRIORITY = (
    "rflo",
    "rflo-default",
    "linear",
    "lru",
    "ppo-lstm",
    "ppo-ctrnn",
    "rtrl",
    "snap1-default",
    "uoro-default",
)
"""Run order of the methods (the cheapest essential ones first; RTRL, O(N⁴), last)."""


@dataclasses.dataclass(frozen=True)
class Subset:
    """Which cells to run and with how many environment steps per seed.

    ``budget[task]`` is the step budget per seed; ``caps[method]`` lowers it for the costly
    methods; ``methods[task]`` (default: all) restricts the methods of a task.
    """

    about: str
    budget: dict[str, int]
    caps: dict[str, int] = dataclasses.field(default_factory=dict)
    methods: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    name: str = "paper"

    def cells(self) -> list[tuple[str, str, int]]:
        """``(task, method, steps)`` in run order: method by method (`PRIORITY`), so that a
        run cut short has the most important methods on every task."""
        out = []
        for method in PRIORITY:
            for task, steps in self.budget.items():
                if method in self.methods.get(task, tuple(METHODS)):
                    out.append((task, method, min(steps, self.caps.get(method, steps))))
        return out


_PAPER_METHODS = ("linear", "rflo", "lru", "ppo-ctrnn", "ppo-lstm")
_FULL_METHODS = (*_PAPER_METHODS, "rtrl", "rflo-default")
_ESTIMATOR_TASKS = ("MemoryChain-16", "StatelessCartPole", "CartPole-vel")

SUBSETS: dict[str, Subset] = {
    "quick": Subset(
        about=(
            "five of the paper's tasks (CartPole-vel, MemoryChain-8, StatelessCartPole, "
            "RepeatPrevious, Catch) × five methods (linear, RFLO, LRU, PPO-CTRNN, PPO-LSTM), "
            "plus RTRL on MemoryChain-8; budgets of 60k-200k steps per seed (LRU 100k, RTRL "
            "60k), about 10 minutes on a 2-core CPU"
        ),
        budget={
            "CartPole-vel": 200_000,
            "MemoryChain-8": 100_000,
            "StatelessCartPole": 200_000,
            "RepeatPrevious": 200_000,
            "Catch": 100_000,
        },
        caps={"lru": 100_000, "rtrl": 60_000},
        methods={
            "CartPole-vel": _PAPER_METHODS,
            "MemoryChain-8": (*_PAPER_METHODS, "rtrl"),
            "StatelessCartPole": _PAPER_METHODS,
            "RepeatPrevious": _PAPER_METHODS,
            "Catch": _PAPER_METHODS,
        },
        name="paper_quick",
    ),
    "full": Subset(
        about=(
            "every task of the paper's table, plus Acrobot and MountainCarContinuous (claims "
            "of its text) × the paper's six methods and RFLO with the default preset; budgets "
            "of 0.3M-3M steps "
            "per seed by task, LRU capped at 1M and RTRL at 300k for cost"
        ),
        budget={
            "CartPole-vel": 1_000_000,
            "MemoryChain-4": 300_000,
            "MemoryChain-8": 500_000,
            "MemoryChain-16": 1_000_000,
            "MemoryChain-32": 2_000_000,
            "StatelessCartPole": 1_000_000,
            "RepeatPrevious": 3_000_000,
            "Catch": 500_000,
            "Acrobot": 1_000_000,
            "MountainCarContinuous": 1_000_000,
        },
        caps={"lru": 1_000_000, "rtrl": 300_000},
        methods={
            task: _FULL_METHODS
            for task in (
                "CartPole-vel",
                "MemoryChain-4",
                "MemoryChain-8",
                "MemoryChain-16",
                "MemoryChain-32",
                "StatelessCartPole",
                "RepeatPrevious",
                "Catch",
                "Acrobot",
                "MountainCarContinuous",
            )
        },
    ),
    "estimators": Subset(
        about=(
            "the estimators beyond the paper's, SnAp-1 and UORO, against RFLO, all with the "
            "default preset, on MemoryChain-16, StatelessCartPole and CartPole-vel; 300k "
            "steps per seed"
        ),
        budget=dict.fromkeys(_ESTIMATOR_TASKS, 300_000),
        methods=dict.fromkeys(_ESTIMATOR_TASKS, ("rflo-default", "snap1-default", "uoro-default")),
        name="paper_estimators",
    ),
}


def cell_config(
    task: str,
    method: str,
    steps: int,
    *,
    seeds: int = 5,
    eval_every: int = 10_000,
    patience: int | None = 20,
    **overrides: Any,
) -> TrainConfig:
    """The `TrainConfig` of one cell (paper defaults plus the task's and method's options)."""
    spec = TASKS[task]
    return TrainConfig(
        env=spec.env,
        env_option=spec.env_option,
        steps=steps,
        seeds=seeds,
        eval_every=eval_every,
        eval_envs=spec.eval_envs,
        eval_steps=spec.eval_steps,
        patience=patience,
        patience_window=1,  # single evaluations, as when these results were made
        **{**METHODS[method].options, **overrides},
    )


def cell_key(task: str, method: str) -> str:
    return f"{task}|{method}"


# --------------------------------------------------------------------------- report


def _cell_numbers(record: dict[str, Any], task: Task) -> dict[str, float | None]:
    best, best_std = spread(record["best_eval_return"])
    final, final_std = spread(record["final_eval_return"])
    return {
        "best": best,
        "best_std": best_std,
        "final": final,
        "final_std": final_std,
        "stability": stability(record, task.max_return),
        "best_step": float(np.median(record["best_step"])),
    }


def render_markdown(store: ResultStore, subset: Subset, notes: str | None) -> str:
    """The report: the paper-format table, the detailed table, what was not run, notes."""
    cells = store.cells
    meta = store.meta
    tasks = [t for t in TASKS if any(cell_key(t, m) in cells for m in METHODS)]
    methods = [m for m in METHODS if any(cell_key(t, m) in cells for t in TASKS)]
    lines = [
        "# Paper reproduction: RTRRL vs baselines",
        "",
        "Generated by `benchmarks/paper.py` (do not edit; hand-written notes go in "
        f"`{subset.name}_notes.md`). Subset: **{meta.get('subset')}** — {subset.about}.",
        "",
        "Each cell: 5 seeds trained together (vmapped) with the paper's Table 1 "
        "hyperparameters (32 neurons, γ = 0.99, λ = 0.99, lr 1e-3, Adam, batch 1 for the "
        "online learners, Meta-RL input), an evaluation every 10k steps per seed, and early "
        "stopping after 20 evaluations without improvement, within the step budget below. "
        "PPO: 8 environments × 128-step segments (full BPTT over each segment), 4 epochs × "
        "4 minibatches, Adam 1e-3, clip 0.2, GAE λ 0.95, entropy 0.01, grad-norm clip 0.5. "
        "Evaluations sample from the policy on fresh environments and score each one's "
        "first episode.",
        "",
    ]
    machine = meta.get("machine", {})
    total_wall = sum(c.get("wall_seconds", 0.0) for c in cells.values())
    lines += [
        f"- Machine: {machine_line(machine)}.",
        f"- Started {meta.get('started', '?')}; last cell finished {meta.get('updated', '?')}.",
        f"- Wall time of the cells reported here: {duration(total_wall)} "
        f"({len(cells)} cells; compile time included).",
    ]
    lines += invocation_lines(meta)
    lines.append("")

    # Paper-format table: median ± std of the best evaluation return (paper's median).
    header = ["task"] + [METHODS[m].label for m in methods]
    rows = []
    for t in tasks:
        row = [t]
        for m in methods:
            record = cells.get(cell_key(t, m))
            paper = TASKS[t].paper.get(m)
            paper_text = f" ({fmt(paper)})" if paper is not None else ""
            if record is None:
                row.append(f"not run{paper_text}")
            elif "error" in record:
                row.append(f"diverged{paper_text}")
            else:
                n = _cell_numbers(record, TASKS[t])
                row.append(f"{fmt(n['best'])} ± {fmt(n['best_std'])}{paper_text}")
        rows.append(row)
    lines += [
        "## Best evaluation return: ours (paper)",
        "",
        "Median ± std (population std over the 5 seeds) of each seed's best evaluation "
        "return; in parentheses the paper's median (its results table; blank where the paper has no "
        "number). POPGym returns are POPGym's normalised ones; MemoryChain and Catch returns "
        "are bsuite's (±1 per episode).",
        "",
        markdown_table(header, rows),
        "",
    ]

    # Detailed table.
    header = [
        "task",
        "method",
        "best (median ± std)",
        "paper",
        "ours − paper",
        "final (median ± std)",
        "stability",
        "best at step (median)",
        "steps/seed run (budget)",
        "wall",
        "env-steps/s",
    ]
    rows = []
    for t in tasks:
        for m in methods:
            record = cells.get(cell_key(t, m))
            if record is None:
                continue
            paper = TASKS[t].paper.get(m)
            budget = record["config"]["steps"]
            if "error" in record:
                rows.append([t, METHODS[m].label, "diverged", fmt(paper)] + ["—"] * 7)
                continue
            n = _cell_numbers(record, TASKS[t])
            delta = n["best"] - paper if paper is not None else None
            rows.append(
                [
                    t,
                    METHODS[m].label,
                    f"{fmt(n['best'])} ± {fmt(n['best_std'])}",
                    fmt(paper),
                    "—" if delta is None else f"{delta:+.2f}",
                    f"{fmt(n['final'])} ± {fmt(n['final_std'])}",
                    fmt(n["stability"]),
                    f"{n['best_step'] / 1000:.0f}k",
                    f"{record['total_steps'] / 1000:.0f}k ({budget / 1000:.0f}k)",
                    duration(record["wall_seconds"]),
                    f"{record['env_steps_per_second'] or math.nan:,.0f}",
                ]
            )
    lines += [
        "## Details",
        "",
        "*final*: each seed's last evaluation (at the end of the budget or when patience "
        "stopped it). *stability*: fraction of all evaluations (every seed, every evaluation it "
        "ran) at >= 95 % of the best attainable return (500 on CartPole, 1 elsewhere). "
        "*steps/seed run*: the steps the slowest seed ran (seeds stop early by patience; the "
        "compiled program runs until every seed has stopped or the budget is spent). "
        "*env-steps/s*: all 5 seeds together, compile excluded, on a shared machine.",
        "",
        markdown_table(header, rows),
        "",
    ]

    missing = [
        (t, m, s)
        for t, m, s in SUBSETS[meta.get("subset", "full")].cells()
        if cell_key(t, m) not in cells
    ]
    if missing:
        lines += ["## Not run", ""]
        lines += [f"- {t} × {METHODS[m].label} ({n:,} steps/seed)" for t, m, n in missing]
        lines.append("")
    lines += [
        "## Tasks",
        "",
        *[
            f"- **{t}**: `{TASKS[t].env}` {' '.join(TASKS[t].env_option)} — {TASKS[t].about}; "
            f"evaluation {TASKS[t].eval_envs} episodes of at most {TASKS[t].eval_steps} steps."
            for t in tasks
        ],
        "",
        f"![best evaluation return]({subset.name}.png)",
        "",
    ]
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines)


def render_figure(store: ResultStore, path: Path) -> None:
    """Grouped bars per task: ours (median best, std error bar) and the paper's median (×),
    normalised by the best attainable return; below, the median final evaluation."""
    cells = store.cells
    tasks = [
        t for t in TASKS if TASKS[t].max_return and any(cell_key(t, m) in cells for m in METHODS)
    ]
    methods = [m for m in METHODS if any(cell_key(t, m) in cells for t in tasks)]
    figure = Figure(figsize=(max(7.0, 1.4 * len(tasks) + 2), 7.5), layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    width = 0.8 / max(1, len(methods))
    colors = {m: f"C{i}" for i, m in enumerate(METHODS)}
    for j, m in enumerate(methods):
        xs, best, std, final, paper_x, paper_y = [], [], [], [], [], []
        for i, t in enumerate(tasks):
            record = cells.get(cell_key(t, m))
            x = i - 0.4 + width * (j + 0.5)
            scale = TASKS[t].max_return
            if TASKS[t].paper.get(m) is not None:
                paper_x.append(x)
                paper_y.append(TASKS[t].paper[m] / scale)
            if record is None or "error" in record:
                continue
            n = _cell_numbers(record, TASKS[t])
            xs.append(x)
            best.append(n["best"] / scale)
            std.append(n["best_std"] / scale)
            final.append(n["final"] / scale)
        top.bar(xs, best, width, yerr=std, color=colors[m], label=METHODS[m].label, capsize=2)
        top.scatter(paper_x, paper_y, marker="x", color="black", zorder=3, s=25)
        bottom.bar(xs, final, width, color=colors[m])
    top.scatter([], [], marker="x", color="black", label="paper (median)")
    top.set_ylabel("best eval return / max")
    top.set_title("Best evaluation return (median over 5 seeds, ± std)")
    handles, labels = top.get_legend_handles_labels()
    figure.legend(handles, labels, fontsize="small", ncols=4, loc="outside lower center")
    bottom.set_ylabel("final eval return / max")
    bottom.set_title("Final evaluation return (median over 5 seeds)")
    bottom.set_xticks(range(len(tasks)), tasks, rotation=20)
    for axes in (top, bottom):
        axes.axhline(0.0, color="gray", linewidth=0.8)
        axes.set_ylim(-1.05, 1.1)
        axes.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=120)


def write_report(store: ResultStore, subset: Subset, prefix: Path) -> None:
    from rtrrl.app.runs import write_atomic

    notes_path = prefix.with_name(prefix.name + "_notes.md")
    notes = notes_path.read_text() if notes_path.exists() else None
    write_atomic(prefix.with_suffix(".md"), render_markdown(store, subset, notes))
    render_figure(store, prefix.with_suffix(".png"))


# --------------------------------------------------------------------------- sweep


def run_subset(
    subset_name: str,
    *,
    tasks: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    steps: int | None = None,
    seeds: int = 5,
    eval_every: int = 10_000,
    patience: int | None = 20,
    prefix: Path | None = None,
    force: bool = False,
    progress: bool = True,
    command: str = "",
    overrides: dict[str, Any] | None = None,
) -> ResultStore:
    """Run the cells of a subset (filtered by `tasks`/`methods`), writing results after each.

    Arguments:
        subset_name: a key of `SUBSETS`.
        tasks, methods: keep only these (None: all of the subset).
        steps: override every cell's step budget per seed.
        seeds, eval_every, patience: loop settings (paper: 5, 10k, 20).
        prefix: output path without suffix (default ``results/<subset name>``).
        force: re-run cells already stored with the same configuration.
        progress: progress bars per cell.
        command: the command line, recorded in the report.
        overrides: extra `TrainConfig` fields for every cell (the smoke test shrinks sizes).

    Returns:
        The `ResultStore` (also written to ``<prefix>.json``, ``.md`` and ``.png``).
    """
    subset = SUBSETS[subset_name]
    prefix = prefix or RESULTS / subset.name
    prefix.parent.mkdir(parents=True, exist_ok=True)
    check_choices("task", tasks or (), list(TASKS))
    check_choices("method", methods or (), list(METHODS))
    store = ResultStore(prefix.with_suffix(".json"))
    store.meta["subset"] = subset_name
    cells = [
        Cell(
            cell_key(t, m),
            cell_config(
                t,
                m,
                steps or s,
                seeds=seeds,
                eval_every=eval_every,
                patience=patience,
                **(overrides or {}),
            ),
            dict(task=t, method=m),
            TASKS[t].paper.get(m),
        )
        for t, m, s in subset.cells()
        if (tasks is None or t in tasks) and (methods is None or m in methods)
    ]
    run_cells(
        store,
        cells,
        report=lambda: write_report(store, subset, prefix),
        force=force,
        progress=progress,
        command=command,
    )
    print(f"Report: {prefix}.md", flush=True)
    return store


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--subset", choices=list(SUBSETS), default="quick")
    parser.add_argument("--tasks", help=f"comma-separated, from: {', '.join(TASKS)}")
    parser.add_argument("--methods", help=f"comma-separated, from: {', '.join(METHODS)}")
    parser.add_argument("--steps", type=int, help="override every cell's budget (per seed)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--patience", type=int, default=20, help="0: no early stopping")
    parser.add_argument("--out", type=Path, help="output prefix (default results/<subset>)")
    parser.add_argument("--force", action="store_true", help="re-run finished cells")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument(
        "--report-only", action="store_true", help="re-render md/png from the JSON and exit"
    )
    args = parser.parse_args(argv)
    subset = SUBSETS[args.subset]
    tasks, methods = _names(args.tasks), _names(args.methods)
    if args.dry_run:
        for t, m, s in subset.cells():
            if (tasks is None or t in tasks) and (methods is None or m in methods):
                print(f"{t:18s} {m:10s} {args.steps or s:>10,} steps/seed")
        return
    if args.report_only:
        prefix = args.out or RESULTS / subset.name
        write_report(ResultStore(prefix.with_suffix(".json")), subset, prefix)
        return
    run_subset(
        args.subset,
        tasks=tasks,
        methods=methods,
        steps=args.steps,
        seeds=args.seeds,
        eval_every=args.eval_every,
        patience=args.patience or None,
        prefix=args.out,
        force=args.force,
        progress=not args.no_progress,
        command="python benchmarks/paper.py " + " ".join(sys.argv[1:] if argv is None else argv),
    )


if __name__ == "__main__":
    main()
