"""One process per run folder: ``rtrrl train`` and ``--resume`` lock the folder.

A second process on a locked folder exits 2 with one ``error:`` line that names the holder's
PID, before writing anything; a lock file left by a dead process does not block, and the
temporary files of its unfinished writes are removed; the lock file is gone once a run ends.
"""

import subprocess
import sys

import pytest
from _training_helpers import TINY_FLAGS, persistent_compilation_cache

from rtrrl.app._run_lock import LOCK_NAME, run_folder_lock
from rtrrl.app.cli import main


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(tmp_path_factory):
    with persistent_compilation_cache(tmp_path_factory.getbasetemp() / "jax-compilation-cache"):
        yield


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_finished_run_leaves_no_lock_file(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--steps", "500", "--out", str(run)]) == 0
    assert not (run / LOCK_NAME).exists()


def test_a_second_process_on_a_locked_folder_is_refused_naming_the_holder(tmp_path, capsys):
    """The holder is another process (the lock is the kernel's, so this is the real case):
    a new run and a resume into its folder are both refused, and nothing there changes."""
    run = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--steps", "500", "--out", str(run)]) == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from rtrrl.app._run_lock import run_folder_lock\n"
            "with run_folder_lock(pathlib.Path(sys.argv[1])):\n"
            "    print('locked', flush=True); sys.stdin.read()",
            str(run),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = _files(run)
        capsys.readouterr()
        assert main(["train", "--resume", str(run)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and f"(PID {holder.pid})" in err, err
        assert "in use by another rtrrl process" in err and "Traceback" not in err
        fresh = tmp_path / "fresh"
        with run_folder_lock(fresh):  # this process holds a second folder: same refusal
            assert main(["train", *TINY_FLAGS, "--steps", "500", "--out", str(fresh)]) == 2
        assert _files(run) == before
    finally:
        holder.communicate("", timeout=60)
    assert not (run / LOCK_NAME).exists()
    assert main(["train", "--resume", str(run)]) == 0  # free again: nothing left to run


def test_what_a_dead_process_left_does_not_block_and_is_cleaned_up(tmp_path):
    """``kill -9`` leaves the lock file (with the dead PID), but the kernel frees the lock;
    the temporary files of its unfinished atomic writes are removed by the next run."""
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text("999999999\n")
    (run / ".checkpoint.rtrrl-k1ll3d").write_bytes(b"half a checkpoint")
    (run / ".metrics.csv-k1ll3d").write_text("step,seed\n")
    assert main(["train", *TINY_FLAGS, "--steps", "500", "--out", str(run)]) == 0
    assert not (run / LOCK_NAME).exists()
    assert not list(run.glob(".*"))
