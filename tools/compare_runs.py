"""Compare two run folders bit for bit: ``python tools/compare_runs.py RUN_A RUN_B``.

What must agree:

- ``metrics.csv``: every row and column except ``steps_per_second`` (a timing);
- ``checkpoint.rtrrl``: every array of the saved training states, and the header's run
  configuration and progress (its timing entries aside).

The checkpoint's payload is read as the sequence of ``.npy`` records that
``equinox.tree_serialise_leaves`` writes, with NumPy alone, so the comparison does not depend
on the library version that wrote either folder (a restructured library can be checked
against the one before it). Arrays are compared with ``numpy.array_equal``, and a difference
in the raw bytes alone (``-0.0`` against ``0.0``) is reported separately.

Exit status 0 when everything agrees, 1 otherwise (each difference is printed).
"""

import csv
import io
import json
import struct
import sys
from pathlib import Path

import numpy as np

_MAGIC = b"RTRRL-CHECKPOINT\n"
_TIMING_COLUMNS = {"steps_per_second"}
_TIMING_PROGRESS = {"run_seconds", "compile_seconds", "wall_seconds"}


def metrics_rows(folder: Path) -> list[dict[str, str]]:
    """The rows of ``metrics.csv`` without the timing columns."""
    with open(folder / "metrics.csv", newline="") as file:
        return [
            {k: v for k, v in row.items() if k not in _TIMING_COLUMNS}
            for row in csv.DictReader(file)
        ]


def checkpoint_parts(folder: Path) -> tuple[dict, list[np.ndarray]]:
    """``(header, arrays)`` of ``checkpoint.rtrrl``: the JSON header and every saved leaf."""
    data = (folder / "checkpoint.rtrrl").read_bytes()
    if not data.startswith(_MAGIC):
        raise ValueError(f"{folder}/checkpoint.rtrrl is not an rtrrl checkpoint")
    start = len(_MAGIC) + 8
    (length,) = struct.unpack("<Q", data[len(_MAGIC) : start])
    header = json.loads(data[start : start + length])
    payload = io.BytesIO(data[start + length :])
    arrays = []
    while payload.tell() < len(payload.getbuffer()):
        arrays.append(np.load(payload, allow_pickle=False))
    return header, arrays


def _progress_without_timings(progress: dict) -> dict:
    """The checkpoint's loop bookkeeping without wall-clock entries (also inside its rows)."""
    kept = {k: v for k, v in progress.items() if k not in _TIMING_PROGRESS}
    kept["rows"] = [
        {k: v for k, v in row.items() if k not in _TIMING_COLUMNS} for row in kept.get("rows", [])
    ]
    return kept


def compare(a: Path, b: Path) -> list[str]:
    """Every difference between run folders `a` and `b` (empty: identical)."""
    problems = []
    rows_a, rows_b = metrics_rows(a), metrics_rows(b)
    if not rows_a:
        problems.append(f"{a}/metrics.csv has no rows")
    if rows_a != rows_b:
        changed = [i for i, (x, y) in enumerate(zip(rows_a, rows_b, strict=False)) if x != y]
        problems.append(
            f"metrics.csv differs: {len(rows_a)} vs {len(rows_b)} rows, first differing row "
            f"{changed[0] if changed else min(len(rows_a), len(rows_b))}"
        )
    header_a, arrays_a = checkpoint_parts(a)
    header_b, arrays_b = checkpoint_parts(b)
    if header_a["config"] != header_b["config"]:
        keys = sorted(
            k
            for k in header_a["config"].keys() | header_b["config"].keys()
            if header_a["config"].get(k) != header_b["config"].get(k)
        )
        problems.append(f"checkpoint configs differ in {keys}")
    progress_a, progress_b = (
        _progress_without_timings(h["progress"]) for h in (header_a, header_b)
    )
    if progress_a != progress_b:
        problems.append("checkpoint progress differs (timings aside)")
    if len(arrays_a) != len(arrays_b):
        problems.append(f"checkpoints hold {len(arrays_a)} vs {len(arrays_b)} arrays")
    for index, (x, y) in enumerate(zip(arrays_a, arrays_b, strict=False)):
        if x.shape != y.shape or x.dtype != y.dtype:
            problems.append(f"array {index}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
        elif not np.array_equal(x, y, equal_nan=True):
            problems.append(f"array {index} {x.dtype}{x.shape}: values differ")
        elif x.tobytes() != y.tobytes():
            problems.append(f"array {index} {x.dtype}{x.shape}: equal values, different bytes")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python tools/compare_runs.py RUN_A RUN_B", file=sys.stderr)
        return 2
    a, b = map(Path, argv)
    problems = compare(a, b)
    name = b.name
    if problems:
        for problem in problems:
            print(f"{name}: DIFFERENT: {problem}")
        return 1
    _, arrays = checkpoint_parts(a)
    print(f"{name}: identical ({len(metrics_rows(a))} metric rows, {len(arrays)} arrays)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
