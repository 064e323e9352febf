"""The paper's Figure 4: best evaluation return on MemoryChain vs memory length, per estimator.

bsuite MemoryChain shows a context bit at the first step and asks for it after
``memory_length`` steps (return +1 if recalled, -1 if not). For each memory length in
{4, 8, 16, 32, 64} and each method, 10 seeds are trained together (vmapped) with the paper's
Table 1 hyperparameters (CTRNN-32, Meta-RL input, batch 1), evaluated every 10k steps on 32
episodes, early-stopped after 20 evaluations without improvement. Methods:

- ``rflo``: RTRRL with RFLO (the paper's biologically plausible estimator);
- ``rtrl``: RTRRL with exact RTRL (O(N⁴) per step: its budget is capped, see `CAPS`);
- ``local-mse``: RTRRL with the immediate Jacobian only (SnAp-0, = truncated BPTT(1));
- ``tbptt``: RTRRL with truncated BPTT over a window of `WINDOW` steps;
- ``ppo-lstm``: recurrent PPO with an LSTM-32 trained by BPTT (`_experiments.PPO_OPTIONS`).

Two input settings (`INPUTS`): the paper's Meta-RL input ``[o_t, a_{t-1}, r_t]``, and the
observation alone. MemoryChain rewards only the last action, so with the Meta-RL input a
policy can carry the context bit in its own actions (repeat ``a_{t-1}``) without any
recurrent memory: the observation-only setting measures the estimators' memory itself.
Besides the best return, the step at which each seed reached its best is plotted (how fast
each method learns; most reach 1.0).

Usage::

    python benchmarks/memory_chain.py                    # everything (about an hour)
    python benchmarks/memory_chain.py --lengths 4,8 --methods rflo --steps 50000
    python benchmarks/memory_chain.py --inputs obs       # the observation-only setting

Writes ``benchmarks/results/memory_chain.{json,md,png}`` after every cell; re-running the
same command skips the cells already done with the same configuration (``--force`` re-runs).
"""

from __future__ import annotations

import argparse
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
)
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from rtrrl.app.config import TrainConfig
from rtrrl.app.runs import write_atomic

LENGTHS = (4, 8, 16, 32, 64)
WINDOW = 16
"""Truncation window of the ``tbptt`` method (steps of backpropagation at each update)."""

METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    # The paper's learner (``--preset paper``), as when this sweep was first run.
    "rflo": ("RFLO", dict(cell="ctrnn", estimator="rflo", preset="paper")),
    "rtrl": ("RTRL", dict(cell="ctrnn", estimator="rtrl", preset="paper")),
    "local-mse": ("LocalMSE", dict(cell="ctrnn", estimator="local-mse", preset="paper")),
    "tbptt": (
        f"TBPTT({WINDOW})",
        dict(cell="ctrnn", estimator="tbptt", window=WINDOW, preset="paper"),
    ),
    "ppo-lstm": ("PPO-LSTM (BPTT)", dict(cell="lstm", **PPO_OPTIONS)),
}

STEPS = 500_000
"""Step budget per seed (before `CAPS`)."""
CAPS = {"rtrl": 150_000}
"""Lower budgets for the costly methods (RTRL on a CTRNN-32 is O(N⁴) per step)."""

INPUTS: dict[str, str] = {
    "meta-rl": "Meta-RL input [o, a_prev, r_prev] (the paper's)",
    "obs": "observation only (no Meta-RL input)",
}

# The paper's table (median best over 5 seeds) where it has MemoryChain numbers.
PAPER = {
    "rtrl": {4: 1.00, 8: 0.90, 16: 0.61, 32: 0.56},
    "rflo": {4: 1.00, 8: 1.00, 16: 1.00, 32: 0.77},
}


def cell_config(
    length: int,
    method: str,
    steps: int,
    *,
    inputs: str = "meta-rl",
    seeds: int = 10,
    eval_every: int = 10_000,
    patience: int | None = 20,
    **overrides: Any,
) -> TrainConfig:
    """The `TrainConfig` of one (memory length, method, input setting) cell."""
    return TrainConfig(
        env="MemoryChain-bsuite",
        env_option=(f"memory_length={length}",),
        steps=steps,
        seeds=seeds,
        seed=0,
        eval_every=eval_every,
        eval_envs=32,
        eval_steps=length + 1,
        patience=patience,
        patience_window=1,  # single evaluations, as when these results were made
        meta_rl=inputs == "meta-rl",
        **{**METHODS[method][1], **overrides},
    )


def _key(length: int, method: str, inputs: str = "meta-rl") -> str:
    return f"{length}|{method}" + ("" if inputs == "meta-rl" else f"|{inputs}")


def _present(cells, inputs: str) -> tuple[list[int], list[str]]:
    lengths = [n for n in LENGTHS if any(_key(n, m, inputs) in cells for m in METHODS)]
    methods = [m for m in METHODS if any(_key(n, m, inputs) in cells for n in LENGTHS)]
    return lengths, methods


def _tables(cells, inputs: str) -> list[str]:
    lengths, methods = _present(cells, inputs)
    if not lengths:
        return []
    header = ["memory length"] + [METHODS[m][0] for m in methods]
    rows = []
    for n in lengths:
        row = [str(n)]
        for m in methods:
            record = cells.get(_key(n, m, inputs))
            paper = PAPER.get(m, {}).get(n) if inputs == "meta-rl" else None
            paper_text = f" ({fmt(paper)})" if paper is not None else ""
            if record is None:
                row.append("not run" + paper_text)
            elif "error" in record:
                row.append("diverged" + paper_text)
            else:
                best = np.asarray(record["best_eval_return"], float)
                q1, q3 = np.nanpercentile(best, [25, 75])
                solved = np.mean(best >= 0.95)
                row.append(
                    f"{fmt(np.nanmedian(best))} [{fmt(q1)}, {fmt(q3)}] "
                    f"{solved:.0%} solved{paper_text}"
                )
        rows.append(row)
    lines = [
        f"## {INPUTS[inputs][0].upper()}{INPUTS[inputs][1:]}",
        "",
        "Median [quartiles] over seeds of each seed's best evaluation return, and the "
        "fraction of seeds whose best reached >= 0.95"
        + (
            "; in parentheses the paper's median (its table, 5 seeds; the paper gives no "
            "Figure 4 numbers for the other methods)."
            if inputs == "meta-rl"
            else "."
        ),
        "",
        markdown_table(header, rows),
        "",
    ]
    header = [
        "memory length",
        "method",
        "best (median ± std)",
        "final (median ± std)",
        "best at step (median)",
        "steps/seed run (budget)",
        "wall",
        "env-steps/s",
    ]
    rows = []
    for n in lengths:
        for m in methods:
            record = cells.get(_key(n, m, inputs))
            if record is None or "error" in record:
                continue
            best = spread(record["best_eval_return"])
            final = spread(record["final_eval_return"])
            budget = record["config"]["steps"]
            rows.append(
                [
                    str(n),
                    METHODS[m][0],
                    f"{fmt(best[0])} ± {fmt(best[1])}",
                    f"{fmt(final[0])} ± {fmt(final[1])}",
                    f"{np.median(record['best_step']) / 1000:.0f}k",
                    f"{record['total_steps'] / 1000:.0f}k ({budget / 1000:.0f}k)",
                    duration(record["wall_seconds"]),
                    f"{record['env_steps_per_second'] or float('nan'):,.0f}",
                ]
            )
    return lines + ["Details:", "", markdown_table(header, rows), ""]


def render_markdown(store: ResultStore) -> str:
    cells, meta = store.cells, store.meta
    total = sum(c.get("wall_seconds", 0.0) for c in cells.values())
    lines = [
        "# MemoryChain: best evaluation return vs memory length (the paper's Figure 4)",
        "",
        "Generated by `benchmarks/memory_chain.py`. bsuite MemoryChain (return +1 when the "
        "context bit is recalled after `memory_length` steps, -1 otherwise). Each cell: "
        f"{meta.get('seeds', 10)} seeds vmapped, CTRNN-32 with the paper's Table 1 "
        "hyperparameters (batch 1), an evaluation of 32 episodes every 10k steps, early "
        "stopping after 20 evaluations without improvement. TBPTT window "
        f"{WINDOW}. PPO-LSTM: 8 environments × 128-step segments, full BPTT over each "
        "segment, 4 epochs × 4 minibatches, Adam 1e-3. Two input settings: the paper's "
        "Meta-RL input, and the observation alone (with the Meta-RL input the policy can "
        "carry the bit in its own actions, since only the last action is rewarded).",
        "",
        f"- Budget (steps per seed): {meta.get('budget', '?')}.",
        f"- Machine: {machine_line(meta.get('machine', {}))}.",
        f"- Wall time of the cells reported here: {duration(total)} ({len(cells)} cells).",
    ]
    lines += invocation_lines(meta)
    lines.append("")
    for inputs in INPUTS:
        lines += _tables(cells, inputs)
    lines += ["![MemoryChain boxplots](memory_chain.png)", ""]
    notes = store.path.with_name("memory_chain_notes.md")
    if notes.exists():
        lines += ["## Notes", "", notes.read_text().strip(), ""]
    return "\n".join(lines)


def _boxes(axes, cells, inputs: str, field: str) -> None:
    lengths, methods = _present(cells, inputs)
    width = 0.8 / max(1, len(methods))
    for j, m in enumerate(methods):
        data, positions = [], []
        for i, n in enumerate(lengths):
            record = cells.get(_key(n, m, inputs))
            if record is None or "error" in record:
                continue
            values = np.asarray(record[field], float)
            data.append(values[np.isfinite(values)])
            positions.append(i - 0.4 + width * (j + 0.5))
        if not data:
            continue
        color = f"C{list(METHODS).index(m)}"
        axes.boxplot(
            data,
            positions=positions,
            widths=width * 0.85,
            patch_artist=True,
            boxprops=dict(facecolor=color, alpha=0.6),
            medianprops=dict(color="black"),
            flierprops=dict(markersize=3),
            manage_ticks=False,
        )
    axes.set_xticks(range(len(lengths)), [str(n) for n in lengths])
    axes.set_xlabel("memory length")
    axes.grid(axis="y", alpha=0.3)


def render_figure(store: ResultStore, path: Path) -> None:
    """Per input setting: boxplots of the best evaluation return, and of the step at which it
    was reached, per memory length and method."""
    cells = store.cells
    settings = [i for i in INPUTS if _present(cells, i)[0]]
    figure = Figure(figsize=(12, 4.0 * max(1, len(settings)) + 0.6), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(max(1, len(settings)), 2, squeeze=False)
    for row, inputs in zip(grid, settings, strict=False):
        _boxes(row[0], cells, inputs, "best_eval_return")
        row[0].set_ylim(-1.05, 1.05)
        row[0].axhline(0.0, color="gray", linewidth=0.8)
        row[0].set_ylabel("best evaluation return")
        row[0].set_title(f"best return — {INPUTS[inputs]}", fontsize="medium")
        _boxes(row[1], cells, inputs, "best_step")
        row[1].set_yscale("log")
        row[1].set_ylabel("step of the best evaluation")
        row[1].set_title(f"steps to the best — {INPUTS[inputs]}", fontsize="medium")
    used = [m for m in METHODS if any(_present(cells, i)[1].count(m) for i in settings)]
    handles = [Patch(facecolor=f"C{list(METHODS).index(m)}", alpha=0.6) for m in used]
    figure.legend(
        handles,
        [METHODS[m][0] for m in used],
        fontsize="small",
        ncols=len(used),
        loc="outside lower center",
    )
    figure.suptitle(f"MemoryChain (bsuite), {store.meta.get('seeds')} seeds per box")
    figure.savefig(path, dpi=110)


def write_report(store: ResultStore, prefix: Path) -> None:
    write_atomic(prefix.with_suffix(".md"), render_markdown(store))
    render_figure(store, prefix.with_suffix(".png"))


def run_sweep(
    *,
    lengths: Sequence[int] = LENGTHS,
    methods: Sequence[str] = tuple(METHODS),
    inputs: Sequence[str] = tuple(INPUTS),
    steps: int = STEPS,
    caps: dict[str, int] | None = None,
    seeds: int = 10,
    eval_every: int = 10_000,
    patience: int | None = 20,
    prefix: Path = RESULTS / "memory_chain",
    force: bool = False,
    progress: bool = True,
    command: str = "",
    overrides: dict[str, Any] | None = None,
    rtrrl_overrides: dict[str, Any] | None = None,
) -> ResultStore:
    """Run every (input setting, method, length) cell, writing ``<prefix>.{json,md,png}``
    after each.

    Arguments mirror the CLI; `overrides` are extra `TrainConfig` fields for every cell,
    `rtrrl_overrides` for the RTRRL (non-PPO) cells only.
    """
    caps = CAPS if caps is None else caps
    check_choices("method", methods, list(METHODS))
    check_choices("input setting", inputs, list(INPUTS))
    prefix.parent.mkdir(parents=True, exist_ok=True)
    store = ResultStore(prefix.with_suffix(".json"))
    store.meta.update(
        seeds=seeds,
        budget=f"{steps:,} steps per seed"
        + "".join(f"; {m} capped at {c:,}" for m, c in caps.items() if m in methods),
    )
    cells = [
        Cell(
            _key(n, m, i),
            cell_config(
                n,
                m,
                min(steps, caps.get(m, steps)),
                inputs=i,
                seeds=seeds,
                eval_every=eval_every,
                patience=patience,
                **(overrides or {}),
                **({} if METHODS[m][1].get("algo") == "ppo" else rtrrl_overrides or {}),
            ),
            dict(memory_length=n, method=m, inputs=i),
        )
        for i in inputs
        for m in methods
        for n in lengths
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
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--inputs", default=",".join(INPUTS), help="meta-rl, obs or both")
    parser.add_argument("--steps", type=int, default=STEPS, help="budget per seed")
    parser.add_argument("--rtrl-steps", type=int, default=CAPS["rtrl"], help="RTRL's budget")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--patience", type=int, default=20, help="0: no early stopping")
    parser.add_argument(
        "--max-grad-norm",
        type=float,
        help="RTRRL methods' gradient clip (default: the library's 1.0; 0: off). PPO keeps 0.5.",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "memory_chain")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if args.report_only:
        write_report(ResultStore(args.out.with_suffix(".json")), args.out)
        return
    run_sweep(
        lengths=[int(n) for n in args.lengths.split(",")],
        methods=[m.strip() for m in args.methods.split(",")],
        inputs=[i.strip() for i in args.inputs.split(",")],
        steps=args.steps,
        caps={"rtrl": args.rtrl_steps},
        seeds=args.seeds,
        patience=args.patience or None,
        rtrrl_overrides={} if args.max_grad_norm is None else {"max_grad_norm": args.max_grad_norm},
        prefix=args.out,
        force=args.force,
        progress=not args.no_progress,
        command="python benchmarks/memory_chain.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    )


if __name__ == "__main__":
    main()
