"""The loop's records: its configuration, its bookkeeping between chunks, and its result."""

import dataclasses
import math
from typing import Any, Literal

import numpy as np

from .._checks import check_field_types
from .._types import PyTree
from ..algorithms import AbstractAlgorithm

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
    target_return: float | None = None
    """Stop a seed at the first evaluation whose return reaches this value, such as the task's
    "solved" threshold (``None``: never). Its best return and step are those of that
    evaluation; the other seeds go on."""
    diagnostics: bool = False
    """Record the learner's `AbstractAlgorithm.diagnostics` of every seed at every evaluation
    (extra entries of ``TrainProgress.rows``, hence columns of ``metrics.csv``)."""
    devices: int | Literal["all"] | None = None
    """Split the seeds over this many devices (``"all"``: every device JAX sees), each
    running ``num_seeds / devices`` of them; ``num_seeds`` must be a multiple. Unset: one
    device, or every device of a multi-process run (`rtrrl.training.initialize_distributed`).
    Each seed's results do not depend on it."""
    env_devices: int = 1
    """Of the ``devices``, how many split each seed's environments: a mesh of
    ``devices / env_devices`` blocks of seeds times ``env_devices`` blocks of
    ``num_envs / env_devices`` environments (both must divide; RTRRL only). The environments
    of a seed meet, across its devices, wherever the learner combines them (its update, the
    running statistics, the metrics), reduced in the one-device order; a seed's results
    differ from its one-device run by float rounding only (docs/devices.md)."""

    def __post_init__(self) -> None:
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
        if self.env_devices < 1:
            raise ValueError(f"`env_devices` must be an integer >= 1, got {self.env_devices!r}.")
        if isinstance(self.devices, int) and self.devices < 1:
            raise ValueError(f"`devices` must be an integer >= 1 or 'all', got {self.devices!r}.")
        check_device_split(self.num_seeds, self.num_envs, self.devices, self.env_devices)
        if self.seed < 0:
            raise ValueError(f"`seed` must be an integer >= 0, got {self.seed!r}.")
        if self.target_return is not None and not math.isfinite(self.target_return):
            raise ValueError(
                f"`target_return` must be a finite number (or None), got {self.target_return!r}."
            )


def check_device_split(
    num_seeds: int, num_envs: int, devices: int | str | None, env_devices: int
) -> None:
    """A `ValueError` naming the flags unless `devices` (a count; ``"all"`` and unset are
    checked once the devices are known) and `env_devices` split the seeds and each seed's
    environments evenly, and `env_devices` comes with `devices`."""
    if isinstance(devices, int):
        check_seeds_divide(num_seeds, devices, env_devices)
    check_envs_divide(num_envs, env_devices)
    if env_devices > 1 and devices is None:
        raise ValueError(
            f"`env_devices` (--env-devices) = {env_devices} needs `devices` "
            f"(--devices): pass a multiple of {env_devices}, or 'all'."
        )


def check_seeds_divide(num_seeds: int, devices: int, env_devices: int = 1) -> None:
    """A `ValueError` unless `devices` is a multiple of `env_devices` and the ``devices /
    env_devices`` blocks of seeds divide `num_seeds` (each block holds as many seeds)."""
    if env_devices > 1 and devices % env_devices:
        raise ValueError(
            f"`devices` (--devices) = {devices} is not a multiple of `env_devices` "
            f"(--env-devices) = {env_devices}: each seed's environments are split over "
            f"{env_devices} of the devices. Pass a multiple of {env_devices} devices."
        )
    blocks = devices // env_devices
    if blocks > 1 and num_seeds % blocks:
        split = f"the {devices} devices" if env_devices == 1 else f"the {blocks} seed blocks"
        raise ValueError(
            f"`num_seeds` (--seeds) = {num_seeds} is not a multiple of {split} "
            f"(`devices`, --devices"
            + ("" if env_devices == 1 else " / --env-devices")
            + f"): each device runs the same number of seeds. Pass a multiple of {blocks} "
            "seeds, or fewer devices."
        )


def check_envs_divide(num_envs: int, env_devices: int) -> None:
    """A `ValueError` unless `env_devices` divides `num_envs` (each holds as many)."""
    if num_envs % env_devices:
        raise ValueError(
            f"`num_envs` (--num-envs) = {num_envs} is not a multiple of `env_devices` "
            f"(--env-devices) = {env_devices}: each of a seed's devices steps the same number "
            f"of environments. Pass a multiple of {env_devices} environments, or fewer "
            "env devices."
        )


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


def fresh_progress(num_seeds: int) -> TrainProgress:
    """The bookkeeping of a run that has not started: no rows, every seed active."""
    return TrainProgress(
        best_eval_return=[-math.inf] * num_seeds,
        best_step=[0] * num_seeds,
        evals_since_best=[0] * num_seeds,
        best_smoothed=[-math.inf] * num_seeds,
        active=[True] * num_seeds,
    )
