"""One process per run folder: an exclusive `fcntl.flock` on ``<folder>/.rtrrl.lock``.

The lock file exists only while a run holds it and records the holder's PID, so that a
refused second process can name it. The kernel drops the lock when its holder dies, however
it dies: a file left behind by ``kill -9`` does not block the next run.
"""

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".rtrrl.lock"


class RunFolderBusy(OSError):
    """Another process holds the run folder."""


def _acquire(path: Path) -> int:
    """A descriptor of `path` holding its exclusive lock (the file is created if needed)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            folder = path.parent
            raise RunFolderBusy(
                f"{folder} is in use by another rtrrl process (PID {holder}): wait for it to "
                "end (Ctrl-C or SIGTERM there saves a checkpoint), or choose another --out."
            ) from None
        # The previous holder removes the file when it releases it: if that happened between
        # our open and our lock, we hold a lock on a removed file, and must start again.
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            return fd
        os.close(fd)


@contextlib.contextmanager
def run_folder_lock(folder: Path) -> Iterator[None]:
    """Hold `folder`'s lock for the block (the folder is created if needed).

    Raises:
        RunFolderBusy: another process holds it; the message names its PID.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = _acquire(path)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        # Remove the file while still holding the lock, so that nobody can take the old one.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)
