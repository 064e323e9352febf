"""Typed run configuration and the builders that turn it into an environment and a learner.

`TrainConfig` is what ``rtrrl train`` parses (every field is a flag; ``--config FILE`` gives
defaults from YAML or TOML). `build_env` and `build_algorithm` construct everything once
*before* training starts, so every bad value fails up front with a message naming it.
"""

import dataclasses
import difflib
import math
import os
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import jax
import tyro
import yaml

from .. import envs, presets, prng
from .._checks import check_field_types, expected_type
from .._types import PRNGKey
from ..agent import ReturnRMS
from ..algorithms import PPO, RTRRL
from ..cells import CTRNN, AbstractCell
from ..estimators import AbstractGradientEstimator, IncompatibleCellError
from ..training import LoopConfig, check_device_split
from .memory import check_memory
from .options import parse_env_options, yaml_value
from .parts import (
    CellPart,
    EnvPart,
    EstimatorPart,
    PPOPart,
    RTRRLPart,
    RunParts,
    field_default,
)
from .registry import CELLS, ESTIMATORS


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Train an online recurrent RL agent (defaults: the paper's Table 1 hyperparameters with
    this library's stabilisers; ``--preset paper`` gives the paper's learner exactly)."""

    env: str = "CartPole-v1"
    """Environment id (``rtrrl envs`` lists them)."""
    env_option: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """Environment option KEY=VALUE, e.g. ``memory_length=8``; repeat the flag for several."""
    obs_mask: str | None = None
    """Keep only some observation entries: ``pos``, ``vel`` or indices like ``0,2``."""
    algo: Literal["rtrrl", "ppo"] = "rtrrl"
    """Learner: ``rtrrl`` (online, the paper's method) or ``ppo`` (recurrent PPO trained by
    backpropagation through time, the paper's baseline; see the PPO options below)."""
    cell: str = "ctrnn"
    """Recurrent cell: ``ctrnn``, ``lru``, ``lstm``, ``gru``, ``linear`` (linear TD(λ) on the raw
    input, no recurrent cell), a name registered in `rtrrl.app.registry.CELLS`, or an import
    path ``module:Class`` built as ``Class(input_size, hidden_size, key=key)``. ``lstm`` and
    ``gru`` suit ``--algo ppo``; with RTRRL they need an estimator that serves any cell (rtrl,
    local-mse, snap1, uoro, tbptt)."""
    estimator: str = "rflo"
    """Online gradient estimator of the cell: ``rflo``, ``rtrl``, ``local-mse``, ``tbptt``,
    ``snap1``, ``uoro``, a name registered in `rtrrl.app.registry.ESTIMATORS`, or an import
    path ``module:Class`` built as ``Class()``."""
    window: int = 8  # the command line's choice: `TruncatedBPTT` has no default window
    """Truncation window of ``--estimator tbptt``."""
    feedback: Literal["backprop", "alignment"] = "backprop"
    """How head errors reach the cell: head weights, or fixed random matrices."""
    preset: Literal["default", "paper"] = "default"
    """RTRRL settings (`rtrrl.presets`): ``default`` scales rewards by the RMS of the return,
    normalises observations, uses a censored, state-independent-scale Gaussian head for
    continuous actions and lowers the step sizes linearly to zero over ``--steps``; ``paper``
    is the paper's learner (std of the return, raw observations, state-dependent Gaussian
    head, constant steps). The flags below and ``--lr-decay`` override single settings."""
    reward_scale: Literal["rms", "std"] | None = None
    """With --scale-rewards: divide rewards by the RMS or the std of the discounted return
    (unset: the preset's)."""
    normalize_observations: bool | None = None
    """Normalise observations by running mean and std (unset: the preset's)."""
    censored_actions: bool | None = None
    """Gaussian head: log-probability of the executed, clipped action (unset: the preset's)."""
    state_dependent_std: bool | None = None
    """Gaussian head: read the log-scale from the cell (unset: the preset's)."""
    critic_trace: Literal["accumulating", "dutch"] = "accumulating"
    """Critic eligibility trace: accumulating, or dutch (true online TD(λ))."""
    wiring: Literal["dense", "random", "ncp"] = "dense"
    """CTRNN wiring mask."""
    density: float = 0.5
    """Fraction of connections kept by ``--wiring random`` and ``--wiring ncp``."""
    motor_neurons: int = 8
    """Motor (output-layer) neurons of ``--wiring ncp``."""
    hidden_size: int = 32
    """Number of neurons N."""
    dt: float = field_default(CTRNN, "dt")
    """CTRNN Euler step."""
    steps: int = 1_000_000
    """Environment steps per seed."""
    num_envs: int = field_default(LoopConfig, "num_envs")
    """Parallel environments per seed (the paper uses 1)."""
    seeds: int = field_default(LoopConfig, "num_seeds")
    """Number of seeds, trained together in one compiled program."""
    seed: int = field_default(LoopConfig, "seed")
    """First seed; seeds are seed, seed+1, ..."""
    gamma: float = field_default(RTRRL, "gamma")
    """Discount factor γ of the return (RTRRL and PPO)."""
    lambda_actor: float = field_default(RTRRL, "lambda_actor")
    """RTRRL: trace decay λ of the actor's eligibility trace."""
    lambda_critic: float = field_default(RTRRL, "lambda_critic")
    """RTRRL: trace decay λ of the critic's eligibility trace."""
    lambda_cell: float = field_default(RTRRL, "lambda_cell")
    """RTRRL: trace decay λ of the recurrent cell's eligibility trace."""
    lr_actor: float = field_default(RTRRL, "lr_actor")
    """RTRRL: Adam step size of the actor head (α_A)."""
    lr_critic: float = field_default(RTRRL, "lr_critic")
    """RTRRL: Adam step size of the critic head (α_C)."""
    lr_cell: float = field_default(RTRRL, "lr_cell")
    """RTRRL: Adam step size of the recurrent cell (α_R)."""
    lr_decay: Literal["none", "linear"] | None = None
    """RTRRL: ``linear`` lowers every step size linearly to zero at the end of ``--steps`` (a
    resume then keeps ``--steps``); ``none``: constant, as in the paper (unset: the preset's,
    ``linear`` for ``default``)."""
    eta_actor: float = field_default(RTRRL, "eta_actor")
    """Weight of the actor's error in the recurrent trace (η_A)."""
    eta_critic: float = field_default(RTRRL, "eta_critic")
    """Weight of the critic's error in the recurrent trace (η_C)."""
    eta_entropy: float = field_default(RTRRL, "eta_entropy")
    """Entropy regularisation (η_H)."""
    max_grad_norm: float | None = None
    """Gradient global-norm clip; unset: the learner's default (RTRRL 1.0, PPO 0.5); 0: off.
    RTRRL clips each step's gradient before the traces, PPO each minibatch gradient."""
    average_reward: bool = field_default(RTRRL, "average_reward")
    """Average-reward TD for continuing tasks."""
    scale_rewards: bool = field_default(PPO, "scale_rewards")
    """Scale rewards by statistics of the discounted return (see --reward-scale)."""
    meta_rl: bool = field_default(RTRRL, "meta_rl")
    """Feed previous action and reward to the cell."""
    freeze_cell: bool = False
    """Never train the cell (echo-state ablation)."""
    rollout_length: int = field_default(PPO, "rollout_length")
    """PPO: steps per environment in each rollout segment (the BPTT length)."""
    epochs: int = field_default(PPO, "epochs")
    """PPO: passes over each segment."""
    minibatches: int = field_default(PPO, "minibatches")
    """PPO: minibatches per epoch, split along environments (must divide num_envs)."""
    clip_eps: float = field_default(PPO, "clip_eps")
    """PPO: ε of the clipped surrogate (and of the value clip)."""
    clip_value: bool = field_default(PPO, "clip_value")
    """PPO: clip the value loss around the rollout's values."""
    gae_lambda: float = field_default(PPO, "gae_lambda")
    """PPO: λ of generalised advantage estimation."""
    vf_coef: float = field_default(PPO, "vf_coef")
    """PPO: weight of the value loss."""
    ent_coef: float = field_default(PPO, "ent_coef")
    """PPO: weight of the entropy bonus."""
    lr: float = field_default(PPO, "lr")
    """PPO: Adam step size."""
    eval_every: int = field_default(LoopConfig, "eval_every")
    """Environment steps (per seed) between evaluations."""
    eval_envs: int = field_default(LoopConfig, "eval_envs")
    """Episodes per evaluation (one per environment; one evaluation's noise falls like
    1/sqrt(episodes): see benchmarks/results/early_stopping.md)."""
    eval_steps: int | None = field_default(LoopConfig, "eval_steps")
    """Steps per evaluation (default: the environment's episode limit, else 1000)."""
    greedy_eval: bool = field_default(LoopConfig, "greedy_eval")
    """Evaluate the most likely action instead of sampling."""
    diagnostics: bool = field_default(LoopConfig, "diagnostics")
    """Add learner statistics to metrics.csv at every evaluation (saturated neurons, τ range,
    parameter norms, Adam's steps, policy entropy, ...; see `RTRRL.diagnostics`)."""
    patience: int | None = field_default(LoopConfig, "patience")
    """Stop a seed after this many evaluations without a new best of its smoothed return (unset:
    never, the default: every seed runs the whole budget)."""
    patience_window: int = field_default(LoopConfig, "patience_window")
    """Early stopping compares the mean of this many consecutive evaluations (1: each one)."""
    target_return: float | None = field_default(LoopConfig, "target_return")
    """Stop a seed at its first evaluation that reaches this return, such as the task's
    "solved" level (unset: never, the default)."""
    out: Path | None = None
    """Run folder (default: runs/<env>-<cell>-<estimator>-seed<seed>-<date>-<time>)."""
    checkpoint_every: int = 10
    """Evaluations between checkpoints."""
    cpu_threads: int | None = None
    """XLA:CPU threads (unset: 1 for small steps, where it is faster, else all cores; see
    `rtrrl.cpu_threads`). Only speed depends on it, never results."""
    fast_cpu_codegen: bool = False
    """Let LLVM vectorize the short inner loops of XLA:CPU's kernels (its full unrolling capped
    at 4 iterations; see `rtrrl.app.cpu_codegen`): the LRU learner about 1.3x faster at batch
    64, the CTRNN's 1.05-1.1x. Results then differ from the default's by float rounding."""
    devices: int | Literal["all"] | None = None
    """Split the seeds over this many devices (``all``: every device JAX sees); --seeds must be
    a multiple. Unset: one device (with --distributed, every process's devices). A seed's
    returns do not depend on it; its parameters only to float rounding."""
    env_devices: int = 1
    """Of the --devices, how many split each seed's environments (--num-envs a multiple):
    --devices / --env-devices blocks of seeds (--seeds a multiple) times --env-devices blocks
    of environments; --algo rtrrl only. A seed's results do not depend on it beyond float
    rounding."""
    distributed: bool = False
    """Join a multi-process run (`jax.distributed`): JAX_COORDINATOR_ADDRESS,
    JAX_NUM_PROCESSES and JAX_PROCESS_ID, or SLURM's or Open MPI's variables. The seeds are
    split over every process's devices; only process 0 writes the run folder."""
    resume: Path | None = None
    """Continue the run saved in this folder (its config is used)."""
    config: Path | None = None
    """YAML or TOML file of defaults; command-line flags override it."""

    def __post_init__(self) -> None:
        # Types first (a config file's `gamma: "0.9"` is a string), then ranges.
        check_field_types(self, _flag_label)
        positive_ints = (
            "window",
            "hidden_size",
            "steps",
            "num_envs",
            "seeds",
            "eval_every",
            "eval_envs",
            "checkpoint_every",
            "patience_window",
            "rollout_length",
            "epochs",
            "minibatches",
            "env_devices",
        )
        for name in positive_ints:
            _check(name, getattr(self, name), lambda v: v >= 1, "an integer >= 1")
        for name in ("gamma", "lambda_actor", "lambda_critic", "lambda_cell", "gae_lambda"):
            _check(name, getattr(self, name), lambda v: 0.0 <= v <= 1.0, "in [0, 1]")
        for name in ("lr_actor", "lr_critic", "lr_cell", "dt", "lr", "clip_eps"):
            _check(name, getattr(self, name), lambda v: v > 0.0, "> 0")
        for name in ("eta_actor", "eta_critic", "eta_entropy", "vf_coef", "ent_coef"):
            _check(name, getattr(self, name), lambda v: v >= 0.0, ">= 0")
        _check("density", self.density, lambda v: 0.0 < v <= 1.0, "in (0, 1]")
        # Unknown names and import paths that do not resolve fail here, naming the flag.
        CELLS.resolve(self.cell)
        ESTIMATORS.resolve(self.estimator)
        # Seeds become 32-bit keys: a larger one would wrap around to a seed of another run.
        _check("seed", self.seed, lambda v: 0 <= v <= _MAX_SEED, f"an integer in [0, {_MAX_SEED}]")
        if self.seed + self.seeds - 1 > _MAX_SEED:
            raise ValueError(
                f"`seed` (--seed) = {self.seed} with `seeds` (--seeds) = {self.seeds} runs seeds "
                f"up to {self.seed + self.seeds - 1}, above the largest seed {_MAX_SEED}: "
                "choose a smaller --seed."
            )
        if self.max_grad_norm is not None:
            _check("max_grad_norm", self.max_grad_norm, lambda v: v >= 0.0, ">= 0 (0: off)")
        if self.cpu_threads is not None:
            _check(
                "cpu_threads",
                self.cpu_threads,
                lambda v: v >= 1,
                "an integer >= 1 (or unset: automatic)",
            )
            if self.cpu_threads > _CORES:
                raise ValueError(
                    f"`cpu_threads` (--cpu-threads) = {self.cpu_threads} is more than this "
                    f"machine's {_CORES} cores: pass at most {_CORES} (or leave it unset)."
                )
        if isinstance(self.devices, int):
            _check("devices", self.devices, lambda v: v >= 1, "an integer >= 1 or all")
        check_device_split(self.seeds, self.num_envs, self.devices, self.env_devices)
        if self.eval_steps is not None:
            _check("eval_steps", self.eval_steps, lambda v: v >= 1, ">= 1 (or None)")
        if self.patience is not None:
            _check("patience", self.patience, lambda v: v >= 1, ">= 1 (or None)")
        if self.target_return is not None:
            _check("target_return", self.target_return, math.isfinite, "a finite number (or None)")
        if self.algo == "ppo":
            if self.env_devices > 1:
                raise ValueError(
                    "`env_devices` (--env-devices) > 1 splits a seed's environments over "
                    "devices, which PPO does not support (its minibatches mix environments): "
                    "use --env-devices 1 (--devices still splits the seeds), or --algo rtrrl."
                )
            rtrrl_only = {"freeze_cell": True, "average_reward": True, "feedback": "alignment"}
            for name, value in rtrrl_only.items():
                if getattr(self, name) == value:
                    flag = "--" + name.replace("_", "-")
                    raise ValueError(
                        f"`{name}` ({flag}) = {value!r} is an RTRRL option; PPO has no such "
                        "mode (drop it, or use --algo rtrrl)."
                    )
            unset = {name: None for name in PRESET_FLAGS} | {"eta_critic": 1.0}
            for name, absent in unset.items():
                if getattr(self, name) != absent:
                    flag = "--" + name.replace("_", "-")
                    raise ValueError(
                        f"`{name}` ({flag}) is an RTRRL setting; PPO has none (drop it, or use "
                        "--algo rtrrl)."
                    )
            if self.num_envs % self.minibatches:
                raise ValueError(
                    f"`minibatches` (--minibatches) must divide `num_envs` ({self.num_envs}) "
                    f"with --algo ppo (minibatches are groups of whole environments), got "
                    f"{self.minibatches}."
                )

    def parts(self) -> RunParts:
        """This configuration as nested typed parts (`rtrrl.app.parts`), each with a
        ``build()``: the flat flags map into them, unset settings take the preset's value and
        the learners' own defaults."""
        config = self.resolved()
        cell = CellPart(
            name=config.cell,
            hidden_size=config.hidden_size,
            dt=config.dt,
            wiring=config.wiring,
            density=config.density,
            motor_neurons=config.motor_neurons,
        )
        # The identity feature map has no parameters: any exact estimator is free.
        estimator = EstimatorPart(
            name="local-mse" if config.cell == "linear" else config.estimator,
            window=config.window,
            frozen=config.freeze_cell,
        )
        shared = dict(gamma=config.gamma, meta_rl=config.meta_rl)
        if config.algo == "ppo":
            names = [f.name for f in dataclasses.fields(PPOPart) if f.name not in shared]
            learner = PPOPart(
                **shared,
                **{n: getattr(config, n) for n in names if n != "max_grad_norm"},
                max_grad_norm=_grad_norm(config.max_grad_norm, PPOPart.max_grad_norm),
            )
        else:
            learner = RTRRLPart(
                **shared,
                **{
                    n: getattr(config, n)
                    for n in _RTRRL_FLAGS
                    if n not in ("reward_scale", "max_grad_norm")
                },
                max_grad_norm=_grad_norm(config.max_grad_norm, RTRRLPart.max_grad_norm),
                reward_scale=config.reward_scale if config.scale_rewards else None,
                decay_updates=(
                    max(1, config.steps // config.num_envs) if config.lr_decay == "linear" else None
                ),
            )
        env = EnvPart(config.env, tuple(parse_env_options(config).items()))
        return RunParts(env, cell, estimator, learner, config.loop())

    def run_name(self) -> str:
        # An import path names the run by its class: `mypkg.cells:TanhRNN` -> `TanhRNN`.
        cell, estimator = (name.rpartition(":")[2] for name in (self.cell, self.estimator))
        if self.algo == "ppo":
            return f"{self.env.replace('/', '-')}-ppo-{cell}-seed{self.seed}"
        parts = [self.env.replace("/", "-"), cell]
        if self.cell != "linear":
            parts.append(estimator)
        return "-".join(parts) + f"-seed{self.seed}"

    def out_dir(self) -> Path:
        """``out``, or a new folder under ``runs/`` named after the run and the time now."""
        if self.out is not None:
            return self.out
        return Path("runs") / f"{self.run_name()}-{time.strftime('%Y%m%d-%H%M%S')}"

    def preset_value(self, name: str) -> Any:
        """A setting of the preset group (`PRESET_FLAGS`): its flag, or the preset's value."""
        value = getattr(self, name)
        return _PRESET_VALUES[self.preset][name] if value is None else value

    def resolved(self) -> "TrainConfig":
        """This config with every unset preset setting filled in from ``preset`` (RTRRL only:
        PPO has none of them)."""
        if self.algo != "rtrrl":
            return self
        return dataclasses.replace(self, **{n: self.preset_value(n) for n in PRESET_FLAGS})

    def fingerprint(self) -> dict[str, Any]:
        """The entries that define the run's computation (checkpoints must match them)."""
        skip = {
            "out",
            "resume",
            "config",
            "checkpoint_every",
            "steps",
            "patience",
            "patience_window",
            "target_return",
            "cpu_threads",
            "fast_cpu_codegen",  # results differ by rounding only
            "devices",  # seeds' results differ by rounding only (`rtrrl.training.LoopConfig`)
            "env_devices",  # the same
            "distributed",
            "diagnostics",
            "preset",  # the resolved settings below define the computation
        }
        if self.algo == "rtrrl":
            # PPO options do not touch an RTRRL run (and runs saved before PPO existed lack
            # them, so they must not enter its fingerprint).
            skip |= {"algo", *_PPO_OPTIONS}
        values = dataclasses.asdict(self.resolved())
        # Runs saved before presets existed lack these entries and ran the paper's settings:
        # an entry holding the paper's value stays out of the fingerprint, so they still resume.
        for name, paper in (_PRESET_VALUES["paper"] | {"eta_critic": 1.0}).items():
            if values[name] in (paper, None):
                skip.add(name)
        if values["lr_decay"] == "linear":
            skip.discard("steps")  # the schedule ends at the budget
        return {k: _jsonable(v) for k, v in values.items() if k not in skip}

    def to_json(self) -> dict[str, Any]:
        """Every entry, with the preset's settings filled in (what config.json records)."""
        return {k: _jsonable(v) for k, v in dataclasses.asdict(self.resolved()).items()}

    def loop(self) -> LoopConfig:
        return LoopConfig(
            total_steps=self.steps,
            num_envs=self.num_envs,
            num_seeds=self.seeds,
            seed=self.seed,
            eval_every=self.eval_every,
            eval_envs=self.eval_envs,
            eval_steps=self.eval_steps,
            greedy_eval=self.greedy_eval,
            patience=self.patience,
            patience_window=self.patience_window,
            target_return=self.target_return,
            diagnostics=self.diagnostics,
            devices=self.devices,
            env_devices=self.env_devices,
        )


# TrainConfig entries that RTRRLPart takes under the same name.
_RTRRL_FLAGS = (
    "lambda_actor",
    "lambda_critic",
    "lambda_cell",
    "lr_actor",
    "lr_critic",
    "lr_cell",
    "eta_actor",
    "eta_critic",
    "eta_entropy",
    "average_reward",
    "feedback",
    "critic_trace",
    "reward_scale",
    "normalize_observations",
    "censored_actions",
    "state_dependent_std",
)


def _grad_norm(flag: float | None, default: float | None) -> float | None:
    """``--max-grad-norm``: unset means the learner's `default`, 0 means no clipping."""
    if flag is None:
        return default
    return None if flag == 0 else flag


PRESET_FLAGS = (
    "reward_scale",
    "normalize_observations",
    "censored_actions",
    "state_dependent_std",
    "lr_decay",
)
"""The `TrainConfig` entries that ``preset`` sets when they are not given."""


def _preset_flags(name: str) -> dict[str, Any]:
    """`rtrrl.presets.preset` as `TrainConfig` flag values."""
    kwargs = presets.preset(name, total_updates=1)  # any length: only the kind of schedule
    scale = kwargs["reward_scale"]
    return {
        "reward_scale": "rms" if isinstance(scale, ReturnRMS) else "std",
        "normalize_observations": kwargs["observation_norm"] is not None,
        "censored_actions": kwargs["censored_actions"],
        "state_dependent_std": kwargs["state_dependent_std"],
        "lr_decay": "linear" if kwargs.get("lr_schedule") is not None else "none",
    }


_PRESET_VALUES = {name: _preset_flags(name) for name in presets.NAMES}


_PPO_OPTIONS = (
    "rollout_length",
    "epochs",
    "minibatches",
    "clip_eps",
    "clip_value",
    "gae_lambda",
    "vf_coef",
    "ent_coef",
    "lr",
)


def _flag_label(name: str) -> str:
    r"""How errors name a field: ``\`lr_cell\` (--lr-cell)``."""
    return f"`{name}` (--{name.replace('_', '-')})"


def _check(name: str, value: Any, ok, allowed: str) -> None:
    if not ok(value):
        raise ValueError(f"{_flag_label(name)} must be {allowed}, got {value!r}.")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


_MAX_SEED = 2**32 - 1
_CORES = os.cpu_count() or 1


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file of `TrainConfig` entries.

    Keys may use ``-`` or ``_``. Unknown keys raise a `ValueError` suggesting close names, and
    so does a value of the wrong type (checked here, before the command line is parsed on top).
    ``resume`` and ``config`` belong on the command line only.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"Config file {path} does not exist.")
    if not path.is_file():
        raise ValueError(f"Config file {path} is not a file: give a .yaml, .yml or .toml file.")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml_value(text) or {}
        else:
            raise ValueError(f"Config file {path}: use a .yaml, .yml or .toml file.")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"Config file {path} could not be parsed: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"Config file {path} must hold a mapping of option names to values.")
    return {
        option_name(key, f"Config file {path}"): option_value(key, value, f"Config file {path}")
        for key, value in data.items()
    }


def option_name(key: Any, where: str) -> str:
    """The `TrainConfig` field that the file key `key` names (``-`` or ``_``); an unknown
    key raises a `ValueError` suggesting close names, and `where` starts the message."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    name = str(key).replace("-", "_")
    if name not in fields:
        close = difflib.get_close_matches(name, sorted(fields), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"{where}: unknown option {key!r}.{hint}")
    if name in ("resume", "config"):
        raise ValueError(
            f"{where}: {key!r} cannot be set in a config file; pass --{name} on the command line."
        )
    return name


def option_value(key: Any, value: Any, where: str) -> Any:
    """`value` of the file key `key` as the `TrainConfig` field holds it (paths, tuples),
    after checking its type (a `ValueError` starting with `where` otherwise)."""
    name = option_name(key, where)
    if name == "out" and isinstance(value, str):
        value = Path(value)
    if name == "env_option":
        value = tuple(value) if isinstance(value, list) else (value,)
    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    ok, allowed = expected_type(field.type)
    if not ok(value):
        raise ValueError(
            f"{where}: {key!r} must be {allowed}, got {value!r} ({type(value).__name__})."
        )
    return value


def build_env(config: TrainConfig) -> envs.AbstractEnvironment:
    """The environment of `config` (unknown ids and options fail with suggestions)."""
    return config.parts().env.build()


def build_estimator(config: TrainConfig) -> AbstractGradientEstimator:
    """The estimator of `config` (`rtrrl.estimators.Frozen` with ``--freeze-cell``)."""
    return config.parts().estimator.build()


def build_cell(config: TrainConfig, input_size: int, *, key: PRNGKey) -> AbstractCell:
    """The cell of `config` reading `input_size` inputs, drawn from `key`."""
    return config.parts().cell.build(input_size, key=key)


def build_algorithm(
    config: TrainConfig, env: envs.AbstractEnvironment
) -> Callable[[PRNGKey], RTRRL | PPO]:
    """A function ``key -> RTRRL`` or ``key -> PPO`` (``--algo``; each seed draws its own
    cell), checked once here."""
    make = config.parts().learner_factory(env)
    # Trace once now (shapes only, nothing computed): bad combinations (RFLO on an LRU, a
    # categorical actor on continuous actions, ...) fail before anything is compiled or written.
    num_envs = 1 if config.algo == "rtrrl" else config.num_envs
    try:
        one_seed = jax.eval_shape(
            lambda key: make(key).init(key, env, num_envs=num_envs), prng.key(config.seed)
        )
    except IncompatibleCellError as error:
        raise IncompatibleCellError(
            f"{error} (`estimator` = {config.estimator!r}, `cell` = {config.cell!r}; on the "
            "command line RTRL() is --estimator rtrl, LocalMSE() --estimator local-mse, "
            "TruncatedBPTT() --estimator tbptt)"
        ) from None
    except prng.DrawTooLarge as error:
        raise ValueError(
            f"`hidden_size` (--hidden-size) = {config.hidden_size} is too large: {error}"
        ) from None
    check_memory(config, env, make, one_seed, num_envs)
    return make
