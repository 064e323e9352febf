"""The compiled training loop: chunks of `lax.scan`, evaluation, early stopping, seeds.

One *chunk* is ``steps_per_chunk`` online steps of every seed followed by one evaluation, all
in one compiled program that is `jax.vmap`-ped over seeds. Python runs only between chunks
(progress bar, metrics, early stopping, checkpoints), so the per-step cost is that of XLA.

Keys are a pure function of ``(seed, chunk index)``: seed ``s`` uses ``rtrrl.prng.key(s)``,
so seed 3 of a run with ``seed=0, num_seeds=5`` is the same as a run with ``seed=3``, and a
run resumed from a checkpoint replays exactly the chunks it would have run.
"""

import dataclasses
import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from . import prng
from ._checks import check_field_types
from ._types import Array, PRNGKey, PyTree
from .algorithms import AbstractAlgorithm
from .envs import AbstractEnvironment

METRIC_COLUMNS = ("step", "seed", "eval_return", "train_return", "td_error", "steps_per_second")


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinity; the message names the seed and the chunk."""


@dataclasses.dataclass
class TrainProgress:
    """Python-side bookkeeping between chunks (saved in checkpoints, so resumes are exact).

    ``rows`` holds one dict per (evaluation, seed) with the `METRIC_COLUMNS`. A seed's
    ``evals_since_best`` counts its evaluations since the last new ``best_smoothed``. The times add
    up over every session of a resumed run: ``run_seconds`` the compiled chunks,
    ``compile_seconds`` the compilations, ``wall_seconds`` all of `train`.
    """

    chunk: int = 0
    rows: list[dict[str, float | int]] = dataclasses.field(default_factory=list)
    best_eval_return: list[float] = dataclasses.field(default_factory=list)
    best_step: list[int] = dataclasses.field(default_factory=list)
    evals_since_best: list[int] = dataclasses.field(default_factory=list)
    best_smoothed: list[float] = dataclasses.field(default_factory=list)
    """Per seed, the best mean of ``patience_window`` consecutive evaluations (what early
    stopping compares; the same as ``best_eval_return`` when the window is 1)."""
    active: list[bool] = dataclasses.field(default_factory=list)
    run_seconds: float = 0.0
    compile_seconds: float = 0.0
    steps_done: int = 0
    wall_seconds: float = 0.0


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    - ``steps`` (evals,), and per seed ``eval_returns``, ``train_returns``, ``td_errors``
      (evals, seeds): the learning curves (``train_returns`` is NaN where no episode ended);
    - ``best_eval_return`` / ``best_step`` / ``final_eval_return`` (seeds,);
    - ``env_steps_per_second``: throughput of the compiled chunks, compile excluded;
    - ``final_state``: the algorithm state with a leading seed axis.
    """

    seeds: list[int]
    steps: np.ndarray
    eval_returns: np.ndarray
    train_returns: np.ndarray
    td_errors: np.ndarray
    best_eval_return: np.ndarray
    best_step: np.ndarray
    final_eval_return: np.ndarray
    stopped_early: np.ndarray
    total_steps: int
    env_steps_per_second: float
    run_seconds: float
    compile_seconds: float
    num_compilations: int
    final_state: PyTree[Any]
    progress: TrainProgress


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """Sizes of the loop; validated here so that errors name the offending value."""

    total_steps: int
    num_envs: int = 1
    num_seeds: int = 1
    seed: int = 0
    eval_every: int = 10_000
    eval_envs: int = 16
    eval_steps: int | None = None
    greedy_eval: bool = False
    patience: int | None = None
    """Stop a seed after this many evaluations without a new best of its smoothed return
    (``None``: never; every seed runs the whole budget)."""
    patience_window: int = 5
    """Early stopping compares the mean of this many consecutive evaluations, which one noisy
    evaluation can neither raise nor lower by much (1: each evaluation on its own)."""
    diagnostics: bool = False
    """Record the learner's `AbstractAlgorithm.diagnostics` of every seed at every evaluation
    (extra entries of ``TrainProgress.rows``, hence columns of ``metrics.csv``)."""

    def __post_init__(self):
        check_field_types(self)  # `total_steps=True` is an int to Python
        for name in (
            "total_steps",
            "num_envs",
            "num_seeds",
            "eval_every",
            "eval_envs",
            "patience_window",
        ):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
        for name in ("eval_steps", "patience"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be >= 1 (or None), got {value!r}.")
        if self.seed < 0:
            raise ValueError(f"`seed` must be an integer >= 0, got {self.seed!r}.")


@dataclasses.dataclass(frozen=True)
class ChunkPlan:
    """How a `LoopConfig` maps onto an algorithm's steps.

    ``steps_per_chunk`` algorithm steps (each taking ``env_steps_per_step`` environment steps
    over all ``num_envs`` copies) make one chunk of ``env_steps_per_chunk`` environment steps,
    as close to ``eval_every`` as whole steps allow. The run is ``num_chunks`` whole chunks:
    the fewest that reach ``total_steps`` (`total_env_steps`), since every chunk is the same
    compiled program. The chunk does not depend on ``total_steps``, so a run can be resumed
    with a larger budget.
    """

    steps_per_chunk: int
    env_steps_per_chunk: int
    num_chunks: int

    @classmethod
    def of(cls, config: LoopConfig, algorithm: AbstractAlgorithm) -> "ChunkPlan":
        per_step = algorithm.env_steps_per_step(config.num_envs)
        steps = max(1, config.eval_every // per_step)
        env_steps = steps * per_step
        return cls(steps, env_steps, math.ceil(config.total_steps / env_steps))

    @property
    def total_env_steps(self) -> int:
        """Environment steps per seed of the whole run (``total_steps`` rounded up to chunks)."""
        return self.num_chunks * self.env_steps_per_chunk


def reactivate(book: TrainProgress, patience: int | None) -> TrainProgress:
    """`book` with each seed's ``active`` flag recomputed under `patience`.

    A seed stops when it has gone `patience` evaluations without improving, so under an
    unchanged patience this gives back the flags the loop set. Resuming with the result under
    a larger patience (or ``None``) lets stopped seeds go on from the state they stopped in;
    `train` itself keeps the flags it is given (a seed may also be stopped by hand).
    """
    active = [patience is None or since < patience for since in book.evals_since_best]
    return dataclasses.replace(book, active=active)


class _ChunkTotals(eqx.Module):
    td_error_sq: Array
    episodes: Array
    return_sum: Array
    all_finite: Array


def _build(algorithm: Any, key: PRNGKey):
    return (
        algorithm(key)
        if callable(algorithm) and not isinstance(algorithm, eqx.Module)
        else algorithm
    )


def _eval_steps(config: LoopConfig, env: AbstractEnvironment) -> int:
    if config.eval_steps is not None:
        return config.eval_steps
    limit = getattr(env, "max_episode_steps", None)
    return int(limit) if limit else 1000


def make_chunk_function(
    algorithm: AbstractAlgorithm,
    env: AbstractEnvironment,
    config: LoopConfig,
    plan: ChunkPlan,
    counter: list[int],
) -> Callable:
    """The compiled program of one chunk for all seeds: ``(states, seed_keys, chunk, active)``.

    `counter[0]` counts traces of the program, i.e. compilations (tests check it stays 1).
    """
    eval_steps = _eval_steps(config, env)

    def one_seed(state, seed_key, chunk, active):
        key = jax.random.fold_in(seed_key, chunk)
        train_key, eval_key = jax.random.split(key)

        def body(carry, step_key):
            state, totals = carry
            state, metrics = algorithm.step(state, env, step_key)
            totals = _ChunkTotals(
                totals.td_error_sq + metrics.td_error_sq,
                totals.episodes + metrics.episodes_finished,
                totals.return_sum + metrics.return_sum,
                totals.all_finite & metrics.all_finite,
            )
            return (state, totals), None

        dtype = jnp.zeros(()).dtype
        zero = jnp.zeros((), dtype)
        totals = _ChunkTotals(zero, jnp.zeros((), jnp.int32), zero, jnp.ones((), bool))
        keys = jax.random.split(train_key, plan.steps_per_chunk)
        (new_state, totals), _ = jax.lax.scan(body, (state, totals), keys)
        returns = algorithm.evaluate(
            new_state,
            env,
            eval_key,
            num_envs=config.eval_envs,
            num_steps=eval_steps,
            greedy=config.greedy_eval,
        )
        # A seed that stopped early keeps its state (early stopping per seed).
        new_state = jax.tree.map(
            lambda new, old: jnp.where(active, new, old) if eqx.is_array(new) else new,
            new_state,
            state,
        )
        extra = {}
        if config.diagnostics:  # a key of its own: the evaluation above used `eval_key`
            extra = algorithm.diagnostics(new_state, env, jax.random.fold_in(eval_key, 1))
        return new_state, totals, jnp.mean(returns), extra

    def chunk_fn(states, seed_keys, chunk, active):
        counter[0] += 1
        return jax.vmap(one_seed, in_axes=(0, 0, None, 0))(states, seed_keys, chunk, active)

    return eqx.filter_jit(chunk_fn)


def seed_keys(config: LoopConfig) -> tuple[Array, Array]:
    """``(init_keys, run_keys)``, one per seed, from ``prng.key(seed + i)``."""
    keys = jnp.stack([prng.key(config.seed + i) for i in range(config.num_seeds)])
    split = jax.vmap(jax.random.split)(keys)
    return split[:, 0], split[:, 1]


def init_states(algorithm: Any, env: AbstractEnvironment, config: LoopConfig) -> PyTree[Any]:
    """The algorithm state of every seed, stacked on a leading axis."""
    init_keys, _ = seed_keys(config)

    def one(key):
        return _build(algorithm, key).init(key, env, num_envs=config.num_envs)

    return eqx.filter_jit(eqx.filter_vmap(one))(init_keys)


def train(
    algorithm: AbstractAlgorithm | Callable[[PRNGKey], AbstractAlgorithm],
    env: AbstractEnvironment,
    config: LoopConfig,
    *,
    progress: bool = True,
    resume: tuple[PyTree[Any], TrainProgress] | None = None,
    on_chunk: Callable[[PyTree[Any], TrainProgress], None] | None = None,
    on_interrupt: Callable[[PyTree[Any], TrainProgress], None] | None = None,
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
        config: loop sizes (`LoopConfig`).
        progress: show a progress bar with steps/s and the latest evaluation return.
        resume: ``(states, progress)`` from a checkpoint; the run continues exactly where
            that one stopped.
        on_chunk: called after every chunk with the states and the bookkeeping
            (checkpoints, metrics files).
        on_interrupt: called with the last completed chunk's states on Ctrl-C, before the
            `KeyboardInterrupt` propagates.

    Returns:
        A `TrainResult`.

    Raises:
        NonFiniteError: a parameter or TD error became NaN/inf; nothing of the failing chunk
            is kept (``on_chunk`` was last called with the good states).
    """
    template = _build(algorithm, prng.key(config.seed))
    counter = [0]
    plan = ChunkPlan.of(config, template)
    chunk_fn = make_chunk_function(template, env, config, plan, counter)
    _, run_keys = seed_keys(config)
    seeds = [config.seed + i for i in range(config.num_seeds)]

    if resume is None:
        states = init_states(algorithm, env, config)
        book = TrainProgress(
            best_eval_return=[-math.inf] * config.num_seeds,
            best_step=[0] * config.num_seeds,
            evals_since_best=[0] * config.num_seeds,
            best_smoothed=[-math.inf] * config.num_seeds,
            active=[True] * config.num_seeds,
        )
    else:
        states, book = resume
        _check_resume_fits(states, book, algorithm, env, config, plan)
        book = dataclasses.replace(book, rows=list(book.rows))
        if len(book.best_smoothed) != config.num_seeds:
            # Saved before smoothed early stopping existed: it compared single evaluations.
            book = dataclasses.replace(book, best_smoothed=list(book.best_eval_return))
    if book.chunk >= plan.num_chunks or not any(book.active):
        return _result(book, config, seeds, states, counter[0])  # nothing left: no compile

    # The (states, bookkeeping) pair of the last completed chunk (at first, the starting
    # point, so that a Ctrl-C while compiling saves a checkpoint to resume from). It is
    # replaced by a single assignment, so a Ctrl-C arriving anywhere (even inside `_record`)
    # saves a consistent pair: the states and the rows of the same chunk.
    committed = (states, book)
    bar = None
    try:
        start = time.perf_counter()
        wall_before = book.wall_seconds
        compiled = chunk_fn.lower(
            states, run_keys, jnp.asarray(book.chunk, jnp.int32), jnp.asarray(book.active)
        ).compile()
        book.compile_seconds += time.perf_counter() - start

        bar = tqdm(
            total=plan.total_env_steps,
            initial=book.steps_done,
            unit="step",
            unit_scale=True,
            disable=not progress,
            dynamic_ncols=True,
        )
        while book.chunk < plan.num_chunks and any(book.active):
            tic = time.perf_counter()
            new_states, totals, eval_return, extra = compiled(
                states, run_keys, jnp.asarray(book.chunk, jnp.int32), jnp.asarray(book.active)
            )
            eval_return = np.asarray(eval_return)
            seconds = time.perf_counter() - tic
            finite = np.asarray(totals.all_finite) & np.isfinite(eval_return)
            if not finite.all():
                bad = [seeds[i] for i in np.flatnonzero(~finite)]
                raise NonFiniteError(
                    f"Training produced a non-finite parameter or TD error for seed(s) {bad} in "
                    f"the chunk ending at step {book.steps_done + plan.env_steps_per_chunk}. "
                    "Lower the learning rates or max_grad_norm (the gradient clip), or "
                    "check the environment's rewards."
                )
            new_book = dataclasses.replace(
                book,
                chunk=book.chunk + 1,
                steps_done=book.steps_done + plan.env_steps_per_chunk,
                run_seconds=book.run_seconds + seconds,
                wall_seconds=wall_before + time.perf_counter() - start,
                rows=list(book.rows),
                best_eval_return=list(book.best_eval_return),
                best_step=list(book.best_step),
                evals_since_best=list(book.evals_since_best),
                best_smoothed=list(book.best_smoothed),
                active=list(book.active),
            )
            _record(new_book, config, plan, seeds, totals, eval_return, seconds, extra)
            committed = (new_states, new_book)
            states, book = committed
            bar.update(plan.env_steps_per_chunk)
            bar.set_postfix(
                eval=f"{np.mean(eval_return):.3g}",
                best=f"{np.median(book.best_eval_return):.3g}",
                sps=f"{plan.env_steps_per_chunk * config.num_seeds / seconds:.3g}",
            )
            if on_chunk is not None:
                on_chunk(states, book)
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt(*committed)
        raise
    finally:
        if bar is not None:
            bar.close()

    return _result(book, config, seeds, states, counter[0])


def _check_resume_fits(states, book: TrainProgress, algorithm, env, config, plan) -> None:
    """A `ValueError` unless ``(states, book)`` came from this learner and `LoopConfig`.

    The states must be shaped like fresh ones (seeds, environments, cell sizes), and the
    steps done must be whole chunks of this plan (a changed ``eval_every`` or ``num_envs``
    would shift every later chunk's keys and evaluations). Only ``total_steps`` and
    ``patience`` may change on a resume.
    """
    advice = (
        "Resume with the learner and LoopConfig of the run; only total_steps and patience may "
        "change."
    )
    expected = jax.eval_shape(lambda: init_states(algorithm, env, config))
    got, got_def = jax.tree_util.tree_flatten_with_path(states)
    want, want_def = jax.tree_util.tree_flatten_with_path(expected)
    if got_def != want_def:
        raise ValueError(
            f"train(resume=...): the states do not have this learner's structure. {advice}"
        )
    for (path, leaf), (_, spec) in zip(got, want, strict=True):
        if (jnp.shape(leaf), jnp.result_type(leaf)) != (spec.shape, spec.dtype):
            raise ValueError(
                f"train(resume=...): state leaf {jax.tree_util.keystr(path)} has "
                f"{jnp.result_type(leaf)}{list(jnp.shape(leaf))}, but this learner with "
                f"num_seeds={config.num_seeds} and num_envs={config.num_envs} makes "
                f"{spec.dtype}{list(spec.shape)}. {advice}"
            )
    if book.steps_done != book.chunk * plan.env_steps_per_chunk:
        raise ValueError(
            f"train(resume=...): the run did {book.chunk} chunks and {book.steps_done} steps, "
            f"but this LoopConfig makes chunks of {plan.env_steps_per_chunk} steps (eval_every="
            f"{config.eval_every}, num_envs={config.num_envs}). {advice}"
        )


def _record(book: TrainProgress, config, plan, seeds, totals, eval_return, seconds, extra) -> None:
    extra = {name: np.asarray(values) for name, values in extra.items()}
    episodes = np.asarray(totals.episodes)
    return_sum = np.asarray(totals.return_sum)
    td = np.sqrt(np.asarray(totals.td_error_sq) / plan.steps_per_chunk)
    for i, seed in enumerate(seeds):
        if not book.active[i]:
            continue
        value = float(eval_return[i])
        book.rows.append(
            {
                "step": book.steps_done,
                "seed": seed,
                "eval_return": value,
                "train_return": float(return_sum[i] / episodes[i]) if episodes[i] else math.nan,
                "td_error": float(td[i]),
                "steps_per_second": plan.env_steps_per_chunk * config.num_seeds / seconds,
            }
            | {name: float(values[i]) for name, values in extra.items()}
        )
        if value > book.best_eval_return[i]:
            book.best_eval_return[i], book.best_step[i] = value, book.steps_done
        # Early stopping compares the mean of the seed's last `patience_window` evaluations.
        mine = (row["eval_return"] for row in reversed(book.rows) if row["seed"] == seed)
        smoothed = float(np.mean(list(itertools.islice(mine, config.patience_window))))
        if smoothed > book.best_smoothed[i]:
            book.best_smoothed[i] = smoothed
            book.evals_since_best[i] = 0
        else:
            book.evals_since_best[i] += 1
            if config.patience is not None and book.evals_since_best[i] >= config.patience:
                book.active[i] = False


def _result(book: TrainProgress, config, seeds, states, compilations: int) -> TrainResult:
    steps = sorted({row["step"] for row in book.rows})
    index = {step: k for k, step in enumerate(steps)}
    shape = (len(steps), len(seeds))
    curves = {name: np.full(shape, np.nan) for name in ("eval_return", "train_return", "td_error")}
    for row in book.rows:
        for name, curve in curves.items():
            curve[index[row["step"]], seeds.index(row["seed"])] = row[name]
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
