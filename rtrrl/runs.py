"""Run folders: what ``rtrrl train`` writes, and how a run is resumed or evaluated.

A run folder holds

- ``config.json``: the full `TrainConfig`;
- ``metrics.csv``: one row per (evaluation, seed) with `METRIC_COLUMNS`;
- ``summary.json``: best evaluation return per seed and their median, final returns, total
  steps, wall time, throughput;
- ``learning_curve.png``: mean and min-max over seeds of the evaluation return;
- ``checkpoint.rtrrl``: everything needed to resume (see `rtrrl.checkpoint`).

Every file is written to a temporary name and renamed into place, so a crash or Ctrl-C never
leaves a half-written file, and an existing run is never overwritten unless resumed.
"""

import csv
import dataclasses
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from . import prng
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from .config import TrainConfig, build_algorithm, build_env
from .cpu_threads import configure_cpu_threads
from .plotting import plot_runs, read_metrics
from .training import METRIC_COLUMNS, NonFiniteError, TrainProgress, TrainResult, init_states, train

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.csv"
SUMMARY_NAME = "summary.json"
PLOT_NAME = "learning_curve.png"


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def metrics_text(rows: list[dict[str, float | int]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(METRIC_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def summary(result: TrainResult, config: TrainConfig, wall_seconds: float) -> dict[str, Any]:
    def clean(values):
        return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, float)]

    best = np.asarray(result.best_eval_return, float)
    return {
        "env": config.env,
        "algo": config.algo,
        "cell": config.cell,
        "estimator": None if config.algo == "ppo" or config.cell == "linear" else config.estimator,
        "seeds": result.seeds,
        "best_eval_return": clean(best),
        "median_best_eval_return": float(np.median(best)) if best.size else None,
        "best_step": [int(s) for s in result.best_step],
        "final_eval_return": clean(result.final_eval_return),
        "median_final_eval_return": float(np.nanmedian(result.final_eval_return))
        if np.isfinite(result.final_eval_return).any()
        else None,
        "stopped_early": [bool(s) for s in result.stopped_early],
        "total_steps_per_seed": int(result.total_steps),
        "total_env_steps": int(result.total_steps * len(result.seeds)),
        "wall_seconds": wall_seconds,
        "compile_seconds": result.compile_seconds,
        "env_steps_per_second": result.env_steps_per_second,
        "num_compilations": result.num_compilations,
    }


def _check_new_run_dir(out: Path) -> None:
    if (out / CHECKPOINT_NAME).exists() or (out / METRICS_NAME).exists():
        raise FileExistsError(
            f"{out} already holds a run. Continue it with `rtrrl train --resume {out}`, or "
            "choose another folder with --out (nothing there is overwritten)."
        )


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The `TrainConfig` saved in a run folder."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.exists():
        raise FileNotFoundError(f"No {CONFIG_NAME} in {run_dir}: is this an rtrrl run folder?")
    data = json.loads(path.read_text())
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for name in ("out", "resume", "config"):
        if data.get(name) is not None:
            data[name] = Path(data[name])
    data["env_option"] = tuple(data.get("env_option", ()))
    return TrainConfig(**{k: v for k, v in data.items() if k in fields})


def run_training(config: TrainConfig, *, progress: bool = True, log=print) -> TrainResult:
    """Train as `config` says, writing the run folder; resumes if ``config.resume`` is set.

    Raises:
        FileExistsError: the output folder already holds a run and this is not a resume.
        rtrrl.checkpoint.CheckpointError: a resume from a corrupt or mismatched checkpoint.
        rtrrl.training.NonFiniteError: training diverged (the last good checkpoint is kept).
    """
    resuming = config.resume is not None
    out = config.resume if resuming else config.out_dir()
    config = dataclasses.replace(config, out=out, resume=None)
    cpu_threads = configure_cpu_threads(config)  # before anything starts JAX's CPU backend
    env = build_env(config)
    algorithm = build_algorithm(config, env)
    loop = config.loop()
    resume = None
    if resuming:
        like = init_states(algorithm, env, loop)
        states, book, _ = load_checkpoint(out, like, config.fingerprint())
        resume = (states, book)
        log(f"Resuming {out} from step {book.steps_done} (evaluation {book.chunk}).")
    else:
        _check_new_run_dir(out)
    write_atomic(out / CONFIG_NAME, json.dumps(config.to_json(), indent=2) + "\n")
    fingerprint = config.fingerprint()

    def save(states, book: TrainProgress) -> None:
        save_checkpoint(out, states, book, fingerprint)

    def on_chunk(states, book: TrainProgress) -> None:
        write_atomic(out / METRICS_NAME, metrics_text(book.rows))
        if book.chunk % config.checkpoint_every == 0:
            save(states, book)

    def on_interrupt(states, book: TrainProgress) -> None:
        write_atomic(out / METRICS_NAME, metrics_text(book.rows))
        save(states, book)
        log(f"\nInterrupted: checkpoint saved. Continue with `rtrrl train --resume {out}`.")

    start = time.perf_counter()
    try:
        result = train(
            algorithm,
            env,
            loop,
            progress=progress,
            resume=resume,
            on_chunk=on_chunk,
            on_interrupt=on_interrupt,
        )
    except NonFiniteError as error:
        raise NonFiniteError(f"{error} Run folder: {out}.") from None
    wall = time.perf_counter() - start
    save(result.final_state, result.progress)
    write_atomic(out / METRICS_NAME, metrics_text(result.progress.rows))
    info = summary(result, config, wall) | {"cpu_threads": cpu_threads}
    write_atomic(out / SUMMARY_NAME, json.dumps(info, indent=2) + "\n")
    plot_runs({config.run_name(): read_metrics(out)}, out / PLOT_NAME, title=config.env)
    return result


def evaluate_run(
    run_dir: str | Path, *, episodes: int = 16, greedy: bool = False, seed: int = 12345
) -> dict[int, float]:
    """Mean return over `episodes` of each seed's checkpointed agent (no learning)."""
    config = load_run_config(run_dir)
    env = build_env(config)
    algorithm = build_algorithm(config, env)
    loop = config.loop()
    like = init_states(algorithm, env, loop)
    states, _, _ = load_checkpoint(run_dir, like, config.fingerprint())
    template = algorithm(prng.key(config.seed))
    eval_steps = config.eval_steps or getattr(env, "max_episode_steps", None) or 1000

    def one(state, key):
        return template.evaluate(
            state, env, key, num_envs=episodes, num_steps=int(eval_steps), greedy=greedy
        ).mean()

    keys = jax.random.split(prng.key(seed), config.seeds)
    returns = jax.jit(jax.vmap(one))(states, keys)
    return {config.seed + i: float(r) for i, r in enumerate(np.asarray(returns))}
