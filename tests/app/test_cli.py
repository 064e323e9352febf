"""The ``rtrrl`` command (`rtrrl.app.cli.main`): ``train`` writes a complete run folder, ``--config``
files (YAML, TOML) give defaults that flags override, ``eval``, ``plot`` and ``envs``."""

import contextlib
import errno
import io
import json
import stat

import numpy as np
import pytest
from _training_helpers import (
    TINY_FLAGS,
    load_run_checkpoint,
    persistent_compilation_cache,
    read_rows,
    tiny_config,
)

from rtrrl.app._files import file_mode
from rtrrl.app.cli import main
from rtrrl.training import METRIC_COLUMNS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(tmp_path_factory):
    with persistent_compilation_cache(tmp_path_factory.getbasetemp() / "jax-compilation-cache"):
        yield


def _train(argv):
    assert main(["train", *TINY_FLAGS, *argv]) == 0


@pytest.fixture(scope="module")
def one_seed_with_output(tmp_path_factory):
    """``rtrrl train`` of 1000 steps (two evaluations) with one seed: ``(folder, stdout,
    stderr)``."""
    out = tmp_path_factory.mktemp("cli") / "one-seed"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        _train(["--steps", "1000", "--out", str(out)])
    return out, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def one_seed(one_seed_with_output):
    return one_seed_with_output[0]


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """``rtrrl train --seeds 2 --seed 3``: seeds 3 and 4 in one compiled program."""
    out = tmp_path_factory.mktemp("cli") / "two-seeds"
    _train(["--steps", "1000", "--seeds", "2", "--seed", "3", "--out", str(out)])
    return out


def _is_png(path):
    data = path.read_bytes()
    return data.startswith(PNG_SIGNATURE) and len(data) > 1000


def test_train_writes_config_metrics_summary_plot_and_checkpoint(one_seed):
    assert sorted(p.name for p in one_seed.iterdir()) == [
        "checkpoint.rtrrl",
        "config.json",
        "learning_curve.png",
        "metrics.csv",
        "summary.json",
    ]
    config = json.loads((one_seed / "config.json").read_text())
    assert config["hidden_size"] == 4 and config["steps"] == 1000
    assert config["out"] == str(one_seed) and config["env"] == "CartPole-v1"
    # Unset flags stay null in the saved settings; the values in use are beside them.
    assert config["max_grad_norm"] is None and config["cpu_threads"] is None
    effective = config["effective"]
    assert (effective["max_grad_norm"], effective["eval_steps"]) == (1.0, 50)
    assert effective["cpu_threads"].startswith("1 ") and effective["learner"]["algo"] == "rtrrl"

    rows = read_rows(one_seed)
    assert list(rows[0])[: len(METRIC_COLUMNS)] == list(METRIC_COLUMNS)
    assert [(r["step"], r["seed"]) for r in rows] == [("500", "0"), ("1000", "0")]
    assert all(float(r["steps_per_second"]) > 0 for r in rows)

    summary = json.loads((one_seed / "summary.json").read_text())
    best = max(float(r["eval_return"]) for r in rows)
    assert summary["best_eval_return"] == [best]
    assert summary["median_best_eval_return"] == best
    assert summary["total_steps_per_seed"] == 1000 and summary["total_env_steps"] == 1000
    assert summary["wall_seconds"] > summary["compile_seconds"] > 0
    assert summary["wall_seconds"] > summary["run_seconds"] > 0
    assert summary["env_steps_per_second"] == pytest.approx(1000 / summary["run_seconds"])
    assert summary["num_compilations"] == 1

    assert _is_png(one_seed / "learning_curve.png")
    _, progress = load_run_checkpoint(one_seed, tiny_config(steps=1000, out=one_seed))
    assert progress.steps_done == 1000 and len(progress.rows) == 2


def test_run_files_are_readable_like_any_new_file(one_seed):
    """Atomic writes go through `tempfile.mkstemp` (mode 0o600); the files get the mode of an
    ordinary new file instead, so colleagues can read the results."""
    for path in one_seed.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == file_mode(), path.name


def test_train_reports_progress_and_where_the_results_are(one_seed_with_output):
    """Progress shows steps/s and the latest evaluation; the end names the files. Captured
    (not a terminal, like a log file), progress is one line per evaluation, no tqdm redraws."""
    out, stdout, stderr = one_seed_with_output
    assert "eval=" in stderr and "sps=" in stderr
    assert "\r" not in stderr
    progress = [line for line in stderr.splitlines() if line.startswith("step ")]
    assert [line.split(" (")[0] for line in progress] == ["step 500/1,000", "step 1,000/1,000"]
    assert f"summary: {out / 'summary.json'}" in stdout
    assert f"learning curve: {out / 'learning_curve.png'}" in stdout


def test_seeds_flag_trains_every_seed_into_the_metrics_and_summary(two_seeds):
    rows = read_rows(two_seeds)
    assert [(r["step"], r["seed"]) for r in rows] == [
        ("500", "3"),
        ("500", "4"),
        ("1000", "3"),
        ("1000", "4"),
    ]
    summary = json.loads((two_seeds / "summary.json").read_text())
    assert summary["seeds"] == [3, 4]
    best = [max(float(r["eval_return"]) for r in rows if r["seed"] == s) for s in "34"]
    assert summary["best_eval_return"] == best
    assert summary["median_best_eval_return"] == float(np.median(best))
    assert summary["total_env_steps"] == 2 * 1000


CONFIG_FILES = {
    "run.yaml": "hidden-size: 4\neval_every: 500\neval_envs: 2\neval_steps: 50\n"
    "steps: 1000\nseed: 7\npatience: 3\n",
    "run.toml": "hidden-size = 4\neval_every = 500\neval_envs = 2\neval_steps = 50\n"
    "steps = 1000\nseed = 7\npatience = 3\n",
}


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_config_file_gives_defaults_and_flags_override_them(tmp_path, name):
    """File: steps 1000, seed 7, patience 3; flags: --steps 500 --seed 5. Flags win.

    (The file changes no hyperparameter of the compiled program, so it reuses the cached one.)
    """
    path = tmp_path / name
    path.write_text(CONFIG_FILES[name])
    out = tmp_path / "run"
    assert (
        main(["train", "--config", str(path), "--steps", "500", "--seed", "5", "--out", str(out)])
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert (config["steps"], config["seed"]) == (500, 5)
    assert (config["patience"], config["hidden_size"], config["eval_steps"]) == (3, 4, 50)
    assert [(r["step"], r["seed"]) for r in read_rows(out)] == [("500", "5")]


def test_eval_prints_the_return_of_every_seed(two_seeds, capsys):
    assert main(["eval", "--run", str(two_seeds), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "seed 3: mean return" in out and "seed 4: mean return" in out
    report = json.loads(out.strip().splitlines()[-1])
    assert set(report["returns"]) == {"3", "4"}
    assert all(value > 0 for value in report["returns"].values())


def test_plot_overlays_runs_into_a_png(one_seed, two_seeds, tmp_path, capsys):
    figure = tmp_path / "figures" / "both.png"
    assert main(["plot", str(one_seed), str(two_seeds), "--out", str(figure)]) == 0
    assert _is_png(figure)
    assert f"wrote {figure}" in capsys.readouterr().out


def test_plot_is_written_atomically_and_names_the_file_it_wrote(
    one_seed, tmp_path, capsys, monkeypatch
):
    """A full disk while the figure is written leaves the old figure whole; ``--out`` without
    a suffix writes (and reports) ``<out>.png``."""
    import os

    figure = tmp_path / "figure.png"
    assert main(["plot", str(one_seed), "--out", str(figure)]) == 0
    old = figure.read_bytes()
    real_fdopen = os.fdopen

    class FullDisk:
        """The temporary file of an atomic write, on a disk that is full."""

        def __init__(self, fd, mode):
            self.file = real_fdopen(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdopen", FullDisk)
        assert main(["plot", str(one_seed), "--out", str(figure), "--title", "new"]) == 2
    assert "error: " in capsys.readouterr().err
    assert figure.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]  # no temporary file left
    assert main(["plot", str(one_seed), "--out", str(tmp_path / "bare")]) == 0
    assert f"wrote {tmp_path / 'bare.png'}" in capsys.readouterr().out
    assert _is_png(tmp_path / "bare.png")


@pytest.mark.parametrize("command", ["eval --run", "plot"])
def test_eval_and_plot_of_a_folder_without_a_run_print_an_error(tmp_path, capsys, command):
    assert main([*command.split(), str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "error: " in err and str(tmp_path) in err and "Traceback" not in err


def test_envs_lists_environment_ids(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for env_id in ("CartPole-v1", "MemoryChain-bsuite", "popgym-RepeatPreviousEasy-v0"):
        assert env_id in out
