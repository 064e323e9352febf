"""The ``rtrrl`` command: ``train``, ``eval``, ``plot``, ``sweep``, ``envs`` (built with tyro)."""

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro

from ._signals import StopRequests, Terminated
from .config import TrainConfig, load_config_file


@dataclasses.dataclass(frozen=True)
class EvalCommand:
    """Evaluate the checkpoint of a run folder (no learning): the agents as they were when
    training stopped (the end of the budget, the early stop, or a Ctrl-C), not at their best
    evaluation."""

    run: Path
    """Run folder written by ``rtrrl train``."""
    episodes: int = 16
    """Episodes per seed (>= 1)."""
    greedy: bool = False
    """Take the most likely action instead of sampling."""
    seed: int = 12345
    """Evaluation seed."""


@dataclasses.dataclass(frozen=True)
class PlotCommand:
    """Overlay the learning curves of several runs in one PNG: mean over seeds, min-max band,
    each run's best mean (dot) and early stops (crosses); runs on different environments are
    flagged."""

    runs: Annotated[tuple[Path, ...], tyro.conf.Positional]
    """Run folders."""
    out: Path = Path("runs/comparison.png")
    """Where to write the figure (PNG); an existing folder gets ``comparison.png`` inside."""
    metric: Literal["eval_return", "train_return", "td_error"] = "eval_return"
    """Which column of metrics.csv to plot."""
    title: str | None = None
    """Figure title (default: the runs' environment ids)."""


@dataclasses.dataclass(frozen=True)
class SweepCommand:
    """Train a grid or random sample of configurations × seeds: one compiled program per
    structural group, one run folder per configuration, plus sweep.csv, sweep.md and
    sweep.png (see docs: "Sweeps")."""

    config: Path | None = None
    """Sweep file (YAML): base options and a `grid:` or `random:` section."""
    out: Path | None = None
    """Sweep folder (default: the file's `out`, else runs/sweep-<date>-<time>). A folder
    holding this same sweep is continued."""
    resume: Path | None = None
    """Continue the sweep saved in this folder (its sweep.json gives the sweep)."""


@dataclasses.dataclass(frozen=True)
class EnvsCommand:
    """List every environment id with its observation size, action space and source."""

    source: Literal["gymnax", "popgym", "brax"] | None = None
    """Only ids of this source."""


def _option_value(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


class _ParsedTrainConfig(TrainConfig):
    """`TrainConfig` as tyro parses it, not yet checked.

    tyro reports a `ValueError` raised while it builds the dataclass in its own box and exits;
    the values are checked afterwards by `_checked` instead, so that a bad value prints one
    ``error: ...`` line and `main` returns 2, like every other error of ``rtrrl train``.
    """

    def __post_init__(self) -> None:
        pass


def _fields(config: TrainConfig) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(TrainConfig)}


def _checked(config: TrainConfig) -> TrainConfig:
    return TrainConfig(**_fields(config))


def _refuse_flags_ignored_by_resume(argv: list[str]) -> None:
    """A resumed run keeps its folder and its saved config: ``--out`` and ``--config`` would
    be silently ignored, so they are refused (other flags override the saved values, and a
    change to the computation is refused by the checkpoint's fingerprint)."""
    if _option_value(argv, "--resume") is None:
        return
    for flag in ("--out", "--config"):
        if _option_value(argv, flag) is not None:
            raise ValueError(
                f"{flag} cannot be combined with --resume: a resumed run keeps its folder and "
                "its saved config.json. Drop it (change single values with their own flags)."
            )


def _train_defaults(argv: list[str]) -> _ParsedTrainConfig:
    """Defaults for ``train``: a resumed run's saved config, or a ``--config`` file."""
    resume = _option_value(argv, "--resume")
    if resume is not None:
        from .runs import load_run_config

        saved = dataclasses.replace(load_run_config(resume), resume=Path(resume))
        return _ParsedTrainConfig(**_fields(saved))
    config_file = _option_value(argv, "--config")
    if config_file is not None:
        return _ParsedTrainConfig(**load_config_file(config_file))
    return _ParsedTrainConfig()


def _train(config: TrainConfig, stops: StopRequests) -> int:
    from ..training import NonFiniteError
    from .runs import PLOT_NAME, SUMMARY_NAME, run_training

    if config.resume is None:
        config = dataclasses.replace(config, out=config.out_dir())  # fix the folder name once
    try:
        result = run_training(config, stop_check=stops.check)
    except (ValueError, TypeError, NonFiniteError, OSError) as error:
        # Bad values, unknown ids, corrupt checkpoints, occupied folders: the message names
        # the culprit (status 2). A run that diverged is status 1.
        print(f"error: {error}", file=sys.stderr)
        return 1 if isinstance(error, NonFiniteError) else 2
    except KeyboardInterrupt as interrupt:
        # Ctrl-C, SIGTERM or SIGHUP, raised by `stops.check`; `run_training` has saved a
        # checkpoint (once training started) and said what it did.
        return interrupt.exit_code if isinstance(interrupt, Terminated) else 130
    import jax

    if jax.process_index() != 0:
        return 0  # process 0 of a multi-process run reports for all
    out = config.resume if config.resume is not None else config.out_dir()
    best, final = _per_seed(result.best_eval_return), _per_seed(result.final_eval_return)
    print(
        f"best eval return per seed: {best} | final: {final} | "
        f"{result.env_steps_per_second:,.0f} env-steps/s (compile {result.compile_seconds:.1f} s)"
    )
    print(f"summary: {out / SUMMARY_NAME}")
    print(f"learning curve: {out / PLOT_NAME}")
    return 0


def _eval(command: EvalCommand) -> int:
    from .runs import evaluate_run

    if command.episodes < 1:
        raise ValueError(
            f"`episodes` (--episodes) must be an integer >= 1, got {command.episodes}."
        )
    if not 0 <= command.seed <= 2**32 - 1:  # as `train` checks its seeds
        raise ValueError(
            f"`seed` (--seed) must be an integer in [0, {2**32 - 1}], got {command.seed}."
        )
    returns = evaluate_run(
        command.run, episodes=command.episodes, greedy=command.greedy, seed=command.seed
    )
    for seed, value in returns.items():
        print(f"seed {seed}: mean return {value:.4g} over {command.episodes} episodes")
    print(json.dumps({"run": str(command.run), "returns": returns}))
    return 0


def _plot(command: PlotCommand) -> int:
    """Overlay the runs. Runs on different environments (ids, or options of one id) are
    plotted but flagged: a warning line, and each legend label names its environment."""
    from .plotting import plot_runs, read_metrics
    from .runs import load_run_config

    if not command.runs:
        raise ValueError("Name one or more run folders to plot: `rtrrl plot RUN [RUN ...]`.")
    runs, environments = {}, {}
    for run in command.runs:
        try:
            config = load_run_config(run)
            label, env = config.run_name(), _environment(config)
        except FileNotFoundError:
            label, env = run.name, None
        label = label if label not in runs else str(run)
        runs[label], environments[label] = read_metrics(run), env
    different = sorted({env for env in environments.values() if env})
    if len(different) > 1:
        print(
            f"warning: these runs are on different environments ({'; '.join(different)}): "
            "their curves are not on one scale. Each legend label names its environment.",
            file=sys.stderr,
        )
    out = command.out / "comparison.png" if command.out.is_dir() else command.out
    path = plot_runs(
        runs, out, metric=command.metric, title=command.title, environments=environments
    )
    print(f"wrote {path}")
    return 0


def _environment(config: TrainConfig) -> str:
    """A run's environment as the plot names it: the id, and any options that change it."""
    options = [*config.env_option] + ([f"obs_mask={config.obs_mask}"] if config.obs_mask else [])
    return config.env + (f" ({', '.join(options)})" if options else "")


def _per_seed(values) -> str:
    """Every seed's value, or their median and range when there are more than ten."""
    if len(values) <= 10:
        return ", ".join(f"{v:.4g}" for v in values)
    low, median, high = np.nanmin(values), np.nanmedian(values), np.nanmax(values)
    return f"median {median:.4g} (min {low:.4g}, max {high:.4g}, {len(values)} seeds)"


def _sweep(command: SweepCommand) -> int:
    from ..training import NonFiniteError
    from .checkpoint import CheckpointError
    from .sweep import FIGURE_NAME, MARKDOWN_NAME, run_sweep

    if (command.config is None) == (command.resume is None):
        print(
            "error: give --config SWEEP.yaml (a new sweep) or --resume FOLDER (a saved one).",
            file=sys.stderr,
        )
        return 2
    if command.resume is not None and command.out is not None:
        print("error: --out cannot be combined with --resume: drop --out.", file=sys.stderr)
        return 2
    try:
        # Ctrl-C, SIGTERM and SIGHUP are acted on where nothing is in flight (as for train).
        with StopRequests() as stops:
            outcome = run_sweep(
                command.config, out=command.out, resume=command.resume, stop_check=stops.check
            )
    except (ValueError, TypeError, NonFiniteError, CheckpointError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1 if isinstance(error, NonFiniteError) else 2
    except KeyboardInterrupt as interrupt:
        return interrupt.exit_code if isinstance(interrupt, Terminated) else 130
    print(f"table: {outcome.folder / MARKDOWN_NAME}")
    print(f"figure: {outcome.folder / FIGURE_NAME}")
    return 0


def _envs(command: EnvsCommand) -> int:
    from ..envs import env_table

    print(env_table(command.source))
    return 0


_COMMANDS = {
    "train": TrainConfig,
    "eval": EvalCommand,
    "plot": PlotCommand,
    "sweep": SweepCommand,
    "envs": EnvsCommand,
}


def _command(argv: list[str]):
    """Parse `argv` (a command and its flags) with tyro; ``--help`` and bad flags exit."""
    return tyro.extras.subcommand_cli_from_dict(
        _COMMANDS,
        args=argv,
        prog="rtrrl",
        description="Online recurrent reinforcement learning (RTRRL) in JAX. `rtrrl --version` "
        "prints the version; `rtrrl COMMAND --help` explains a command.",
    )


def _print_help() -> int:
    """The help of ``rtrrl`` (its commands): what a bare ``rtrrl`` prints, so that trying the
    command without arguments explains it instead of starting a million-step run."""
    try:
        _command(["--help"])
    except SystemExit as done:  # argparse exits 0 after printing the help
        return done.code if isinstance(done.code, int) else 0
    return 0


def _train_command(args: list[str]) -> int:
    """``rtrrl train ARGS``: defaults from ``--resume``'s folder or ``--config``, flags on
    top, every value checked (one ``error:`` line and status 2), then the run.

    From the start, Ctrl-C, SIGTERM and SIGHUP are recorded and acted on where the run can
    stop cleanly (`StopRequests`), never in the middle of JAX's work."""
    with StopRequests() as stops:
        return _checked_train(args, stops)


def _checked_train(args: list[str], stops: StopRequests) -> int:
    try:
        _refuse_flags_ignored_by_resume(args)
        defaults = _train_defaults(args)
        parsed = tyro.cli(
            _ParsedTrainConfig,
            default=defaults,
            args=args,
            prog="rtrrl train",
            description=TrainConfig.__doc__,
        )
        config = _checked(parsed)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return _train(config, stops)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rtrrl`` console script (and of ``python -m rtrrl``).

    A bare ``rtrrl`` prints the help; ``--version`` prints the version. Flags need a command
    in front (``rtrrl train --env ...``): a typo must not start the default run."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _print_help()
    if argv[0] in ("--version", "-V"):
        from .. import __version__

        print(f"rtrrl {__version__}")
        return 0
    if argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        print(
            f"error: name a command before the flags, e.g. `rtrrl train {' '.join(argv)}` "
            f"(commands: {', '.join(_COMMANDS)}; `rtrrl --help` explains them).",
            file=sys.stderr,
        )
        return 2
    if argv[0] == "train":
        return _train_command(argv[1:])
    command = _command(argv)
    try:
        if isinstance(command, EvalCommand):
            return _eval(command)
        if isinstance(command, PlotCommand):
            return _plot(command)
    except (ValueError, OSError) as error:
        # Not a run folder, a corrupt or mismatched checkpoint, a bad value: the message names
        # the culprit.
        print(f"error: {error}", file=sys.stderr)
        return 2
    if isinstance(command, SweepCommand):
        return _sweep(command)
    if isinstance(command, EnvsCommand):
        return _envs(command)
    raise AssertionError(f"unhandled command {command!r}")  # `train` is parsed above


if __name__ == "__main__":
    raise SystemExit(main())
