"""Sweeps as one program: K configurations of one learner × S seeds, trained together.

The configurations of a sweep differ only in named float hyperparameters (step sizes, λ, γ,
η, ...). Those become *traced* arrays: each run (configuration ``k``, seed ``s``) carries its
values in its state, and the loop's batch axis, which `train` `jax.vmap`-s (and may shard),
holds all ``R = K·S`` runs, configuration-major: run ``r = k·S + i`` is configuration
``k = r // S`` with seed ``seed + i``. So the whole sweep is one compiled chunk program,
whatever K is, and every configuration meets the same keys as when it runs alone.

Learners are equinox modules whose hyperparameters are pytree leaves, so `Swept` puts the
run's values into the learner with `eqx.tree_at` inside the program, where a plain run has
Python floats (compile-time constants). XLA may round a traced product such as ``γ·λ``
differently from its constant fold: a swept configuration's curve equals its plain run up to
that rounding (``tests/training/test_sweep.py`` measures it).
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import prng
from .._types import Array, Float, PRNGKey, PyTree, Scalar
from ..algorithms import AbstractAlgorithm, StepMetrics
from ..envs import AbstractEnvironment
from ._chunk import build_learner, seed_keys
from ._loop import _result, train
from ._records import LoopConfig, TrainProgress, TrainResult, fresh_progress

Learner = AbstractAlgorithm | Callable[[PRNGKey], AbstractAlgorithm]


def with_values(learner: AbstractAlgorithm, values: Mapping[str, Any]) -> AbstractAlgorithm:
    """`learner` with the named fields replaced by `values` (floats or traced scalars).

    No ``__check_init__`` runs (it cannot compare tracers): check the values by building the
    learner with them as Python floats first, as `train_swept` does."""
    names = tuple(values)
    return eqx.tree_at(
        lambda a: tuple(getattr(a, n) for n in names), learner, tuple(values[n] for n in names)
    )


class SweptState(eqx.Module):
    """A run's learner state and its hyperparameter values (scalars; ``(runs,)`` once
    batched by the loop)."""

    state: PyTree[Any]
    values: dict[str, Array]


class Swept(AbstractAlgorithm):
    """`learner` with the fields `names` read from the state (`SweptState.values`) at every
    step, evaluation and diagnosis, so that runs with different values share one program."""

    learner: AbstractAlgorithm
    names: tuple[str, ...] = eqx.field(static=True)

    def init(self, key: PRNGKey, env: AbstractEnvironment, *, num_envs: int = 1) -> SweptState:
        dtype = jnp.zeros(()).dtype
        values = {n: jnp.asarray(getattr(self.learner, n), dtype) for n in self.names}
        state = with_values(self.learner, values).init(key, env, num_envs=num_envs)
        return SweptState(state, values)

    def step(
        self, state: SweptState, env: AbstractEnvironment, key: PRNGKey
    ) -> tuple[SweptState, StepMetrics]:
        new, metrics = with_values(self.learner, state.values).step(state.state, env, key)
        return SweptState(new, state.values), metrics

    def evaluate(
        self,
        state: SweptState,
        env: AbstractEnvironment,
        key: PRNGKey,
        *,
        num_envs: int,
        num_steps: int,
        greedy: bool = False,
    ) -> Float[Array, " num_envs"]:
        return with_values(self.learner, state.values).evaluate(
            state.state, env, key, num_envs=num_envs, num_steps=num_steps, greedy=greedy
        )

    def diagnostics(
        self, state: SweptState, env: AbstractEnvironment, key: PRNGKey
    ) -> dict[str, Scalar]:
        return with_values(self.learner, state.values).diagnostics(state.state, env, key)

    def env_steps_per_step(self, num_envs: int) -> int:
        return self.learner.env_steps_per_step(num_envs)


@dataclasses.dataclass
class SweptResult:
    """What `train_swept` returns: ``results[k]`` is configuration ``k``'s `TrainResult`
    (its seeds, curves, bests, final states as a plain run of it has them), and ``runs``
    the result of all ``K·S`` runs as the loop saw them (``final_state`` a `SweptState`)."""

    configurations: list[dict[str, float]]
    results: list[TrainResult]
    runs: TrainResult

    @property
    def num_compilations(self) -> int:
        """Chunk programs compiled: 1 for the whole sweep (0 when resumed at its end)."""
        return self.runs.num_compilations


def swept_names(configurations: Sequence[Mapping[str, float]]) -> tuple[str, ...]:
    """The hyperparameter names of `configurations` (every one must name the same)."""
    names = tuple(configurations[0]) if configurations else ()
    for k, values in enumerate(configurations):
        if set(values) != set(names):
            raise ValueError(
                f"train_swept: configuration {k} sets {sorted(values)}, configuration 0 sets "
                f"{sorted(names)}; every configuration must set the same hyperparameters."
            )
    return names


def _check_values(algorithm: Learner, names: tuple[str, ...], configs) -> None:
    """The named fields are float hyperparameters of `algorithm`, and every configuration's
    values pass the learner's own checks (it is built with them as Python floats)."""
    key = prng.key(0)
    base = build_learner(algorithm, key)
    for name in names:
        if not isinstance(getattr(base, name, None), int | float):
            raise ValueError(
                f"train_swept: {type(base).__name__}.{name} is not a float hyperparameter "
                f"(it is {getattr(base, name, None)!r}); only float fields can be swept."
            )
    for values in configs:
        built = dataclasses.replace(base, **{n: float(v) for n, v in values.items()})
        del built  # built for its `__check_init__` (ranges), which raises naming the field


def run_seeds(config: LoopConfig, num_configurations: int) -> list[int]:
    """The seed of every run: ``seed, ..., seed+S-1`` once per configuration."""
    seeds = [config.seed + i for i in range(config.num_seeds)]
    return seeds * num_configurations


def runs_config(config: LoopConfig, num_configurations: int) -> LoopConfig:
    """The loop over all runs: ``K·S`` entries on the batch axis, labelled 0 to ``K·S-1``."""
    return dataclasses.replace(config, num_seeds=config.num_seeds * num_configurations, seed=0)


def initial_states(
    algorithm: Learner,
    env: AbstractEnvironment,
    config: LoopConfig,
    configurations: Sequence[Mapping[str, float]],
) -> SweptState:
    """The `SweptState` of every run, stacked on the batch axis: run ``k·S + i`` starts as
    configuration ``k`` with seed ``seed + i`` would (one compiled program for all)."""
    names = swept_names(configurations)
    dtype = jnp.zeros(()).dtype
    table = {
        n: jnp.repeat(jnp.asarray([c[n] for c in configurations], dtype), config.num_seeds)
        for n in names
    }
    init_keys, _ = seed_keys(config, run_seeds(config, len(configurations)))

    def one(key, values):
        learner = with_values(build_learner(algorithm, key), values)
        return Swept(learner, names).init(key, env, num_envs=config.num_envs)

    return eqx.filter_jit(eqx.filter_vmap(one))(init_keys, table)


def train_swept(
    algorithm: Learner,
    env: AbstractEnvironment,
    config: LoopConfig,
    configurations: Sequence[Mapping[str, float]],
    *,
    progress: bool = True,
    resume: tuple[SweptState, TrainProgress] | None = None,
    on_chunk: Callable[[SweptState, TrainProgress], None] | None = None,
    on_interrupt: Callable[[SweptState, TrainProgress], None] | None = None,
    stop_check: Callable[[], None] | None = None,
) -> SweptResult:
    """Train `algorithm` under each of `configurations` for `config`'s seeds, as one program.

    Arguments:
        algorithm: a learner or a function ``key -> learner`` (as for `train`).
        env: the environment.
        config: the loop of one configuration (its seeds, budget, evaluations); every
            configuration runs it.
        configurations: K mappings of hyperparameter name to float, each naming the same
            float fields of the learner (e.g. ``{"lr_cell": 1e-3, "lambda_cell": 0.9}``).
            Each is checked by building the learner with it.
        progress, on_chunk, on_interrupt, stop_check: as for `train`, over all ``K·S`` runs (states are
            a `SweptState`; the rows label run ``r`` as seed ``r``). A run whose parameters
            or TD error become NaN or infinite stops there, with the state and rows of its
            last finite chunk, and reads as stopped early; the other runs go on.
        resume: ``(states, progress)`` of all runs, from ``on_chunk``/``on_interrupt``.

    Returns:
        A `SweptResult`; ``num_compilations`` is 1.
    """
    configurations = [dict(c) for c in configurations]
    if not configurations:
        raise ValueError("train_swept: give at least one configuration.")
    names = swept_names(configurations)
    _check_values(algorithm, names, configurations)
    num = len(configurations)
    loop = runs_config(config, num)

    def swept(key: PRNGKey) -> Swept:
        return Swept(build_learner(algorithm, key), names)

    if resume is None:
        states = initial_states(algorithm, env, config, configurations)
        resume = (states, fresh_progress(loop.num_seeds))
    runs = train(
        swept,
        env,
        loop,
        progress=progress,
        resume=resume,
        on_chunk=on_chunk,
        on_interrupt=on_interrupt,
        stop_check=stop_check,
        run_seeds=run_seeds(config, num),
        stop_non_finite=True,  # a diverging configuration stops; the others go on
    )
    results = [configuration_result(runs, config, k) for k in range(num)]
    return SweptResult(configurations, results, runs)


def configuration_progress(book: TrainProgress, config: LoopConfig, k: int) -> TrainProgress:
    """Configuration `k`'s share of the bookkeeping of all runs, labelled by its own seeds
    (what its run folder's ``metrics.csv`` and checkpoint hold)."""
    size = config.num_seeds
    own = slice(k * size, (k + 1) * size)
    rows = [
        row | {"seed": config.seed + int(row["seed"]) - k * size}
        for row in book.rows
        if k * size <= int(row["seed"]) < (k + 1) * size
    ]
    return dataclasses.replace(
        book,
        rows=rows,
        best_eval_return=book.best_eval_return[own],
        best_step=book.best_step[own],
        evals_since_best=book.evals_since_best[own],
        best_smoothed=book.best_smoothed[own],
        active=book.active[own],
    )


def configuration_states(states: SweptState, config: LoopConfig, k: int) -> PyTree[Any]:
    """Configuration `k`'s learner states (seeds on the leading axis), as a plain run's."""
    size = config.num_seeds
    return jax.tree.map(lambda x: x[k * size : (k + 1) * size], states.state)


def configuration_result(runs: TrainResult, config: LoopConfig, k: int) -> TrainResult:
    """Configuration `k`'s `TrainResult` out of the result of all runs. Its times are the
    whole sweep's, so ``env_steps_per_second`` is its share of the sweep's throughput."""
    own = configuration_progress(runs.progress, config, k)
    seeds = [config.seed + i for i in range(config.num_seeds)]
    states = configuration_states(runs.final_state, config, k)
    return _result(own, config, seeds, states, compilations=runs.num_compilations)
