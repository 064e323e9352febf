"""Evaluation noise and early stopping: how many episodes an evaluation needs, how biased
"best of N evaluations" is, and which patience rule stops runs without cutting learning short.

Two parts:

1. **Noise of one evaluation.** For each task of ``stability.py``, RTRRL (RFLO CTRNN-32,
   default preset with constant step sizes, 3 seeds) is trained for the task's budget; its
   states after 10 %, 30 % and 100 % of the budget are then each evaluated 20 times with
   fresh keys at 8, 16, 32 and 64 episodes per evaluation. The standard deviation of those 20 evaluation means
   (median over seeds and the three points) is the noise of one evaluation at that size,
   which falls like ``1/√episodes`` (a converged, deterministic policy has none, hence the
   points during learning).
2. **Early stopping replayed.** On the learning curves of ``stability.json`` (5 seeds, no
   early stopping, an evaluation every 10k steps) each rule is replayed offline: a seed stops
   after ``patience`` evaluations without a new best of the (optionally smoothed) return.
   Per rule: the fraction of seeds stopped before the end, the median step at which they
   stopped, and the loss it caused (the final evaluation of the full run minus the one at the
   stopping point, median over seeds). The "best of N" bias is the median over seeds of the
   best evaluation minus the mean of the last 20 evaluations, next to the noise of part 1.

Usage::

    python benchmarks/early_stopping.py    # about 15 minutes on one core; needs stability.json

Writes ``benchmarks/results/early_stopping.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
from _experiments import (
    RESULTS,
    ResultStore,
    duration,
    fmt,
    machine_info,
    machine_line,
    markdown_table as table,
)
from stability import TASKS, _key

from rtrrl import prng
from rtrrl.app.config import TrainConfig, build_algorithm, build_env
from rtrrl.app.runs import write_atomic
from rtrrl.training import train

EPISODES = (8, 16, 32, 64)
REPEATS = 20
NOISE_SEEDS = 3

RULES: dict[str, tuple[int | None, int]] = {
    # name: (patience in evaluations, smoothing window in evaluations)
    "patience 20, raw": (20, 1),
    "patience 20, mean of 5": (20, 5),
    "patience 50, raw": (50, 1),
    "patience 50, mean of 5": (50, 5),
    "patience 100, mean of 5": (100, 5),
}


def smoothed(curve: np.ndarray, window: int) -> np.ndarray:
    """The mean of the last `window` evaluations at each evaluation (fewer at the start)."""
    cumulative = np.cumsum(np.concatenate([[0.0], curve]))
    index = np.arange(1, len(curve) + 1)
    start = np.maximum(0, index - window)
    return (cumulative[index] - cumulative[start]) / (index - start)


def stop_index(curve: np.ndarray, patience: int | None, window: int) -> int:
    """The index of the evaluation after which a seed stops (the last one if it never does),
    by the rule of `rtrrl.train`: stop after `patience` evaluations without a new best of the
    (smoothed) return."""
    if patience is None:
        return len(curve) - 1
    values = smoothed(curve, window)
    best, since = -np.inf, 0
    for i, value in enumerate(values):
        if value > best:
            best, since = value, 0
        else:
            since += 1
            if since >= patience:
                return i
    return len(curve) - 1


def replay(store: ResultStore, method: str) -> dict[str, Any]:
    """Every rule on every task's recorded curves of `method` (no early stopping there)."""
    out: dict[str, Any] = {}
    for task in TASKS:
        record = store.cells.get(_key(task, method))
        if record is None or "error" in record:
            continue
        curves = np.asarray(record["eval_returns"], dtype=float)  # (evals, seeds)
        steps = np.asarray(record["steps"])
        rules = {}
        for name, (patience, window) in RULES.items():
            stops = [stop_index(curves[:, s], patience, window) for s in range(curves.shape[1])]
            early = [i < len(steps) - 1 for i in stops]
            rules[name] = {
                "stopped": float(np.mean(early)),
                "stop_step": float(np.median([steps[i] for i in stops])),
                "loss": float(
                    np.median([curves[-1, s] - curves[i, s] for s, i in enumerate(stops)])
                ),
                "best_so_far": float(
                    np.median([np.max(curves[: i + 1, s]) for s, i in enumerate(stops)])
                ),
            }
        tail = curves[-20:]
        out[task] = {
            "rules": rules,
            "best": float(np.median(np.max(curves, axis=0))),
            "final": float(np.median(curves[-1])),
            "tail_mean": float(np.median(np.mean(tail, axis=0))),
            "best_minus_tail": float(np.median(np.max(curves, axis=0) - np.mean(tail, axis=0))),
            "evaluations": int(len(steps)),
        }
    return out


def noise_config(task: str, steps: int | None = None) -> TrainConfig:
    """The training run of part 1: RFLO with the default preset's settings but constant step
    sizes, so that the states after 10 %, 30 % and 100 % are all policies still learning."""
    spec = TASKS[task]
    return TrainConfig(
        env=spec.env,
        env_option=spec.env_option,
        steps=steps or spec.steps,
        seeds=NOISE_SEEDS,
        eval_every=(steps or spec.steps) // 10,
        eval_envs=spec.eval_envs,
        eval_steps=spec.eval_steps,
        patience=None,
        lr_decay="none",
    )


def evaluation_noise(task: str, steps: int | None = None) -> dict[str, Any]:
    """Train `task` (`noise_config`, 3 seeds), then evaluate each seed's states `REPEATS`
    times at each size in `EPISODES`; the std of the repeats, per seed."""
    spec = TASKS[task]
    config = noise_config(task, steps)
    env = build_env(config)
    algorithm = build_algorithm(config, env)
    snapshots = {}
    chunks = {1, 3, 10}  # of the 10 evaluations: after 10 %, 30 % and 100 % of the budget

    def keep(states, book):
        if book.chunk in chunks:
            snapshots[book.chunk] = states

    result = train(algorithm, env, config.loop(), progress=False, on_chunk=keep)
    snapshots.setdefault(10, result.final_state)
    learner = algorithm(prng.key(config.seed))

    @eqx.filter_jit
    def evaluate(state, key, episodes):
        return learner.evaluate(state, env, key, num_envs=episodes, num_steps=spec.eval_steps)

    noise: dict[str, Any] = {}
    for episodes in EPISODES:
        stds, means = [], []
        for states in snapshots.values():
            for seed in range(NOISE_SEEDS):
                state = jax.tree.map(lambda x, i=seed: x[i] if eqx.is_array(x) else x, states)
                values = [
                    float(np.mean(evaluate(state, jax.random.key(100 * r + episodes), episodes)))
                    for r in range(REPEATS)
                ]
                stds.append(float(np.std(values, ddof=1)))
                means.append(float(np.mean(values)))
        noise[str(episodes)] = {"std": stds, "mean": means}
    return {"config": config.to_json(), "noise": noise, "wall_seconds": result.run_seconds}


def render_markdown(store: ResultStore, replays: dict[str, Any]) -> str:
    meta = store.meta
    lines = [
        "# Evaluation noise and early stopping",
        "",
        "Generated by `benchmarks/early_stopping.py` (the reading is in `learning_notes.md`).",
        "",
        f"- Machine: {machine_line(meta.get('machine', {}))}.",
        "",
        "## Noise of one evaluation",
        "",
        "RFLO CTRNN-32 with the default preset's settings and constant step sizes (`--lr-decay "
        f"none`), trained for each task's budget ({NOISE_SEEDS} "
        f"seeds); its states after 10 %, 30 % and 100 % of the budget each evaluated {REPEATS} "
        "times per size with fresh keys (sampled actions). Entries: standard deviation of one "
        "evaluation's mean return (median over seeds and the three points; 0 where the policy "
        "is deterministic there), and the mean return over them.",
        "",
    ]
    header = ["task", *[f"{e} episodes" for e in EPISODES], "mean return"]
    rows = []
    for task in TASKS:
        cell = store.cells.get(f"noise|{task}")
        if cell is None:
            continue
        noise = cell["noise"]
        rows.append(
            [task]
            + [fmt(float(np.median(noise[str(e)]["std"]))) for e in EPISODES]
            + [fmt(float(np.median(noise[str(EPISODES[-1])]["mean"])))]
        )
    lines += [table(header, rows), ""]
    for method, per_task in replays.items():
        lines += [
            f"## Early stopping replayed on `stability.json` ({method})",
            "",
            "Each rule replayed on the recorded curves (5 seeds, an evaluation every 10k "
            "steps, no early stopping in the runs). *stopped*: fraction of seeds the rule "
            "stops before the budget; *at*: median step of stopping; *lost*: median over "
            "seeds of (final evaluation of the full run − evaluation at the stop). "
            "*best − tail*: median over seeds of the best evaluation minus the mean of the "
            "last 20, the optimism of reporting the best of many noisy evaluations.",
            "",
        ]
        header = ["task", "best", "final", "best − tail", *RULES]
        rows = []
        for task, numbers in per_task.items():
            cells = [
                f"{r['stopped']:.0%} at {r['stop_step'] / 1000:.0f}k, lost {fmt(r['loss'])}"
                for r in numbers["rules"].values()
            ]
            rows.append(
                [
                    task,
                    fmt(numbers["best"]),
                    fmt(numbers["final"]),
                    fmt(numbers["best_minus_tail"]),
                    *cells,
                ]
            )
        lines += [table(header, rows), ""]
    total = sum(c.get("wall_seconds", 0.0) for c in store.cells.values())
    lines += [f"Training time of part 1: {duration(total)}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--stability", type=Path, default=RESULTS / "stability.json")
    parser.add_argument("--out", type=Path, default=RESULTS / "early_stopping")
    parser.add_argument("--steps", type=int, help="training budget of part 1 (default: per task)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    store = ResultStore(args.out.with_suffix(".json"))
    if not args.report_only:
        store.meta["machine"] = machine_info()
        store.meta["command"] = "python benchmarks/early_stopping.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        for task in [t.strip() for t in args.tasks.split(",")]:
            if store.done(f"noise|{task}", noise_config(task, args.steps)):
                print(f"{task}: done already, skipped", flush=True)
                continue
            store.put(f"noise|{task}", evaluation_noise(task, args.steps))
            print(f"{task}: done", flush=True)
    stability = ResultStore(args.stability)
    replays = {m: replay(stability, m) for m in ("default-rflo", "constant-rflo", "paper-rflo")}
    store.meta["replays"] = replays
    store.save()
    write_atomic(args.out.with_suffix(".md"), render_markdown(store, replays))


if __name__ == "__main__":
    main()
