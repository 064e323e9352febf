"""Faults a run folder must survive: ``kill -9`` at random moments, a full disk, and two
processes started on one folder at once.

After each fault every file in the folder is whole (its JSON parses, every row of
``metrics.csv`` is complete, the checkpoint passes its checksum), and the run either resumes
to the run that was never disturbed, bit for bit, or is refused with a message that says why.
(SIGTERM, SIGHUP and Ctrl-C are in ``test_resume.py``.)
"""

import errno
import json
import random
import subprocess
import sys
import time

import pytest
from _training_helpers import (
    EVAL_EVERY,
    TINY_FLAGS,
    assert_trees_equal,
    load_run_checkpoint,
    persistent_compilation_cache,
    read_rows,
    subprocess_env,
    without_timing,
)

from rtrrl.checkpoint import read_checkpoint_header
from rtrrl.cli import main
from rtrrl.runs import load_run_config

pytestmark = pytest.mark.slow

STEPS = 200 * EVAL_EVERY  # about a second of training: long enough to be hit
# A checkpoint after every evaluation, no early stopping: a fault can hit between any two.
FLAGS = [*TINY_FLAGS, "--patience", "None", "--checkpoint-every", "1", "--steps", str(STEPS)]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    # Not the session's shared cache: these tests kill and starve processes, and JAX writes
    # cache entries in place, so nothing they write may be read by other test modules.
    return tmp_path_factory.mktemp("faults-compilation-cache")


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(cache_dir):
    with persistent_compilation_cache(cache_dir):
        yield


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The undisturbed run."""
    out = tmp_path_factory.mktemp("faults") / "reference"
    assert main(["train", *FLAGS, "--out", str(out)]) == 0
    return out


def _start_train(run, cache_dir, log):
    return subprocess.Popen(
        [sys.executable, "-m", "rtrrl.cli", "train", *FLAGS, "--out", str(run)],
        env=subprocess_env(cache_dir),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _assert_files_whole(run):
    for name in ("config.json", "summary.json"):
        if (run / name).exists():
            json.loads((run / name).read_text())
    if (run / "metrics.csv").exists():
        rows = read_rows(run)
        assert all(None not in row.values() and "" not in row.values() for row in rows)
    if (run / "checkpoint.rtrrl").exists():
        read_checkpoint_header(run / "checkpoint.rtrrl")  # raises if truncated or corrupt


def _assert_same_run(run, reference):
    assert without_timing(read_rows(run)) == without_timing(read_rows(reference))
    states, progress = load_run_checkpoint(run, load_run_config(run))
    reference_states, reference_progress = load_run_checkpoint(
        reference, load_run_config(reference)
    )
    assert_trees_equal(states, reference_states)
    assert progress.steps_done == reference_progress.steps_done == STEPS


def _resume_or_refusal(run, reference, capsys):
    """Resume `run`: it must end as `reference`, or be refused because it saved nothing."""
    capsys.readouterr()
    code = main(["train", "--resume", str(run)])
    if (run / "summary.json").exists() and code == 0:
        _assert_same_run(run, reference)
        assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    else:
        assert code == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "nothing to resume" in errors[0], err


def test_kill_9_at_random_moments_leaves_whole_files_and_a_resumable_run(
    reference, tmp_path, cache_dir, capsys
):
    """One kill as XLA starts compiling (nothing saved yet: a clear refusal), three at random
    moments of training (between, or in the middle of, the writes of metrics.csv and the
    checkpoint after each evaluation: the resume ends as the undisturbed run, or, before the
    first checkpoint, a clear refusal)."""
    rng = random.Random(20261205)
    for trial, moment in enumerate(["compiling", "training", "training", "training"]):
        run = tmp_path / f"killed-{trial}"
        first_file = "config.json" if moment == "compiling" else "metrics.csv"
        with (tmp_path / f"log-{trial}.txt").open("w") as log:
            # A compilation cache of its own: JAX writes cache entries in place, so a kill
            # can leave a truncated one, which crashes whoever reads it next.
            process = _start_train(run, tmp_path / f"cache-{trial}", log)
            try:
                deadline = time.monotonic() + 120
                while not (run / first_file).exists() and process.poll() is None:
                    assert time.monotonic() < deadline, f"no {first_file} appeared"
                    time.sleep(0.005)
                time.sleep(0.0 if moment == "compiling" else rng.uniform(0.0, 0.3))
                assert process.poll() is None, "the run ended before the kill: make it longer"
            finally:
                process.kill()
                process.wait()
        _assert_files_whole(run)
        _resume_or_refusal(run, reference, capsys)


def test_a_full_disk_stops_the_run_with_one_error_and_loses_nothing(
    reference, tmp_path, monkeypatch, capsys
):
    """Every run file goes through one atomic write; from the 12th write on the disk is full
    (the write fails before touching its target, as the real one does). The run ends with
    exit 2 and one error line; what was written before is whole; once space is back, the
    resume ends as the undisturbed run."""
    import rtrrl._files
    import rtrrl.checkpoint
    import rtrrl.plotting
    import rtrrl.runs

    write = rtrrl._files.write_bytes_atomic
    writes = []

    def filling_disk(path, data, **kwargs):
        writes.append(path.name)
        if len(writes) >= 12:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return write(path, data, **kwargs)

    run = tmp_path / "full"
    with monkeypatch.context() as patch:
        for module in (rtrrl.runs, rtrrl.checkpoint, rtrrl.plotting):
            patch.setattr(module, "write_bytes_atomic", filling_disk)
        assert main(["train", *FLAGS, "--out", str(run)]) == 2
    err = capsys.readouterr().err  # the progress bar, then the error
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "No space left on device" in errors[0], err
    assert "Traceback" not in err
    _assert_files_whole(run)
    assert (run / "checkpoint.rtrrl").exists() and not (run / "summary.json").exists()
    assert main(["train", "--resume", str(run)]) == 0
    _assert_same_run(run, reference)


def test_two_runs_started_on_one_folder_at_once_give_one_run(reference, tmp_path, cache_dir):
    """Exactly one of them trains; the other exits 2 (the folder is in use, or already holds
    the first one's run) and writes nothing: the folder holds the undisturbed run."""
    run = tmp_path / "shared"
    logs = [tmp_path / "first.txt", tmp_path / "second.txt"]
    processes = []
    for path in logs:
        with path.open("w") as log:
            processes.append(_start_train(run, cache_dir, log))
    codes = [process.wait(timeout=300) for process in processes]
    assert sorted(codes) == [0, 2], [path.read_text() for path in logs]
    refused = logs[codes.index(2)].read_text()
    assert "in use by another rtrrl process" in refused or "already holds a run" in refused
    assert "Traceback" not in refused
    _assert_same_run(run, reference)
