"""Resuming runs through the CLI: an interrupted and resumed run is the uninterrupted run, bit
for bit, whether it was stopped between two ``rtrrl train`` calls or by Ctrl-C; a diverging run
keeps its last good checkpoint; a corrupt or mismatched checkpoint is refused."""

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from _training_helpers import (
    CLI_WITH_STOP_SIGNALS,
    EVAL_EVERY,
    NAN_ENV_ID,
    TINY_FLAGS,
    RewardTurnsNaN,
    assert_trees_equal,
    leaves,
    load_run_checkpoint,
    persistent_compilation_cache,
    read_rows,
    subprocess_env,
    wait_for,
    without_timing,
)

from rtrrl.app.cli import main
from rtrrl.app.runs import load_run_config
from rtrrl.envs import EnvSpec, _registry

STEPS = 4 * EVAL_EVERY
# Constant step sizes: only such a run can be extended to a larger budget (with the default
# preset's decay the step sizes reach zero at the budget, so --steps is part of the run; that
# case is tested at the end).
FLAGS = [*TINY_FLAGS, "--lr-decay", "none"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "jax-compilation-cache"


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(cache_dir):
    with persistent_compilation_cache(cache_dir):
        yield


def _train(*argv):
    assert main(["train", *argv]) == 0


def _saved_config(run):
    return json.loads((run / "config.json").read_text())


def _checkpoint(run):
    return load_run_checkpoint(run, load_run_config(run))


def _summary(run):
    return json.loads((run / "summary.json").read_text())


def assert_same_run(resumed, uninterrupted):
    """Same metrics (all but wall-clock columns), same final states and bookkeeping."""
    assert without_timing(read_rows(resumed)) == without_timing(read_rows(uninterrupted))
    states, progress = _checkpoint(resumed)
    reference_states, reference = _checkpoint(uninterrupted)
    assert_trees_equal(states, reference_states)
    for name in ("chunk", "steps_done", "best_eval_return", "best_step", "evals_since_best"):
        assert getattr(progress, name) == getattr(reference, name), name
    assert progress.active == reference.active
    summary, reference_summary = _summary(resumed), _summary(uninterrupted)
    for name in ("best_eval_return", "best_step", "final_eval_return", "total_env_steps"):
        assert summary[name] == reference_summary[name], name


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """``rtrrl train --steps 2000``, start to end in one call."""
    out = tmp_path_factory.mktemp("resume") / "uninterrupted"
    _train(*FLAGS, "--steps", str(STEPS), "--out", str(out))
    return out


@pytest.fixture(scope="module")
def half(tmp_path_factory):
    """``rtrrl train --steps 1000``: the first half of `uninterrupted` (a template to copy)."""
    out = tmp_path_factory.mktemp("resume") / "half"
    _train(*FLAGS, "--steps", str(STEPS // 2), "--out", str(out))
    return out


def test_resumed_run_equals_uninterrupted_run_bit_for_bit(uninterrupted, half, tmp_path):
    """``train --steps N/2 --out B`` then ``train --resume B --steps N`` gives the same
    metrics.csv as ``train --steps N --out A`` in every column except ``steps_per_second``
    (wall-clock timing, different in every run), and bitwise equal final parameters,
    optimiser and environment states (CPU, same seed)."""
    run = tmp_path / "resumed"
    shutil.copytree(half, run)
    assert _checkpoint(run)[1].steps_done == STEPS // 2
    _train("--resume", str(run), "--steps", str(STEPS))
    assert len(read_rows(run)) == STEPS // EVAL_EVERY
    assert_same_run(run, uninterrupted)
    params, reference = leaves(_checkpoint(run)[0].params), leaves(_checkpoint(half)[0].params)
    assert not all(np.array_equal(a, b) for a, b in zip(params, reference, strict=True))
    config, reference_config = _saved_config(run), _saved_config(uninterrupted)
    assert {**config, "out": None} == {**reference_config, "out": None}
    assert _summary(run)["num_compilations"] == 1
    for name in ("wall_seconds", "compile_seconds", "run_seconds"):  # summed over sessions
        assert _summary(run)[name] > _summary(half)[name], name


@pytest.mark.skipif(os.name == "nt", reason="needs POSIX signals")
@pytest.mark.parametrize(
    ("signal_name", "exit_code"), [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)]
)
def test_a_stop_signal_saves_a_checkpoint_that_resumes_to_the_uninterrupted_run(
    tmp_path, cache_dir, signal_name, exit_code
):
    """Ctrl-C (SIGINT), a scheduler's SIGTERM or a closed terminal's SIGHUP to ``rtrrl train``
    in a subprocess: exit code 128 + the signal's number, a valid checkpoint and metrics.csv
    of the chunks done; ``--resume`` from it then matches, bit for bit (but for the
    wall-clock ``steps_per_second``), a run that was never interrupted."""
    run = tmp_path / "interrupted"
    # Float64 like this process, so that the runs compare bit for bit. The module's cache is
    # safe to share: the subprocess stops where nothing is being written, not killed.
    env = subprocess_env(cache_dir)
    # No periodic checkpoint: the one found afterwards is the one saved on Ctrl-C. No early
    # stopping either: a fast machine would otherwise finish the run before the signal.
    flags = [*FLAGS, "--patience", "None"]
    argv = [*flags, "--steps", "100000000", "--checkpoint-every", "100000", "--out", str(run)]
    log = tmp_path / "log.txt"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", CLI_WITH_STOP_SIGNALS, "train", *argv],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            started = wait_for(run / "metrics.csv", process, timeout=300)
            assert started, f"no metrics.csv appeared:\n{log.read_text()}"
            assert not (run / "checkpoint.rtrrl").exists()
            process.send_signal(getattr(signal, signal_name))
            code = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert code == exit_code, log.read_text()
    assert "Interrupted: checkpoint saved" in log.read_text()
    assert "Traceback" not in log.read_text()

    _, progress = _checkpoint(run)
    done = progress.steps_done
    assert done >= EVAL_EVERY and done % EVAL_EVERY == 0
    assert len(read_rows(run)) == done // EVAL_EVERY
    assert [int(r["step"]) for r in read_rows(run)] == [row["step"] for row in progress.rows]

    total = done + 2 * EVAL_EVERY
    _train("--resume", str(run), "--steps", str(total))
    reference = tmp_path / "reference"
    _train(*flags, "--steps", str(total), "--out", str(reference))
    assert len(read_rows(run)) == total // EVAL_EVERY
    assert_same_run(run, reference)


@pytest.fixture
def nan_env_registered(monkeypatch):
    """Register `RewardTurnsNaN` under a test id for the duration of one test."""
    spec = EnvSpec(NAN_ENV_ID, "test", lambda: RewardTurnsNaN(), "reward turns NaN")
    monkeypatch.setitem(_registry._REGISTRY, NAN_ENV_ID, spec)


def test_non_finite_stop_keeps_the_last_good_checkpoint(tmp_path, capsys, nan_env_registered):
    """The reward turns NaN in the fourth chunk: ``rtrrl train`` prints the error and returns
    1; the checkpoint and metrics are those of the three good chunks and still load."""
    run = tmp_path / "diverged"
    argv = [*TINY_FLAGS, "--env", NAN_ENV_ID, "--steps", str(8 * EVAL_EVERY)]
    assert main(["train", *argv, "--checkpoint-every", "1", "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert "error: Training produced a non-finite" in err and f"Run folder: {run}" in err
    assert "Traceback" not in err
    rows = read_rows(run)
    assert [r["step"] for r in rows] == ["500", "1000", "1500"]
    assert [r["eval_return"] for r in rows] == ["50.0"] * 3
    states, progress = _checkpoint(run)
    assert (progress.chunk, progress.steps_done, len(progress.rows)) == (3, 1500, 3)
    assert all(np.isfinite(leaf).all() for leaf in leaves(states.params))
    assert not (run / "summary.json").exists()


def test_resume_with_a_changed_hyperparameter_is_refused(half, tmp_path, capsys):
    run = tmp_path / "changed"
    shutil.copytree(half, run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--resume", str(run), "--lr-actor", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "different configuration" in err
    assert "lr_actor: checkpoint=0.001, now=0.5" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_resume_from_a_corrupt_checkpoint_is_refused(half, tmp_path, capsys):
    run = tmp_path / "corrupt"
    shutil.copytree(half, run)
    path = run / "checkpoint.rtrrl"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(["train", "--resume", str(run), "--steps", str(STEPS)]) != 0
    err = capsys.readouterr().err
    assert "error: " in err and "corrupt" in err and "checksum" in err
    assert len(read_rows(run)) == 2


def test_non_finite_stop_before_any_checkpoint_says_so(tmp_path, capsys, nan_env_registered):
    """Diverging in the fourth chunk, with a checkpoint every 10 evaluations: the message does
    not promise a checkpoint, and ``--resume`` explains that there is nothing to resume."""
    run = tmp_path / "diverged"
    argv = [*TINY_FLAGS, "--env", NAN_ENV_ID, "--steps", str(8 * EVAL_EVERY), "--out", str(run)]
    assert main(["train", *argv]) == 1
    err = capsys.readouterr().err
    assert "No checkpoint had been saved yet" in err and "checkpoint is kept" not in err
    assert not (run / "checkpoint.rtrrl").exists() and len(read_rows(run)) == 3
    assert main(["train", "--resume", str(run)]) == 2
    assert "so there is nothing to resume" in capsys.readouterr().err


def _train_interrupted_while_compiling(monkeypatch, *argv) -> int:
    """``rtrrl train --steps STEPS *argv`` with Ctrl-C arriving while XLA compiles the first
    chunk; returns the exit code (compilation works again afterwards)."""
    from rtrrl.training import _loop

    class Interrupted:
        def lower(self, *args):
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(_loop, "make_chunk_function", lambda *a: Interrupted())
        return main(["train", *argv, "--steps", str(STEPS)])


def test_ctrl_c_while_compiling_saves_the_start_and_resumes_to_the_uninterrupted_run(
    uninterrupted, tmp_path, monkeypatch, capsys
):
    """Ctrl-C before the first chunk (while XLA compiles) saves the starting point, so the
    folder can be resumed; the resumed run is the uninterrupted one."""
    run = tmp_path / "interrupted"
    assert _train_interrupted_while_compiling(monkeypatch, *FLAGS, "--out", str(run)) == 130
    assert "Interrupted: checkpoint saved" in capsys.readouterr().out
    assert _checkpoint(run)[1].steps_done == 0 and read_rows(run) == []
    _train("--resume", str(run))
    assert_same_run(run, uninterrupted)


def test_resume_below_the_steps_done_is_refused(half, tmp_path, capsys):
    run = tmp_path / "below"
    shutil.copytree(half, run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--resume", str(run), "--steps", str(EVAL_EVERY)]) == 2
    err = capsys.readouterr().err
    assert f"`steps` (--steps) = {EVAL_EVERY} is below the {STEPS // 2:,} steps" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_resume_of_a_finished_run_says_so_and_compiles_nothing(half, tmp_path, capsys):
    run = tmp_path / "finished"
    shutil.copytree(half, run)
    rows = read_rows(run)
    _train("--resume", str(run))
    assert "Nothing to resume" in capsys.readouterr().out
    assert read_rows(run) == rows
    assert _summary(run)["num_compilations"] == 0


def test_resume_with_a_larger_patience_continues_the_seeds_that_stopped(tmp_path, capsys):
    """A seed stopped by ``--patience 1`` goes on when the run is resumed without patience."""
    run = tmp_path / "patient"
    _train(*TINY_FLAGS, "--seeds", "2", "--patience", "1", "--steps", str(STEPS), "--out", str(run))
    assert any(_summary(run)["stopped_early"])  # the seeds stop before 4 evaluations
    before = read_rows(run)
    assert len(before) < 2 * STEPS // EVAL_EVERY
    _train("--resume", str(run), "--patience", "None")
    assert "Resuming" in capsys.readouterr().out
    after = read_rows(run)
    assert after[: len(before)] == before and len(after) > len(before)
    assert {r["seed"] for r in after if r["step"] == str(STEPS)} == {"0", "1"}
    assert _summary(run)["stopped_early"] == [False, False]
    assert _checkpoint(run)[1].steps_done == STEPS


def test_a_run_with_decaying_step_sizes_resumes_bit_for_bit_but_keeps_its_budget(
    tmp_path, monkeypatch, capsys
):
    """The default preset's step sizes fall to zero at ``--steps``: a run stopped by Ctrl-C
    (here while compiling) resumes to the uninterrupted run, and a resume with another
    ``--steps`` is refused with a message that names the fix, before touching the folder."""
    reference = tmp_path / "reference"
    _train(*TINY_FLAGS, "--steps", str(STEPS), "--out", str(reference))
    assert _saved_config(reference)["lr_decay"] == "linear"
    run = tmp_path / "interrupted"
    assert _train_interrupted_while_compiling(monkeypatch, *TINY_FLAGS, "--out", str(run)) == 130
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", str(2 * STEPS)]) == 2
    err = capsys.readouterr().err
    assert "differs from the 2,000 that" in err and "start them with --lr-decay none" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    _train("--resume", str(run))
    assert_same_run(run, reference)
