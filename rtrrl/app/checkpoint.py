"""Checkpoints: one file holding the training states and the loop's bookkeeping.

Layout of ``checkpoint.rtrrl``::

    b"RTRRL-CHECKPOINT\\n"           magic line
    8 bytes, little-endian            length of the JSON header
    JSON header                       {"format", "config", "progress", "sha256"}
    payload                           `eqx.tree_serialise_leaves` of the states

``sha256`` covers the header's other entries (as canonical JSON: sorted keys, no spaces) and
the payload, so an edited header is refused like a damaged payload. Format 1 (before
2026-11-29) covered the payload only; it is still read. Format 3 (2026-12-06) marks the LRU's
parameter layout: from then on `rtrrl.cells.LRU` stores its input weights and readout as the
real ``(I, 2N)`` and ``(F, 2N)`` maps of the stacked real and imaginary parts, where earlier
versions had four leaves ``B_re, B_im, C_re, C_im``. Checkpoints of LRU runs in formats 1
and 2 hold the old layout and are refused with that reason; every other run's still loads.

It is written to a temporary file in the same folder, flushed to disk, then renamed over the
old checkpoint (`os.replace` is atomic on POSIX), so an interrupted save never leaves a
half-written checkpoint. Loading checks the magic line, the header, the payload's SHA-256 and
that the run's configuration matches, and says which of these failed.
"""

import dataclasses
import hashlib
import io
import json
import os
import stat
import struct
from pathlib import Path
from typing import Any

import equinox as eqx

from .._types import PyTree
from ..training import TrainProgress
from ._files import write_bytes_atomic

CHECKPOINT_NAME = "checkpoint.rtrrl"
_MAGIC = b"RTRRL-CHECKPOINT\n"
_FORMAT = 3
_READABLE_FORMATS = (1, 2, 3)
_LRU_LAYOUT_FORMAT = 3  # the first format whose LRU runs store B and C stacked
_HEADER_KEYS = {"format", "config", "progress", "sha256"}


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or belongs to a different configuration."""


def _encode_progress(progress: TrainProgress) -> dict[str, Any]:
    # NaN/inf are not JSON: store them as strings and restore them on load.
    def clean(value: Any) -> Any:
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            return repr(value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return clean(dataclasses.asdict(progress))


def _decode_progress(data: dict[str, Any]) -> TrainProgress:
    special = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}

    def restore(value: Any) -> Any:
        if isinstance(value, str) and value in special:
            return special[value]
        if isinstance(value, list):
            return [restore(v) for v in value]
        if isinstance(value, dict):
            return {k: restore(v) for k, v in value.items()}
        return value

    return TrainProgress(**restore(data))


def _canonical(header: dict[str, Any]) -> bytes:
    """The header without its checksum, as the bytes the checksum covers."""
    core = {key: value for key, value in header.items() if key != "sha256"}
    return json.dumps(core, sort_keys=True, separators=(",", ":")).encode()


def _checksum(header: dict[str, Any], payload: bytes) -> str:
    """SHA-256 of what `header` (of its ``format``) says the checksum covers."""
    covered = payload if header.get("format") == 1 else _canonical(header) + payload
    return hashlib.sha256(covered).hexdigest()


def save_checkpoint(
    path: str | Path, states: PyTree[Any], progress: TrainProgress, config: dict[str, Any]
) -> Path:
    """Atomically write `states`, `progress` and `config` to `path` (a file or a run folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, states)
    payload = buffer.getvalue()
    header = {"format": _FORMAT, "config": config, "progress": _encode_progress(progress)}
    header = json.dumps({**header, "sha256": _checksum(header, payload)}).encode()
    write_bytes_atomic(path, _MAGIC + struct.pack("<Q", len(header)) + header + payload, fsync=True)
    return path


def read_checkpoint_header(path: str | Path) -> tuple[dict[str, Any], bytes]:
    """``(header, payload)`` of a checkpoint, after checking its magic line and checksum."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    data = _read_regular_file(path)
    if not data.startswith(_MAGIC):
        raise CheckpointError(f"{path} is not an rtrrl checkpoint (bad magic line).")
    if len(data) < len(_MAGIC) + 8:
        raise CheckpointError(f"{path} is corrupt: it is truncated before its header.")
    (length,) = struct.unpack("<Q", data[len(_MAGIC) : len(_MAGIC) + 8])
    start = len(_MAGIC) + 8
    try:
        header = json.loads(data[start : start + length])
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(
            f"{path} is corrupt: its header is not valid JSON ({error})."
        ) from None
    except RecursionError:  # JSON nested thousands deep: not something `save_checkpoint` wrote
        raise CheckpointError(f"{path} is corrupt: its header is nested too deeply.") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is corrupt: its header is not a JSON object.")
    if set(header) != _HEADER_KEYS:
        raise CheckpointError(
            f"{path} is not a checkpoint that rtrrl wrote: its header has the entries "
            f"{sorted(header)}, not {sorted(_HEADER_KEYS)}."
        )
    payload = data[start + length :]
    if header.get("format") not in _READABLE_FORMATS:
        raise CheckpointError(
            f"{path} has checkpoint format {header.get('format')!r}; this rtrrl reads formats "
            f"{', '.join(map(str, _READABLE_FORMATS))}."
        )
    if _checksum(header, payload) != header.get("sha256"):
        raise CheckpointError(
            f"{path} is corrupt: its data does not match the checksum in its header (was the "
            "file truncated or modified?)."
        )
    progress = header["progress"]
    fields = {field.name for field in dataclasses.fields(TrainProgress)}
    if not isinstance(header["config"], dict) or not (
        isinstance(progress, dict) and set(progress) <= fields
    ):
        # A valid checksum over a hand-made header: refused here, not as a TypeError later.
        raise CheckpointError(
            f"{path} is not a checkpoint that rtrrl wrote: its config or progress entry is "
            "not what rtrrl saves."
        )
    return header, payload


def _read_regular_file(path: Path) -> bytes:
    """The bytes of `path`, which must be a regular file.

    A FIFO would block forever and a device (a link to /dev/zero) would be read until memory
    runs out: only what `save_checkpoint` writes, a regular file, is read. The file is opened
    without blocking (a FIFO's open would wait for a writer) and checked once open, so that
    it cannot be swapped for something else in between.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise CheckpointError(
            f"No checkpoint at {path}: was the run started with --out there?"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointError(f"{path} is not a regular file, so not an rtrrl checkpoint.")
    with os.fdopen(fd, "rb") as file:
        return file.read()


def load_checkpoint(
    path: str | Path, like: PyTree[Any], config: dict[str, Any] | None = None
) -> tuple[PyTree[Any], TrainProgress, dict[str, Any]]:
    """Read a checkpoint into the structure of `like`.

    Arguments:
        path: the checkpoint file or the run folder holding it.
        like: states of the same structure and shapes (e.g. freshly initialised ones).
        config: if given, the configuration the checkpoint must have been written with;
            differing entries are named in the error.

    Returns:
        ``(states, progress, saved_config)``.

    Raises:
        CheckpointError: missing, corrupt, or mismatched checkpoint.
        TypeError: `like` is None.
    """
    if like is None:
        raise TypeError(
            "load_checkpoint: `like` must be states shaped like the saved ones (e.g. "
            "rtrrl.training.init_states(...) of the run), got None."
        )
    header, payload = read_checkpoint_header(path)
    saved = header["config"]
    if config is not None and saved != config:
        keys = sorted(set(saved) | set(config))
        diff = [
            f"{k}: checkpoint={saved.get(k)!r}, now={config.get(k)!r}"
            for k in keys
            if saved.get(k) != config.get(k)
        ]
        raise CheckpointError(
            f"The checkpoint at {path} was written by a different configuration; differing "
            f"entries: {'; '.join(diff)}."
        )
    if saved.get("cell") == "lru" and header["format"] < _LRU_LAYOUT_FORMAT:
        raise CheckpointError(
            f"The checkpoint at {path} is an LRU run saved before rtrrl stored the LRU's "
            "weights as stacked (I, 2N) and (F, 2N) matrices (checkpoint format "
            f"{header['format']}, this rtrrl writes {_FORMAT}): resume it with the rtrrl "
            "version that wrote it, or start the run again."
        )
    try:
        states = eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
    except Exception as error:  # shapes/dtypes/structure differ
        raise CheckpointError(
            f"The checkpoint at {path} does not fit this model (different sizes or "
            f"structure): {error}"
        ) from None
    return states, _decode_progress(header["progress"]), saved
