"""Learning-curve figures (matplotlib's object API: no global pyplot state is touched)."""

import csv
import io
import json
import math
import textwrap
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ._files import write_bytes_atomic

METRICS = ("eval_return", "train_return", "td_error")


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """Read a run's ``metrics.csv`` into ``steps`` (evals,) and ``<column>`` (evals, seeds),
    and, when the run's ``summary.json`` lies beside it, ``stopped_early`` (seeds,): which
    seeds early stopping ended (the figure marks where)."""
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
    stopped = _stopped_early(path.parent / "summary.json", seeds)
    if stopped is not None:
        out["stopped_early"] = stopped
    return out


def _stopped_early(path: Path, seeds: list[int]) -> np.ndarray | None:
    """``stopped_early`` of a ``summary.json`` in the order of `seeds` (None: no summary yet,
    or one that does not describe these seeds)."""
    try:
        summary = json.loads(path.read_text())
        stopped = dict(zip(summary["seeds"], summary["stopped_early"], strict=True))
        return np.asarray([bool(stopped[seed]) for seed in seeds])
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
    environments: dict[str, str | None] | None = None,
) -> Path:
    """Overlay runs (`learning_curve_figure`) and write the figure to `path` (its suffix
    gives the format; none: ``.png``). Returns the path written.

    Raises:
        ValueError: no runs, an unknown `metric`, or a run without any evaluation yet.
    """
    figure = learning_curve_figure(runs, metric=metric, title=title, environments=environments)
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")  # what matplotlib would write; say so to the caller
    # Rendered in memory, then written atomically: a full disk or a kill leaves the old file
    # (or none), never a truncated one.
    image = io.BytesIO()
    figure.savefig(image, format=path.suffix[1:], dpi=120)
    write_bytes_atomic(path, image.getvalue())
    return path


def learning_curve_figure(
    runs: dict[str, dict[str, np.ndarray]],
    *,
    metric: str = "eval_return",
    title: str | None = None,
    environments: dict[str, str | None] | None = None,
) -> Figure:
    """Runs overlaid: the mean over seeds as a line, min-max over seeds as a band, a dot at
    the best mean (returns only: a TD error has no "best"), a cross where a seed stopped early.

    Arguments:
        runs: label -> `read_metrics` output.
        metric: ``eval_return``, ``train_return`` or ``td_error``.
        title: figure title (default: the runs' environments).
        environments: label -> the run's environment (id and options), when known. Runs on
            different environments are easy to mistake for comparable ones, so then every
            legend label names its environment.
    """
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}: use one of {', '.join(METRICS)}.")
    if not runs:
        raise ValueError("No runs to plot: name one or more run folders.")
    for label, data in runs.items():
        if data["steps"].size == 0:
            raise ValueError(f"{label}: no evaluation yet (metrics.csv has no rows to plot).")
    environments = environments or {}
    known = sorted({env for env in environments.values() if env})
    mixed = len(known) > 1
    # Legend entries (one per run and mark) go below the axes, where long labels fit.
    figure = Figure(figsize=(7, 4.2 + 0.22 * (len(runs) + 2)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    marks = set()
    for label, data in runs.items():
        env = environments.get(label)
        name = f"{label} [{env}]" if mixed and env else label
        marks |= _plot_run(axes, name, data, metric)
    axes.set_xlabel("environment steps (per seed)")
    axes.set_ylabel(metric.replace("_", " "))
    axes.grid(alpha=0.3)
    handles = axes.get_legend_handles_labels()[0]
    for mark, text in (("o", "best mean"), ("x", "early stop (one seed)")):
        if mark in marks:
            handles.append(Line2D([], [], color="0.3", marker=mark, linestyle="", label=text))
    figure.legend(handles=handles, loc="outside lower center", fontsize="small", frameon=False)
    if title is None and known:
        title = ("different environments: " if mixed else "") + " vs ".join(known)
    if title:
        axes.set_title(textwrap.fill(title, 70), fontsize="medium")
    return figure


def _plot_run(axes, name: str, data: dict[str, np.ndarray], metric: str) -> set[str]:
    """One run's line, band and marks; returns the kinds of marks drawn (``o``, ``x``)."""
    raw = data[metric]
    table = _carry_forward(raw)
    steps = data["steps"]
    with np.errstate(all="ignore"):
        mean = np.nanmean(table, axis=1)
        low, high = np.nanmin(table, axis=1), np.nanmax(table, axis=1)
    seeds = table.shape[1]
    marks = set()
    label = f"{name} ({seeds} seed{'s' * (seeds > 1)})"
    if metric != "td_error" and np.isfinite(mean).any():
        best = int(np.nanargmax(mean))
        label += f", best {mean[best]:.4g} at {int(steps[best]):,}"
    (line,) = axes.plot(steps, mean, label=label)
    color = line.get_color()
    if seeds > 1:
        axes.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
    if metric != "td_error" and np.isfinite(mean).any():
        axes.plot(steps[best], mean[best], "o", color=color, markersize=6, zorder=3)
        marks.add("o")
    stopped = data.get("stopped_early")
    for seed in np.flatnonzero(stopped) if stopped is not None else ():
        rows = np.flatnonzero(~np.isnan(raw[:, seed]))
        if rows.size:
            last = rows[-1]
            axes.plot(steps[last], raw[last, seed], "x", color=color, markersize=8, zorder=3)
            marks.add("x")
    return marks
