"""Run folders: what ``rtrrl train`` writes, and how a run is resumed or evaluated.

A run folder holds

- ``config.json``: the full `TrainConfig` as given, and under ``"effective"`` the values in
  use (`rtrrl.app.effective`);
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
import difflib
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .. import prng
from .._types import PRNGKey
from ..envs import AbstractEnvironment
from ..training import (
    METRIC_COLUMNS,
    ChunkPlan,
    NonFiniteError,
    TrainProgress,
    TrainResult,
    evaluation_steps,
    host_copy,
    init_states,
    initialize_distributed,
    reactivate,
    train,
)
from ._files import write_bytes_atomic
from ._run_lock import LOCK_NAME, RunFolderBusy as RunFolderBusy, run_folder_lock
from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig, build_algorithm, build_env
from .cpu_codegen import configure_cpu_codegen
from .cpu_threads import configure_cpu_threads
from .effective import EFFECTIVE_KEY, effective_settings
from .plotting import plot_runs, read_metrics

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.csv"
SUMMARY_NAME = "summary.json"
PLOT_NAME = "learning_curve.png"
_RUN_FILES = (CONFIG_NAME, METRICS_NAME, SUMMARY_NAME, PLOT_NAME, CHECKPOINT_NAME)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and an atomic rename."""
    write_bytes_atomic(path, text.encode())


def metrics_text(rows: list[dict[str, float | int]]) -> str:
    """``metrics.csv``: the `METRIC_COLUMNS`, then any diagnostics the rows carry."""
    columns = list(METRIC_COLUMNS)
    for row in rows:
        columns += [name for name in row if name not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def summary(result: TrainResult, config: TrainConfig) -> dict[str, Any]:
    """The ``summary.json`` of a run. Times add up over the sessions of a resumed run:
    ``wall_seconds`` (all of training), ``compile_seconds``, ``run_seconds`` (the compiled
    chunks; ``env_steps_per_second`` is all seeds' steps over it)."""

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
        "wall_seconds": result.progress.wall_seconds,
        "compile_seconds": result.compile_seconds,
        "run_seconds": result.run_seconds,
        "env_steps_per_second": result.env_steps_per_second,
        "num_compilations": result.num_compilations,
    }


def _check_new_run_dir(out: Path) -> None:
    if (out / CHECKPOINT_NAME).exists() or (out / METRICS_NAME).exists():
        raise FileExistsError(
            f"{out} already holds a run. Continue it with `rtrrl train --resume {out}`, or "
            "choose another folder with --out (nothing there is overwritten)."
        )
    # A run that stopped before its first evaluation left at most its config (and the lock
    # and temporary files, which this run's lock makes stale); anything else is not ours.
    ours = {CONFIG_NAME, LOCK_NAME}
    foreign = sorted(
        p.name for p in out.iterdir() if p.name not in ours and not _is_temporary(p.name)
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise FileExistsError(
            f"{out} is not empty and holds no rtrrl run ({shown}): choose a new or empty "
            "folder with --out (nothing there is overwritten)."
        )


def _is_temporary(name: str) -> bool:
    """A temporary file of an atomic write of one of the run's files (``.<name>-XXXX``)."""
    return any(name.startswith(f".{own}-") for own in _RUN_FILES)


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The `TrainConfig` saved in a run folder."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.exists():
        raise FileNotFoundError(f"No {CONFIG_NAME} in {run_dir}: is this an rtrrl run folder?")
    if not path.is_file():
        raise ValueError(f"{path} is not a file: is {run_dir} an rtrrl run folder?")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}): the run folder is damaged."
        ) from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path} holds a JSON {type(data).__name__}, not the object of a run's settings: "
            "the run folder is damaged."
        )
    # The resolved values are for readers; the run is defined by the settings as given.
    data.pop(EFFECTIVE_KEY, None)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"{path} has unknown setting(s) {', '.join(map(repr, unknown))}{hint}: an edited or "
            "damaged run folder. Fix the key, or start a new run."
        )
    for name in ("out", "resume", "config"):
        if data.get(name) is not None:
            data[name] = Path(data[name])
    data["env_option"] = tuple(data.get("env_option", ()))
    # Folders written before presets existed ran the paper's settings, and their early
    # stopping compared single evaluations.
    data.setdefault("preset", "paper")
    data.setdefault("patience_window", 1)
    # ... and folders written before the step-size decay existed ran constant step sizes.
    data.setdefault("lr_decay", "none")
    return TrainConfig(**{k: v for k, v in data.items() if k in fields})


def run_training(
    config: TrainConfig,
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
    stop_check: Callable[[], None] | None = None,
) -> TrainResult:
    """Train as `config` says, writing the run folder; resumes if ``config.resume`` is set.

    The folder is locked for the run (`run_folder_lock`): a second process on it is refused.
    With ``config.distributed`` the process first joins its multi-process run; only process 0
    locks and writes the folder (the others read a resumed checkpoint from it, so it must be
    on a file system they share, and take part in every gather of the states).
    `stop_check` is called before the folder is touched, then as `rtrrl.training.train`
    says (before and after compiling, between chunks); a `KeyboardInterrupt` it raises stops
    the run as Ctrl-C does: a checkpoint of the last completed chunk (or of the starting
    point, before the first) once the folder is in use, nothing written before.

    Raises:
        FileExistsError: the output folder already holds a run and this is not a resume.
        RunFolderBusy: another process is running in the folder.
        rtrrl.checkpoint.CheckpointError: a resume from a corrupt or mismatched checkpoint.
        rtrrl.training.NonFiniteError: training diverged (the last good checkpoint is kept).
    """
    resuming = config.resume is not None
    out = config.resume if config.resume is not None else config.out_dir()
    config = dataclasses.replace(config, out=out, resume=None)
    cpu_threads = configure_cpu_threads(config)  # before anything starts JAX's CPU backend
    configure_cpu_codegen(config)
    if config.distributed:
        initialize_distributed()  # also before any backend starts
    env = build_env(config)
    algorithm = build_algorithm(config, env)
    if resuming and not out.is_dir():
        raise FileNotFoundError(f"No run folder at {out}: nothing to resume.")
    stop_check = stop_check or (lambda: None)
    try:
        stop_check()
    except KeyboardInterrupt:
        log("\nInterrupted before training started: nothing was written.")
        raise
    if jax.process_index() != 0:  # process 0 writes; the others compute along, silently
        return _run_in_locked_folder(
            config,
            out,
            resuming,
            env,
            algorithm,
            cpu_threads,
            False,
            _quiet,
            stop_check,
            writer=False,
        )
    with run_folder_lock(out):
        return _run_in_locked_folder(
            config, out, resuming, env, algorithm, cpu_threads, progress, log, stop_check
        )


def _quiet(_: str) -> None:
    """The log of processes other than 0 of a multi-process run: process 0 speaks for all."""


def _remove_stale_temporaries(out: Path) -> None:
    """Delete the temporary files of atomic writes that a killed process left in `out`
    (``.<name>-XXXX``). Only called under the folder's lock: no writer is active."""
    for name in _RUN_FILES:
        for stale in out.glob(f".{name}-*"):
            stale.unlink(missing_ok=True)


def _resume_point(
    config: TrainConfig,
    out: Path,
    env: AbstractEnvironment,
    algorithm: Callable[[PRNGKey], Any],
    plan: ChunkPlan,
    log: Callable[[str], None],
) -> tuple[Any, TrainProgress]:
    """``(states, bookkeeping)`` of the checkpoint in `out`, checked against `config`: a
    checkpoint exists, a decaying run keeps its budget, ``--steps`` is not below the steps
    done; a changed ``--patience`` or ``--target-return`` may restart stopped seeds. Says what
    the resume will do."""
    loop = config.loop()
    if not (out / CHECKPOINT_NAME).exists():
        raise CheckpointError(
            f"No checkpoint at {out / CHECKPOINT_NAME}: the run stopped before it saved "
            f"one (it saves one every {config.checkpoint_every} evaluations, at the end and "
            "on Ctrl-C), so there is nothing to resume. Start it again with its flags "
            "(saved in config.json) and a new --out."
        )
    saved_steps = load_run_config(out).steps
    decays = config.algo == "rtrrl" and config.preset_value("lr_decay") == "linear"
    if decays and config.steps != saved_steps:
        raise ValueError(
            f"`steps` (--steps) = {config.steps:,} differs from the {saved_steps:,} that "
            f"{out} was started with, and its step sizes fall to zero at that budget "
            "(--lr-decay linear, the default preset's): resume it with its own --steps. "
            "To extend runs later, start them with --lr-decay none."
        )
    like = init_states(algorithm, env, loop)
    states, book, _ = load_checkpoint(out, like, config.fingerprint())
    if config.steps < book.steps_done:
        raise ValueError(
            f"`steps` (--steps) = {config.steps:,} is below the {book.steps_done:,} steps "
            f"per seed that {out} has already run; pass a larger --steps to continue it."
        )
    saved = load_run_config(out)
    if (saved.patience, saved.target_return) != (config.patience, config.target_return):
        # A new patience or target may restart stopped seeds.
        book = reactivate(book, config.patience, config.target_return)
    if not any(book.active):
        log(
            f"Nothing to resume in {out}: every seed stopped early (patience "
            f"{config.patience}, target return {config.target_return}). Pass a larger "
            "--patience or --target-return (or None) to go on."
        )
    elif book.chunk >= plan.num_chunks:
        log(
            f"Nothing to resume in {out}: it has run its {book.steps_done:,} steps "
            f"(--steps {config.steps:,}). Pass a larger --steps to go on."
        )
    else:
        log(f"Resuming {out} from step {book.steps_done:,} (evaluation {book.chunk}).")
    return states, book


def _run_in_locked_folder(
    config: TrainConfig,
    out: Path,
    resuming: bool,
    env: AbstractEnvironment,
    algorithm: Callable[[PRNGKey], Any],
    cpu_threads: str,
    progress: bool,
    log: Callable[[str], None],
    stop_check: Callable[[], None],
    *,
    writer: bool = True,
) -> TrainResult:
    """`run_training` once `out` is locked: the checks of the folder, then the run
    (`env` and `algorithm` as built from `config`, `cpu_threads` as configured). Only a
    `writer` (process 0 of a multi-process run) writes the folder."""
    if writer:
        _remove_stale_temporaries(out)
    loop = config.loop()
    plan = ChunkPlan.of(loop, algorithm(prng.key(config.seed)))
    resume = None
    if resuming:
        resume = _resume_point(config, out, env, algorithm, plan, log)
    elif writer:
        _check_new_run_dir(out)
    if plan.total_env_steps != config.steps:
        log(
            f"--steps {config.steps:,} is not a whole number of evaluation periods "
            f"({plan.env_steps_per_chunk:,} env-steps each): the run takes "
            f"{plan.total_env_steps:,} steps per seed."
        )
    saved = config.to_json() | {EFFECTIVE_KEY: effective_settings(config, env, cpu_threads)}
    if writer:
        write_atomic(out / CONFIG_NAME, json.dumps(saved, indent=2) + "\n")
    fingerprint = config.fingerprint()
    if config.seeds * config.num_envs >= 256:
        # Large batches take long before the first evaluation: say what is going on.
        log(
            f"{config.seeds:,} seeds × {config.num_envs:,} environments: compiling, then "
            f"{plan.env_steps_per_chunk * config.seeds:,} env-steps between progress updates."
        )

    def save(states, book: TrainProgress) -> None:
        states = host_copy(states)  # every process joins the gather of sharded states
        if writer:
            save_checkpoint(out, states, book, fingerprint)

    def write_metrics(book: TrainProgress) -> None:
        if writer:
            write_atomic(out / METRICS_NAME, metrics_text(book.rows))

    def on_chunk(states, book: TrainProgress) -> None:
        write_metrics(book)
        if book.chunk % config.checkpoint_every == 0:
            save(states, book)

    def on_interrupt(states, book: TrainProgress) -> None:
        write_metrics(book)
        save(states, book)
        log(f"\nInterrupted: checkpoint saved. Continue with `rtrrl train --resume {out}`.")

    try:
        result = train(
            algorithm,
            env,
            loop,
            progress=progress,
            resume=resume,
            on_chunk=on_chunk,
            on_interrupt=on_interrupt,
            stop_check=stop_check,
        )
    except NonFiniteError as error:
        kept = (
            "The last good checkpoint is kept."
            if (out / CHECKPOINT_NAME).exists()
            else f"No checkpoint had been saved yet (one is saved every "
            f"{config.checkpoint_every} evaluations: --checkpoint-every)."
        )
        raise NonFiniteError(f"{error} {kept} Run folder: {out}.") from None
    save(result.final_state, result.progress)
    if not writer:
        return result
    write_metrics(result.progress)
    info = summary(result, config) | {"cpu_threads": cpu_threads}
    write_atomic(out / SUMMARY_NAME, json.dumps(info, indent=2) + "\n")
    plot_runs({config.run_name(): read_metrics(out)}, out / PLOT_NAME, title=config.env)
    return result


def evaluate_run(
    run_dir: str | Path, *, episodes: int = 16, greedy: bool = False, seed: int = 12345
) -> dict[int, float]:
    """Mean return over `episodes` of each seed's checkpointed agent (no learning), compiled
    as the run was (``fast_cpu_codegen``, where this process has not started JAX yet)."""
    config = load_run_config(run_dir)
    configure_cpu_codegen(config)
    env = build_env(config)
    algorithm = build_algorithm(config, env)
    loop = config.loop()
    like = init_states(algorithm, env, loop)
    states, _, _ = load_checkpoint(run_dir, like, config.fingerprint())
    template = algorithm(prng.key(config.seed))
    eval_steps = evaluation_steps(loop, env)

    def one(state, key):
        return template.evaluate(
            state, env, key, num_envs=episodes, num_steps=int(eval_steps), greedy=greedy
        ).mean()

    keys = jax.random.split(prng.key(seed), config.seeds)
    returns = jax.jit(jax.vmap(one))(states, keys)
    return {config.seed + i: float(r) for i, r in enumerate(np.asarray(returns))}
