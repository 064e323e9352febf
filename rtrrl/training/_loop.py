"""The compiled training loop: chunks of `lax.scan`, evaluation, early stopping, seeds.

One *chunk* is ``steps_per_chunk`` online steps of every seed followed by one evaluation, all
in one compiled program that is `jax.vmap`-ped over seeds. Python runs only between chunks
(progress bar, metrics, early stopping, checkpoints), so the per-step cost is that of XLA.

Keys are a pure function of ``(seed, chunk index)``: seed ``s`` uses ``rtrrl.prng.key(s)``,
so seed 3 of a run with ``seed=0, num_seeds=5`` is the same as a run with ``seed=3``, and a
run resumed from a checkpoint replays exactly the chunks it would have run.
"""

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import prng
from .._types import PRNGKey, PyTree
from ..algorithms import AbstractAlgorithm
from ..envs import AbstractEnvironment
from . import _devices, _early_stopping
from ._chunk import build_learner, init_states, make_chunk_function, seed_keys
from ._progress import Progress
from ._records import (
    ChunkPlan,
    LoopConfig,
    NonFiniteError,
    TrainProgress,
    TrainResult,
    fresh_progress,
)
from ._resume import check_resume_fits


def train(
    algorithm: AbstractAlgorithm | Callable[[PRNGKey], AbstractAlgorithm],
    env: AbstractEnvironment,
    config: LoopConfig,
    *,
    progress: bool = True,
    resume: tuple[PyTree[Any], TrainProgress] | None = None,
    on_chunk: Callable[[PyTree[Any], TrainProgress], None] | None = None,
    on_interrupt: Callable[[PyTree[Any], TrainProgress], None] | None = None,
    run_seeds: Sequence[int] | None = None,
    stop_non_finite: bool = False,
    stop_check: Callable[[], None] | None = None,
) -> TrainResult:
    """Train `algorithm` on `env` for ``config.total_steps`` environment steps per seed.

    Each call compiles its chunk program once (a few seconds on CPU; ``compile_seconds`` in
    the result) and never again between chunks. A second call builds a new program, so a
    sweep pays one compilation per call; JAX's persistent compilation cache
    (``jax_compilation_cache_dir``) turns repeated compilations of equal programs into loads.

    Arguments:
        algorithm: a learner (all seeds start from its parameters) or a function
            ``key -> learner`` (each seed builds its own, e.g. a freshly initialised cell).
        env: the environment (unbatched; ``config.num_envs`` copies run in parallel).
        config: loop sizes (`LoopConfig`); ``config.devices`` splits the seeds over
            devices (the chunk program under `jax.shard_map`, states kept on their devices),
            and in a multi-process run (`initialize_distributed`) over every process's.
        progress: show a progress bar with steps/s and the latest evaluation return (on a
            terminal; elsewhere, such as a log file, one line per evaluation).
        resume: ``(states, progress)`` from a checkpoint; the run continues exactly where
            that one stopped.
        on_chunk: called after every chunk with the states and the bookkeeping
            (checkpoints, metrics files).
        on_interrupt: called with the last completed chunk's states on Ctrl-C, before the
            `KeyboardInterrupt` propagates.
        run_seeds: the seed whose keys each of the ``num_seeds`` entries of the batch axis
            uses (default ``seed + i``); results and rows still label entry ``i`` as seed
            ``seed + i``. `rtrrl.training.train_swept` runs every configuration of a sweep
            with the same seeds this way.
        stop_non_finite: instead of raising `NonFiniteError`, stop each run whose chunk
            produced a NaN or infinity, keeping its state and rows of the chunk before (it
            reads as stopped early); the other runs go on. Sweeps use it, where a step size
            too large for one configuration must not end the others.
        stop_check: called where nothing is in flight: before and after compiling, and
            before every further chunk (after ``on_chunk``); a `KeyboardInterrupt` it raises
            stops the run as Ctrl-C does. ``rtrrl train`` passes one that raises the signals
            it has received: a `KeyboardInterrupt` raised by Python's own Ctrl-C handler
            while XLA compiles or runs can crash the process.

    Returns:
        A `TrainResult`.

    Raises:
        NonFiniteError: a parameter or TD error became NaN/inf (unless `stop_non_finite`);
            nothing of the failing chunk is kept (``on_chunk`` was last called with the good states).
    """
    template = build_learner(algorithm, prng.key(config.seed))
    plan = ChunkPlan.of(config, template)
    chunk_fn = make_chunk_function(template, env, config, plan)
    mesh = _devices.make_mesh(config.devices, config.num_seeds, config.env_devices, config.num_envs)
    _, run_keys = seed_keys(config, run_seeds)
    seeds = [config.seed + i for i in range(config.num_seeds)]
    states, book = _starting_point(algorithm, env, config, plan, resume, run_seeds)
    if book.chunk >= plan.num_chunks or not any(book.active):
        return _result(book, config, seeds, states, compilations=0)  # nothing left to run
    specs = _state_specs(template, states, mesh)
    if mesh is not None:
        chunk_fn = _devices.shard_chunk(chunk_fn, mesh, specs)
    states = _devices.shard_seeds(states, mesh, specs)
    run_keys = _devices.shard_seeds(run_keys, mesh)

    # The (states, bookkeeping) pair of the last completed chunk (at first, the starting
    # point, so that a Ctrl-C while compiling saves a checkpoint to resume from). It is
    # replaced by a single assignment, so a Ctrl-C arriving anywhere (even inside the
    # recording of a chunk) saves a consistent pair: the states and the rows of one chunk.
    committed = (states, book)
    check = stop_check or (lambda: None)
    bar = None
    try:
        check()
        start = time.perf_counter()
        wall_before = book.wall_seconds
        inputs = _devices.chunk_inputs(book.chunk, book.active, mesh)
        compiled = chunk_fn.lower(states, run_keys, *inputs).compile()
        book.compile_seconds += time.perf_counter() - start
        bar = Progress(plan, book, enabled=progress and jax.process_index() == 0)
        while book.chunk < plan.num_chunks and any(book.active):
            check()  # after the compilation, then after each chunk that another follows
            tic = time.perf_counter()
            new_states, *metrics = compiled(
                states, run_keys, *_devices.chunk_inputs(book.chunk, book.active, mesh)
            )
            totals, eval_return, extra = _devices.host_copy(metrics)
            eval_return = np.asarray(eval_return)
            seconds = time.perf_counter() - tic
            finite = _finite(totals, eval_return, seeds, book, plan, stop_non_finite)
            new_book = _next_progress(
                book, plan, seconds, wall_before + time.perf_counter() - start
            )
            if not finite.all():  # only with `stop_non_finite`: those runs stop here
                new_states = _keep_where(finite, new_states, states)
                new_book.active = [a and bool(f) for a, f in zip(book.active, finite, strict=True)]
            _early_stopping.record_evaluation(
                new_book, config, plan, seeds, totals, eval_return, seconds, extra
            )
            committed = (new_states, new_book)
            states, book = committed
            bar.show(plan, config, book, eval_return, seconds)
            if on_chunk is not None:
                on_chunk(states, book)
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt(*committed)
        raise
    finally:
        if bar is not None:
            bar.close()
    return _result(book, config, seeds, _devices.host_copy(states), compilations=1)


def _state_specs(template: AbstractAlgorithm, states, mesh):
    """The states' partition specs on `mesh` (`rtrrl.training._devices.state_specs`), or
    ``None`` where every leaf is split along its seed axis alone."""
    if not _devices.has_env_axis(mesh):
        return None
    env_leaves = template.env_leaves(states)
    if env_leaves is None:
        raise ValueError(
            f"`env_devices` (--env-devices) > 1: {type(template).__name__} cannot split a "
            "seed's environments over devices (RTRRL can). Pass env_devices=1 "
            "(--env-devices 1); `devices` still splits the seeds."
        )
    return _devices.state_specs(states, env_leaves, mesh)


def _starting_point(algorithm, env, config: LoopConfig, plan: ChunkPlan, resume, run_seeds):
    """``(states, bookkeeping)`` to start from: fresh ones, or a checked resume."""
    if resume is None:
        states = init_states(algorithm, env, config, run_seeds)
        return states, fresh_progress(config.num_seeds)
    states, book = resume
    check_resume_fits(states, book, algorithm, env, config, plan)
    book = dataclasses.replace(book, rows=list(book.rows))
    if len(book.best_smoothed) != config.num_seeds:
        # Saved before smoothed early stopping existed: it compared single evaluations.
        book = dataclasses.replace(book, best_smoothed=list(book.best_eval_return))
    return states, book


def _finite(
    totals, eval_return, seeds, book: TrainProgress, plan: ChunkPlan, stop: bool
) -> np.ndarray:
    """Which runs' chunk stayed finite; unless `stop`, raise `NonFiniteError` naming the
    seeds whose chunk produced a NaN or infinity."""
    finite = np.asarray(totals.all_finite) & np.isfinite(eval_return)
    if stop:  # a run that already stopped keeps its state whatever its chunk computed
        return finite | ~np.asarray(book.active)
    if not finite.all():
        bad = [seeds[i] for i in np.flatnonzero(~finite)]
        raise NonFiniteError(
            f"Training produced a non-finite parameter or TD error for seed(s) {bad} in "
            f"the chunk ending at step {book.steps_done + plan.env_steps_per_chunk}. "
            "Lower the learning rates or max_grad_norm (the gradient clip), or "
            "check the environment's rewards."
        )
    return finite


def _keep_where(keep: np.ndarray, new, old):
    """`new` states, but `old` ones for the runs where `keep` is false (batch axis first)."""
    mask = jnp.asarray(keep)

    def pick(a, b):
        if not eqx.is_array(a):
            return a
        return jnp.where(mask.reshape(mask.shape + (1,) * (jnp.ndim(a) - 1)), a, b)

    return jax.tree.map(pick, new, old)


def _next_progress(
    book: TrainProgress, plan: ChunkPlan, seconds: float, wall_seconds: float
) -> TrainProgress:
    """A copy of `book` (lists included) advanced by one chunk, before its rows are added."""
    return dataclasses.replace(
        book,
        chunk=book.chunk + 1,
        steps_done=book.steps_done + plan.env_steps_per_chunk,
        run_seconds=book.run_seconds + seconds,
        wall_seconds=wall_seconds,
        rows=list(book.rows),
        best_eval_return=list(book.best_eval_return),
        best_step=list(book.best_step),
        evals_since_best=list(book.evals_since_best),
        best_smoothed=list(book.best_smoothed),
        active=list(book.active),
    )


def _result(
    book: TrainProgress, config: LoopConfig, seeds: list[int], states, *, compilations: int
) -> TrainResult:
    """The `TrainResult` of `book`: learning curves per seed, bests, throughput."""
    steps = sorted({row["step"] for row in book.rows})
    index = {step: k for k, step in enumerate(steps)}
    shape = (len(steps), len(seeds))
    curves = {name: np.full(shape, np.nan) for name in ("eval_return", "train_return", "td_error")}
    for row in book.rows:
        for name, curve in curves.items():
            curve[index[row["step"]], seeds.index(cast(int, row["seed"]))] = row[name]
    final = np.array(
        [
            next((r["eval_return"] for r in reversed(book.rows) if r["seed"] == s), np.nan)
            for s in seeds
        ]
    )
    total_env_steps = book.steps_done * config.num_seeds
    return TrainResult(
        seeds=seeds,
        steps=np.asarray(steps),
        eval_returns=curves["eval_return"],
        train_returns=curves["train_return"],
        td_errors=curves["td_error"],
        best_eval_return=np.asarray(book.best_eval_return),
        best_step=np.asarray(book.best_step),
        final_eval_return=final,
        stopped_early=~np.asarray(book.active),
        total_steps=book.steps_done,
        env_steps_per_second=total_env_steps / book.run_seconds if book.run_seconds else math.nan,
        run_seconds=book.run_seconds,
        compile_seconds=book.compile_seconds,
        num_compilations=compilations,
        final_state=states,
        progress=book,
    )
