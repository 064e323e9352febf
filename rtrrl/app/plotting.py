"""Learning-curve figures (matplotlib's object API: no global pyplot state is touched)."""

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._files import write_bytes_atomic

METRICS = ("eval_return", "train_return", "td_error")


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """Read a run's ``metrics.csv`` into ``steps`` (evals,) and ``<column>`` (evals, seeds)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.exists():
        raise FileNotFoundError(f"No metrics.csv at {path}: is this an rtrrl run folder?")
    by_step: dict[int, dict[int, dict[str, str]]] = defaultdict(dict)
    with path.open() as f:
        for row in csv.DictReader(f):
            by_step[int(row["step"])][int(row["seed"])] = row
    steps = sorted(by_step)
    seeds = sorted({seed for rows in by_step.values() for seed in rows})
    out = {"steps": np.asarray(steps), "seeds": np.asarray(seeds)}
    for column in METRICS:
        table = np.full((len(steps), len(seeds)), np.nan)
        for i, step in enumerate(steps):
            for j, seed in enumerate(seeds):
                if seed in by_step[step] and by_step[step][seed][column] not in ("", "nan"):
                    table[i, j] = float(by_step[step][seed][column])
        out[column] = table
    return out


def _carry_forward(table: np.ndarray) -> np.ndarray:
    # A seed that stopped early has no rows after it stopped: hold its last value so the
    # mean over seeds stays defined (the summary's best/final values are unaffected).
    table = table.copy()
    for j in range(table.shape[1]):
        last = np.nan
        for i in range(table.shape[0]):
            if math.isnan(table[i, j]):
                table[i, j] = last
            else:
                last = table[i, j]
    return table


def plot_runs(
    runs: dict[str, dict[str, np.ndarray]],
    path: str | Path,
    *,
    metric: str = "eval_return",
    title: str | None = None,
) -> Path:
    """Overlay runs: the mean over seeds as a line, min-max over seeds as a band.

    Arguments:
        runs: label -> `read_metrics` output.
        path: where to write the figure (its suffix gives the format; none: ``.png``).
        metric: ``eval_return``, ``train_return`` or ``td_error``.
        title: figure title.

    Raises:
        ValueError: no runs, an unknown `metric`, or a run without any evaluation yet.
    """
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}: use one of {', '.join(METRICS)}.")
    if not runs:
        raise ValueError("No runs to plot: name one or more run folders.")
    for label, data in runs.items():
        if data["steps"].size == 0:
            raise ValueError(f"{label}: no evaluation yet (metrics.csv has no rows to plot).")
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, data in runs.items():
        table = _carry_forward(data[metric])
        steps = data["steps"]
        with np.errstate(all="ignore"):
            mean = np.nanmean(table, axis=1)
            low, high = np.nanmin(table, axis=1), np.nanmax(table, axis=1)
        seeds = table.shape[1]
        (line,) = axes.plot(steps, mean, label=f"{label} ({seeds} seed{'s' * (seeds > 1)})")
        if seeds > 1:
            axes.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    axes.set_xlabel("environment steps (per seed)")
    axes.set_ylabel(metric.replace("_", " "))
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    if title:
        axes.set_title(title)
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")  # what matplotlib would write; say so to the caller
    # Rendered in memory, then written atomically: a full disk or a kill leaves the old file
    # (or none), never a truncated one.
    image = io.BytesIO()
    figure.savefig(image, format=path.suffix[1:], dpi=120)
    write_bytes_atomic(path, image.getvalue())
    return path
