"""Atomic file writes: a temporary file in the same folder, then `os.replace` into place."""

import os
import tempfile
from pathlib import Path


def file_mode() -> int:
    """The mode ``open()`` gives a new file under the process's umask (usually 0o644)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_bytes_atomic(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Write `data` to `path` so that `path` holds either its old content or all of `data`.

    The file gets the permissions of an ordinary new file (`file_mode`), not the private
    0o600 of `tempfile.mkstemp`, so colleagues can read a run's results. ``fsync=True`` also
    flushes the data to disk before the rename (checkpoints).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None and error.errno is not None:
            # A full disk fails in the write of the temporary file, with no file name in the
            # message: name the file that could not be written.
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
