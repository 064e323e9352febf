"""A sweep's tables and figure: ``sweep.csv``, ``sweep.md`` and ``sweep.png``.

One row per configuration: its swept values, its run folder, and over its seeds the median,
minimum and maximum of the final evaluation return (the last one) and of the best one.
"""

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._files import write_bytes_atomic

STATISTICS = ("final", "best")


def report_rows(
    names: Sequence[str],
    configurations: Sequence[dict[str, Any]],
    folders: Sequence[str],
    final: Sequence[np.ndarray],
    best: Sequence[np.ndarray],
) -> list[dict[str, Any]]:
    """One row per configuration: ``index``, ``run``, the swept values, then for ``final``
    and ``best`` (per-seed returns) ``<stat>_median``, ``<stat>_min``, ``<stat>_max``."""
    rows = []
    for k, values in enumerate(configurations):
        row: dict[str, Any] = {"index": k, "run": folders[k]}
        row |= {name: values[name] for name in names}
        for stat, per_seed in zip(STATISTICS, (final[k], best[k]), strict=True):
            seeds = np.asarray(per_seed, float)
            ok = seeds[np.isfinite(seeds)]
            for label, reduce in (("median", np.median), ("min", np.min), ("max", np.max)):
                row[f"{stat}_{label}"] = float(reduce(ok)) if ok.size else math.nan
        rows.append(row)
    return rows


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def markdown_text(rows: list[dict[str, Any]], names: Sequence[str], header: str) -> str:
    """`header` (a paragraph), then the table: swept values, final and best return as
    ``median (min–max)`` over seeds, the run folder."""
    columns = [*names, "final return", "best return", "run"]
    lines = [header.rstrip(), "", "| " + " | ".join(columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        cells = [_value(row[name]) for name in names]
        for stat in STATISTICS:
            median, low, high = (row[f"{stat}_{s}"] for s in ("median", "min", "max"))
            cells.append(f"{median:.4g} ({low:.4g}–{high:.4g})")
        cells.append(f"`{row['run']}`")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_sweep_plot(
    rows: list[dict[str, Any]], names: Sequence[str], path: Path, title: str
) -> Path:
    """One panel per swept option: the median final and best return over seeds (lines
    through the medians of configurations sharing a value; bars from min to max) against its
    values, on a log axis for positive numbers spanning more than a factor of 10."""
    figure = Figure(figsize=(4.2 * max(1, len(names)), 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes_list = figure.subplots(1, max(1, len(names)), squeeze=False)[0]
    for axes, name in zip(axes_list, names, strict=False):
        values = [row[name] for row in rows]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        levels = sorted(set(values)) if numeric else list(dict.fromkeys(map(str, values)))
        x_of = {level: i for i, level in enumerate(levels)}
        for stat, marker in zip(STATISTICS, ("o", "s"), strict=True):
            xs, medians = [], []
            for level in levels:
                mine = [r for r in rows if (r[name] if numeric else str(r[name])) == level]
                x = level if numeric else x_of[level]
                points = np.asarray([r[f"{stat}_median"] for r in mine])
                low = np.asarray([r[f"{stat}_min"] for r in mine])
                high = np.asarray([r[f"{stat}_max"] for r in mine])
                axes.vlines(
                    [x] * len(mine), low, high, alpha=0.25, color=f"C{STATISTICS.index(stat)}"
                )
                axes.scatter([x] * len(mine), points, marker=marker, s=14, alpha=0.6,
                             color=f"C{STATISTICS.index(stat)}")  # fmt: skip
                xs.append(x)
                medians.append(np.nanmedian(points))
            axes.plot(xs, medians, marker=marker, color=f"C{STATISTICS.index(stat)}",
                      label=f"{stat} return")  # fmt: skip
        low, high = (min(values), max(values)) if numeric else (0, 0)
        if numeric and low > 0 and high > 10 * low:
            axes.set_xscale("log")
        if not numeric:
            axes.set_xticks(range(len(levels)), levels)
        axes.set_xlabel(name)
        axes.set_ylabel("evaluation return")
        axes.grid(alpha=0.3)
    axes_list[0].legend(fontsize="small")
    figure.suptitle(title, fontsize="medium")
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    write_bytes_atomic(path, image.getvalue())
    return path
