"""Faults a run folder must survive: ``kill -9`` and Ctrl-C at random moments (compilation
included), a full disk, and two processes started on one folder at once.

After each fault every file in the folder is whole (its JSON parses, every row of
``metrics.csv`` is complete, the checkpoint passes its checksum), no temporary file is left
once the run has gone on, and the run either resumes to the run that was never disturbed,
bit for bit, or is refused with a message that says why. (SIGTERM and SIGHUP, each followed
by a bit-for-bit resume, are in ``tests/app/test_resume.py``.)

Every ``rtrrl`` subprocess gets a compilation cache of its own, a copy of a warm one
(``_own_cache``) or none: JAX writes cache entries in place, so a killed process can leave a
truncated entry that crashes whoever reads it next.
"""

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _training_helpers import (
    CLI_WITH_STOP_SIGNALS,
    EVAL_EVERY,
    TINY_FLAGS,
    assert_trees_equal,
    load_run_checkpoint,
    persistent_compilation_cache,
    read_rows,
    subprocess_env,
    without_timing,
)

from rtrrl.app import _files
from rtrrl.app.checkpoint import read_checkpoint_header
from rtrrl.app.cli import main
from rtrrl.app.runs import load_run_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name == "nt", reason="needs POSIX signals"),
]

CHUNKS = 40
STEPS = CHUNKS * EVAL_EVERY  # about half a second of training on an idle machine
# A checkpoint after every evaluation, no early stopping: a fault can hit between any two.
FLAGS = [*TINY_FLAGS, "--patience", "None", "--checkpoint-every", "1", "--steps", str(STEPS)]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    # Not the session's shared cache: nothing these tests' processes write may be read by
    # other modules.
    return tmp_path_factory.mktemp("faults-compilation-cache")


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(cache_dir):
    with persistent_compilation_cache(cache_dir):
        yield


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """A compilation cache filled by an undisturbed ``rtrrl train`` subprocess, to be copied
    (`_own_cache`); a subprocess finds every program of its run there, while this process
    (other settings: the suite's runtime type checks) compiles its own."""
    return tmp_path_factory.mktemp("faults-warm-cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, warm_cache):
    """The undisturbed run, made by a subprocess as the disturbed ones are."""
    out = tmp_path_factory.mktemp("faults") / "reference"
    log = out.parent / "reference.txt"
    process = _start(out, warm_cache, log)
    assert process.wait(timeout=240) == 0, log.read_text()
    return out


def _own_cache(warm_cache: Path, tmp_path: Path, name: str) -> Path:
    """A copy of `warm_cache` for one subprocess that may be disturbed: no compilation,
    nothing shared."""
    own = tmp_path / f"cache-{name}"
    shutil.copytree(warm_cache, own)
    return own


def _start(run: Path, cache: Path | None, log: Path) -> subprocess.Popen:
    """``rtrrl train FLAGS --out run`` with stop signals on, its output going to `log`."""
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-c", CLI_WITH_STOP_SIGNALS, "train", *FLAGS, "--out", str(run)],
            env=subprocess_env(cache),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _disturb(trials: list[tuple[subprocess.Popen, Path, float, list[int]]], timeout=240):
    """Run the trials side by side: in each ``(process, path, delay, signals)``, once `path`
    exists, wait `delay` seconds, then send `signals`, 0.2 s apart. Returns the exit codes."""
    deadline = time.monotonic() + timeout
    # Per trial: the signals still to send, and when the next one is due (None: not yet).
    pending = {i: (list(signals), None) for i, (*_, signals) in enumerate(trials)}
    try:
        while pending:
            assert time.monotonic() < deadline, "a run never reached its moment"
            for i, (signals, due) in list(pending.items()):
                process, path, delay, sent = trials[i][0], trials[i][1], trials[i][2], trials[i][3]
                if process.poll() is not None:
                    assert len(signals) < len(sent), f"trial {i} ended before its moment"
                    del pending[i]  # it stopped before a second signal: the codes tell
                    continue
                now = time.monotonic()
                if due is None and path.exists():
                    due = now + delay
                if due is not None and now >= due:
                    process.send_signal(signals.pop(0))
                    due = now + 0.2
                pending[i] = (signals, due)
                if not signals:
                    del pending[i]
            time.sleep(0.002)
        return [process.wait(timeout=120) for process, *_ in trials]
    finally:
        for process, *_ in trials:
            if process.poll() is None:
                process.kill()
                process.wait()


def _assert_files_whole(run: Path) -> None:
    for name in ("config.json", "summary.json"):
        if (run / name).exists():
            json.loads((run / name).read_text())
    if (run / "metrics.csv").exists():
        rows = read_rows(run)
        assert all(None not in row.values() and "" not in row.values() for row in rows)
    if (run / "checkpoint.rtrrl").exists():
        read_checkpoint_header(run / "checkpoint.rtrrl")  # raises if truncated or corrupt


def _assert_same_run(run: Path, reference: Path) -> None:
    assert without_timing(read_rows(run)) == without_timing(read_rows(reference))
    states, progress = load_run_checkpoint(run, load_run_config(run))
    reference_states, reference_progress = load_run_checkpoint(
        reference, load_run_config(reference)
    )
    assert_trees_equal(states, reference_states)
    assert progress.steps_done == reference_progress.steps_done == STEPS
    summary = json.loads((run / "summary.json").read_text())
    assert (
        summary["best_eval_return"]
        == json.loads((reference / "summary.json").read_text())["best_eval_return"]
    )


def _resume_or_refusal(run: Path, reference: Path, capsys) -> str:
    """Resume `run`: it must end as `reference`, or be refused because nothing was saved.
    Returns which of the two happened."""
    capsys.readouterr()
    saved = (run / "checkpoint.rtrrl").exists()
    code = main(["train", "--resume", str(run)])
    err = capsys.readouterr().err
    if saved:
        assert code == 0, err
        _assert_same_run(run, reference)
        assert not [p.name for p in run.iterdir() if p.name.startswith(".")], "temporaries left"
        return "resumed"
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "nothing to resume" in errors[0], err
    return "refused"


def test_kill_9_at_random_moments_leaves_whole_files_and_a_resumable_run(
    reference, tmp_path, warm_cache, capsys
):
    """One kill while the run compiles (nothing saved yet: a clear refusal), two at random
    moments of training: the resume ends as the undisturbed run."""
    rng = random.Random(20261205)
    moments = [("config.json", 0.0, None)]  # no cache: it compiles for seconds
    # From the first checkpoint on: a kill then hits between, or in the middle of, the
    # writes of later evaluations, and the folder always has a checkpoint to resume.
    # Within 0.1 s: the run must still be going (a signal during its last chunk lets it end).
    moments += [("checkpoint.rtrrl", rng.uniform(0.0, 0.1), "copy") for _ in range(2)]
    trials, runs = [], []
    for i, (first_file, delay, cache) in enumerate(moments):
        run = tmp_path / f"killed-{i}"
        own = _own_cache(warm_cache, tmp_path, str(i)) if cache else None
        process = _start(run, own, tmp_path / f"log-{i}.txt")
        trials.append((process, run / first_file, delay, [signal.SIGKILL]))
        runs.append(run)
    assert _disturb(trials) == [-signal.SIGKILL] * len(trials)
    outcomes = []
    for run in runs:
        _assert_files_whole(run)
        outcomes.append(_resume_or_refusal(run, reference, capsys))
    assert outcomes == ["refused", "resumed", "resumed"]


def test_ctrl_c_at_several_moments_exits_130_without_a_crash(
    reference, tmp_path, warm_cache, capsys
):
    """Ctrl-C while XLA compiles, a second one during that compilation, and at a random
    moment of training. Python's own Ctrl-C handling used to crash here ("pure virtual
    method called", exit 134 or 139) or be swallowed by a JAX garbage-collection callback
    (the run went on). Now each exits 130 without a traceback: the first two with the
    starting point saved, the second quits at once (nothing saved, said so), the third with
    the last completed chunk; each folder then resumes to the undisturbed run or is refused
    with a message."""
    moments = {
        "compiling": ("config.json", 0.0, None, [signal.SIGINT]),
        "compiling, twice": ("config.json", 0.0, None, [signal.SIGINT, signal.SIGINT]),
        "training": (
            "checkpoint.rtrrl",
            random.Random(130).uniform(0.0, 0.1),
            "copy",
            [signal.SIGINT],
        ),
    }
    trials, runs, logs = [], [], []
    for i, (first_file, delay, cache, signals) in enumerate(moments.values()):
        run, log = tmp_path / f"run-{i}", tmp_path / f"log-{i}.txt"
        own = _own_cache(warm_cache, tmp_path, str(i)) if cache else None
        trials.append((_start(run, own, log), run / first_file, delay, signals))
        runs.append(run)
        logs.append(log)
    assert _disturb(trials) == [130] * len(trials), [log.read_text() for log in logs]
    texts = dict(zip(moments, (log.read_text() for log in logs), strict=True))
    for text in texts.values():
        assert "Traceback" not in text and "Exception ignored" not in text, text
        assert "Ctrl-C: stopping as soon as" in text, text
    assert "Interrupted: checkpoint saved" in texts["compiling"]
    assert "Ctrl-C again: quitting without saving" in texts["compiling, twice"]
    assert "Interrupted: checkpoint saved" in texts["training"]
    compiling, twice, training = runs
    assert load_run_checkpoint(compiling, load_run_config(compiling))[1].steps_done == 0
    assert not (twice / "checkpoint.rtrrl").exists()
    assert load_run_checkpoint(training, load_run_config(training))[1].steps_done > 0
    outcomes = []
    for run in runs:
        _assert_files_whole(run)
        outcomes.append(_resume_or_refusal(run, reference, capsys))
    assert outcomes == ["resumed", "refused", "resumed"]


class _FillingDisk:
    """Stands in for the `os` module of `rtrrl.app._files`: from the `full_from`-th file
    written on, the disk is full: the write stores half of its data, then fails as a real
    one does (ENOSPC)."""

    def __init__(self, full_from: int):
        self.files = 0
        self.full_from = full_from

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd, mode):
        file = os.fdopen(fd, mode)
        self.files += 1
        return file if self.files < self.full_from else _FullFile(file)


class _FullFile:
    def __init__(self, file):
        self._file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._file.close()

    def write(self, data):
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_stops_the_run_with_one_error_and_loses_nothing(
    reference, tmp_path, monkeypatch, capsys
):
    """From the 12th file written on (config.json, then metrics.csv and the checkpoint after
    each evaluation) the disk is full. The run ends with exit 2 and one error line naming
    the file; what was written before is whole, the half-written temporary file is gone;
    once space is back, the resume ends as the undisturbed run."""
    run = tmp_path / "full"
    disk = _FillingDisk(full_from=12)
    with monkeypatch.context() as patch:
        patch.setattr(_files, "os", disk)
        assert main(["train", *FLAGS, "--out", str(run)]) == 2
    err = capsys.readouterr().err  # the progress lines, then the error
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "No space left on device" in errors[0], err
    assert str(run / "metrics.csv") in errors[0], err  # 12th file: chunk 6's metrics
    assert "Traceback" not in err
    _assert_files_whole(run)
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.rtrrl",
        "config.json",
        "metrics.csv",
    ]
    assert load_run_checkpoint(run, load_run_config(run))[1].steps_done == 5 * EVAL_EVERY
    assert main(["train", "--resume", str(run)]) == 0
    _assert_same_run(run, reference)


def test_two_runs_started_on_one_folder_at_once_give_one_run(reference, tmp_path, warm_cache):
    """Exactly one of them trains; the other exits 2 (the folder is in use, or already holds
    the first one's run) and writes nothing: the folder holds the undisturbed run."""
    run = tmp_path / "shared"
    logs = [tmp_path / "first.txt", tmp_path / "second.txt"]
    processes = [
        _start(run, _own_cache(warm_cache, tmp_path, str(i)), log) for i, log in enumerate(logs)
    ]
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=240))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert sorted(codes) == [0, 2], [log.read_text() for log in logs]
    refused = logs[codes.index(2)].read_text()
    assert "in use by another rtrrl process" in refused or "already holds a run" in refused
    assert "Traceback" not in refused and refused.count("error: ") == 1, refused
    _assert_same_run(run, reference)
