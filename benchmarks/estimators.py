"""Per-step time and memory of the online gradient estimators on a CTRNN.

One *step* is what the online learner does at every time step: ``est.step`` (advance the cell
and the estimator) followed by ``est.gradient`` with a random cotangent on ``cell.output``.
The gradients are summed over the sequence so that XLA cannot drop them. ``T`` such steps run
inside one compiled `jax.lax.scan`; compile time is excluded (ahead-of-time
``.lower().compile()`` and one warm-up call), every call is closed by ``block_until_ready``,
and the reported time is the best (and the median) over repeated calls, divided by ``T``.

- Batch 1 is a single unbatched sequence (what a single-stream learner runs); batch ``B > 1``
  is ``jax.vmap`` over ``B`` independent sequences sharing the parameters, and its time is for
  the whole batch.
- Memory is the estimator state (sum of the leaves' ``nbytes`` for one example, times the
  batch), the quantity each estimator's complexity is about, plus XLA's compiled buffer
  sizes (`jax.stages.Compiled.memory_analysis`) where the backend reports them.
- `RTRL` carries an ``N × P`` influence matrix with ``P ≈ N²``, so its step is ``O(N⁴)``;
  sizes whose projected step time (extrapolated from the previous size with that exponent)
  or compiled memory is beyond the limits are reported as skipped, not run.

Usage::

    python benchmarks/estimators.py            # writes benchmarks/results/estimators.{md,json,png}
    python benchmarks/estimators.py --quick    # tiny sizes, prints only (add --out DIR to write)

Prints a markdown table and one line ``JSON: {...}`` with every number and the machine.
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from rtrrl.cells import CTRNN
from rtrrl.estimators import RFLO, RTRL, AbstractGradientEstimator, LocalMSE, TruncatedBPTT

RESULTS = Path(__file__).resolve().parent / "results"

# Expected growth of the per-step cost with N, used only to project the next size's time
# (to pick T and to skip RTRL sizes that would take too long), never to report a result.
EXPECTED_EXPONENT = {"RTRL": 4.0, "RFLO": 2.0, "LocalMSE": 2.0, "TruncatedBPTT": 2.0}


@dataclasses.dataclass(frozen=True)
class Config:
    """What to measure and how hard to try; see `parse_args` for the meaning of each field."""

    sizes: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    batches: tuple[int, ...] = (1, 64)
    estimators: tuple[str, ...] = ("RTRL", "RFLO", "LocalMSE", "TruncatedBPTT")
    input_size: int = 8
    window: int = 8
    dtype: str = "float32"
    repeats: int = 10
    rounds: int = 3
    min_repeats: int = 3
    budget_s: float = 2.0
    target_call_s: float = 0.1
    min_steps: int = 8
    max_steps: int = 4096
    first_steps: int = 512
    max_step_s: float = 3.0
    memory_fraction: float = 0.5
    fit_min: int = 32
    seed: int = 0
    out: Path | None = RESULTS


QUICK = dict(
    sizes=(4, 8),
    batches=(1, 3),
    window=2,
    repeats=3,
    rounds=2,
    min_repeats=2,
    budget_s=0.2,
    target_call_s=0.005,
    min_steps=4,
    max_steps=32,
    first_steps=16,
    fit_min=1,
)


def make_estimator(name: str, window: int) -> AbstractGradientEstimator:
    if name == "RTRL":
        return RTRL()
    if name == "RFLO":
        return RFLO()
    if name == "LocalMSE":
        return LocalMSE()
    if name == "TruncatedBPTT":
        return TruncatedBPTT(window)
    raise ValueError(f"unknown estimator {name!r}")


def label(name: str, window: int) -> str:
    return f"TruncatedBPTT({window})" if name == "TruncatedBPTT" else name


def make_cell(input_size: int, hidden_size: int, dtype: jnp.dtype, key: jax.Array) -> CTRNN:
    """A dense CTRNN with its floating leaves cast to `dtype`.

    The cast (rather than relying on the default dtype) keeps the benchmark in float32 even
    when float64 is enabled, as it is under the test suite.
    """
    cell = CTRNN(input_size, hidden_size, key=key)
    return jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, cell)


def online_pass(
    estimator: AbstractGradientEstimator, cell: CTRNN, inputs: jax.Array, cotangents: jax.Array
) -> Any:
    """Run ``T`` online steps on one sequence; return the summed gradient estimates.

    Summing is the cheapest way to consume every gradient, so none of them can be removed as
    dead code while the timing stays that of step + gradient.
    """
    params = eqx.filter(cell, eqx.is_inexact_array)
    hidden = cell.init_hidden()
    state = estimator.init(cell, hidden, inputs[0])

    def body(carry, step):
        hidden, state, total = carry
        x, cotangent = step
        hidden, state = estimator.step(cell, hidden, x, state)
        grads = estimator.gradient(cell, state, cotangent)
        return (hidden, state, jax.tree.map(jnp.add, total, grads)), None

    zero = jax.tree.map(jnp.zeros_like, params)
    (_, _, total), _ = jax.lax.scan(body, (hidden, state, zero), (inputs, cotangents))
    return total


def build(
    estimator: AbstractGradientEstimator, cell: CTRNN, batch: int
) -> Callable[[Any, jax.Array, jax.Array], Any]:
    """The function to compile: parameters are arguments, so XLA cannot constant-fold them."""
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def run(params, inputs, cotangents):
        model = eqx.combine(params, static)
        if batch == 1:
            return online_pass(estimator, model, inputs, cotangents)
        # Inputs are time-major, ``(T, batch, ...)``, the layout a batched scan uses: with the
        # batch first XLA would transpose them into a T-sized temporary buffer that would
        # then be counted as the estimator's memory.
        grads = jax.vmap(online_pass, in_axes=(None, None, 1, 1))(
            estimator, model, inputs, cotangents
        )
        return jax.tree.map(lambda g: g.mean(0), grads)

    return jax.jit(run), params


def state_bytes(estimator: AbstractGradientEstimator, cell: CTRNN) -> int:
    """Bytes of the estimator state for one example, from shapes only (nothing allocated)."""
    x = jax.ShapeDtypeStruct((cell.input_size,), cell.weight.dtype)
    shapes = eqx.filter_eval_shape(lambda c, x: estimator.init(c, c.init_hidden(), x), cell, x)
    return sum(math.prod(s.shape) * s.dtype.itemsize for s in jax.tree.leaves(shapes))


def memory_stats(compiled: Any) -> dict[str, int] | None:
    """XLA's buffer sizes for the compiled call, or `None` where the backend has none."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # not every backend/version implements it; the number is optional
        return None
    if stats is None:
        return None
    fields = (
        "argument_size_in_bytes",
        "output_size_in_bytes",
        "temp_size_in_bytes",
        "alias_size_in_bytes",
        "generated_code_size_in_bytes",
        "peak_memory_in_bytes",
    )
    out = {f.removesuffix("_in_bytes"): getattr(stats, f, None) for f in fields}
    return {k: int(v) for k, v in out.items() if v is not None}


def available_memory() -> int | None:
    """``MemAvailable`` from /proc/meminfo in bytes (Linux), else `None` (no memory check)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def time_calls(fn: Callable[[], Any], repeats: int, min_repeats: int, budget_s: float):
    """Wall-clock seconds of `repeats` calls (fewer, but >= `min_repeats`, past `budget_s`)."""
    times = []
    start = time.perf_counter()
    while len(times) < repeats:
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
        if len(times) >= min_repeats and time.perf_counter() - start > budget_s:
            break
    return times


def summarise(row: dict[str, Any]) -> None:
    """Per-step best and median over every timed call so far (all rounds)."""
    per_step = [t / row["steps"] for t in row["call_s"]]
    row["repeats"] = len(per_step)
    row["best_us"] = min(per_step) * 1e6
    row["median_us"] = statistics.median(per_step) * 1e6


def measure(
    config: Config,
    name: str,
    hidden_size: int,
    batch: int,
    projected_s: float | None,
    key: jax.Array,
) -> tuple[dict[str, Any], Callable[[], Any] | None]:
    """One row of the table, and the compiled call for later rounds (`None` if skipped)."""
    dtype = jnp.dtype(config.dtype)
    k_cell, k_x, k_c = jax.random.split(key, 3)
    cell = make_cell(config.input_size, hidden_size, dtype, k_cell)
    estimator = make_estimator(name, config.window)
    n_params = sum(leaf.size for leaf in jax.tree.leaves(eqx.filter(cell, eqx.is_inexact_array)))
    per_example = state_bytes(estimator, cell)
    row: dict[str, Any] = {
        "estimator": label(name, config.window),
        "kind": name,
        "hidden_size": hidden_size,
        "batch": batch,
        "params": int(n_params),
        "state_bytes_per_example": per_example,
        "state_bytes": per_example * batch,
        "projected_step_s": projected_s,
    }
    if projected_s is not None and projected_s > config.max_step_s:
        row["skipped"] = (
            f"projected {projected_s:.3g} s/step > --max-step-seconds {config.max_step_s:g}"
        )
        return row, None

    # T is chosen so that a call lasts about `target_call_s`: long enough to amortise the
    # per-call dispatch of cheap steps, short enough that O(N⁴) RTRL steps stay affordable.
    if projected_s is None:
        steps = config.first_steps
    else:
        steps = round(config.target_call_s / max(projected_s, 1e-9))
    steps = int(min(max(steps, config.min_steps), config.max_steps))
    lead = (steps,) if batch == 1 else (steps, batch)
    inputs = jax.random.normal(k_x, (*lead, config.input_size), dtype)
    cotangents = jax.random.normal(k_c, (*lead, hidden_size), dtype)
    fn, params = build(estimator, cell, batch)

    t0 = time.perf_counter()
    compiled = fn.lower(params, inputs, cotangents).compile()
    row["compile_s"] = time.perf_counter() - t0
    row["memory"] = memory_stats(compiled)
    avail = available_memory()
    if row["memory"] is not None and avail is not None:
        need = sum(row["memory"].get(k, 0) for k in ("argument_size", "output_size", "temp_size"))
        if need > config.memory_fraction * avail:
            row["skipped"] = (
                f"needs {need / 2**30:.2f} GiB > {config.memory_fraction:g} × available "
                f"{avail / 2**30:.1f} GiB"
            )
            return row, None

    def call():
        return compiled(params, inputs, cotangents)

    jax.block_until_ready(call())  # warm-up: first-touch allocation, thread-pool start
    row["steps"] = steps
    row["call_s"] = time_calls(call, config.repeats, config.min_repeats, config.budget_s)
    summarise(row)
    return row, call


def describe(row: dict[str, Any], round_: int) -> str:
    """One progress line (to stderr) for a row."""
    head = f"[{round_}] {row['estimator']:>17} B={row['batch']:<3} N={row['hidden_size']:<4} "
    if "skipped" in row:
        return head + f"skipped: {row['skipped']}"
    return head + (
        f"{row['best_us']:12.2f} µs/step (median {row['median_us']:.2f}, T={row['steps']}, "
        f"{row['repeats']} calls, compile {row['compile_s']:.1f} s)"
    )


def fit_slope(rows: Sequence[dict[str, Any]], fit_min: int) -> dict[str, Any] | None:
    """Least-squares slope of log(best time) against log(N) over the measured ``N >= fit_min``."""
    points = [(r["hidden_size"], r["best_us"]) for r in rows if "best_us" in r]
    points = [(n, t) for n, t in points if n >= fit_min]
    if len(points) < 2:
        return None
    log_n = np.log([n for n, _ in points])
    log_t = np.log([t for _, t in points])
    slope, intercept = np.polyfit(log_n, log_t, 1)
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "n_min": int(min(n for n, _ in points)),
        "n_max": int(max(n for n, _ in points)),
        "points": len(points),
    }


def local_slopes(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slope between each pair of consecutive measured sizes: where the fit hides curvature."""
    points = sorted((r["hidden_size"], r["best_us"]) for r in rows if "best_us" in r)
    return [
        {"n0": n0, "n1": n1, "slope": math.log(t1 / t0) / math.log(n1 / n0)}
        for (n0, t0), (n1, t1) in zip(points, points[1:], strict=False)
    ]


def machine_info() -> dict[str, Any]:
    """Where the numbers come from: they mean little without the machine and versions."""
    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every OS
        affinity = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    import jaxlib

    device = jax.devices()[0]
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "equinox": eqx.__version__,
        "backend": jax.default_backend(),
        "device": device.device_kind,
        "x64": bool(jax.config.jax_enable_x64),
        "git_commit": commit,
    }


def run(config: Config, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Measure every (estimator, batch, size) and return all the numbers as one dict.

    Round 1 measures the sizes in increasing order, projecting each one's step time from the
    previous size to choose ``T`` and to skip what would not finish. Later rounds re-time
    every compiled call, interleaved, so that a burst of load from other processes spoils
    one round of a configuration rather than all its calls; the best time is over all rounds.
    """
    rows: list[dict[str, Any]] = []
    calls: list[tuple[dict[str, Any], Callable[[], Any]]] = []
    key = jax.random.key(config.seed)
    start = time.perf_counter()
    for name in config.estimators:
        for batch in config.batches:
            previous: tuple[int, float] | None = None
            for n in sorted(config.sizes):
                projected = None
                if previous is not None:
                    n0, t0 = previous
                    projected = t0 * (n / n0) ** EXPECTED_EXPONENT[name]
                # Once a size is skipped every larger one is too: the projection starts from
                # the last size measured, so it only grows.
                row, call = measure(config, name, n, batch, projected, jax.random.fold_in(key, n))
                rows.append(row)
                if call is not None:
                    calls.append((row, call))
                    previous = (n, row["best_us"] * 1e-6)
                log(describe(row, 1))
    for round_ in range(2, config.rounds + 1):
        for row, call in calls:
            row["call_s"] += time_calls(call, config.repeats, config.min_repeats, config.budget_s)
            summarise(row)
            log(describe(row, round_))
    fits = []
    for name in config.estimators:
        for batch in config.batches:
            mine = [r for r in rows if r["kind"] == name and r["batch"] == batch]
            fits.append(
                {
                    "estimator": label(name, config.window),
                    "batch": batch,
                    "fit": fit_slope(mine, config.fit_min),
                    "local": local_slopes(mine),
                }
            )
    settings = dataclasses.asdict(config)
    settings["out"] = None if config.out is None else str(config.out)
    return {
        "benchmark": "estimators",
        "unit": "microseconds per step (whole batch); bytes",
        "config": settings,
        "machine": machine_info(),
        "rows": rows,
        "fits": fits,
        "total_s": time.perf_counter() - start,
    }


def _bytes(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _time(row: dict[str, Any]) -> str:
    if "best_us" not in row:
        return "skipped"
    t = row["best_us"]
    return f"{t:,.0f}" if t >= 100 else f"{t:.3g}"


def markdown(results: dict[str, Any], command: str | None = None) -> str:
    """The summary tables (time, then memory), the slopes, and the machine."""
    config, rows = results["config"], results["rows"]
    names = [label(n, config["window"]) for n in config["estimators"]]
    sizes = sorted(config["sizes"])
    lookup = {(r["estimator"], r["batch"], r["hidden_size"]): r for r in rows}
    lines = []
    for batch in config["batches"]:
        lines += [
            f"**Time per step, batch {batch}** (µs, best of repeated calls; median in the JSON)",
            "",
            "| N | " + " | ".join(names) + " |",
            "|---:|" + "---:|" * len(names),
        ]
        for n in sizes:
            cells = [_time(lookup[(e, batch, n)]) for e in names if (e, batch, n) in lookup]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        lines.append("")
    for batch in config["batches"]:
        lines += [
            f"**Estimator state, batch {batch}** (bytes of the state Module × batch; in "
            "brackets XLA's temporary buffers for the whole scan, where reported)",
            "",
            "| N | P | " + " | ".join(names) + " |",
            "|---:|---:|" + "---:|" * len(names),
        ]
        for n in sizes:
            cells, params = [], None
            for e in names:
                row = lookup.get((e, batch, n))
                if row is None:
                    continue
                params = row["params"]
                temp = (row.get("memory") or {}).get("temp_size")
                cells.append(_bytes(row["state_bytes"]) + (f" ({_bytes(temp)})" if temp else ""))
            lines.append(f"| {n} | {params} | " + " | ".join(cells) + " |")
        lines.append("")
    pairs = list(zip(sizes, sizes[1:], strict=False))
    lines += [
        f"**Slopes** of log time vs log N: least squares over the measured N >= "
        f"{config['fit_min']}, then between consecutive sizes (small N: fixed per-step "
        "overheads flatten them; large N: leaving a cache level steepens them)",
        "",
        "| estimator | batch | fitted slope | fitted N | "
        + " | ".join(f"{a}→{b}" for a, b in pairs)
        + " |",
        "|---|---:|---:|---|" + "---:|" * len(pairs),
    ]
    for f in results["fits"]:
        fit = f["fit"]
        local = {(p["n0"], p["n1"]): p["slope"] for p in f["local"]}
        head = f"| {f['estimator']} | {f['batch']} | "
        if fit is None:
            head += "– | fewer than 2 points | "
        else:
            head += (
                f"{fit['slope']:.2f} | {fit['n_min']}–{fit['n_max']} ({fit['points']} points) | "
            )
        cells = [f"{local[p]:.2f}" if p in local else "–" for p in pairs]
        lines.append(head + " | ".join(cells) + " |")
    skipped = [r for r in rows if "skipped" in r]
    if skipped:
        lines += ["", "Skipped:"]
        lines += [
            f"- {r['estimator']}, batch {r['batch']}, N={r['hidden_size']}: {r['skipped']}"
            for r in skipped
        ]
    m = results["machine"]
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} CPUs ({m['cpu_affinity']} usable), "
        f"{m['platform']}; backend {m['backend']}; Python {m['python']}, jax {m['jax']}, "
        f"jaxlib {m['jaxlib']}, equinox {m['equinox']}; {config['dtype']}; "
        f"load average at start {m['load_average']}; commit {m['git_commit']}.",
        f"Input size {config['input_size']}; total run {results['total_s']:.0f} s.",
    ]
    if command:
        lines.append(f"Command: `{command}`")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Log-log time vs N, one panel per batch, with the fitted lines and slopes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    config, rows = results["config"], results["rows"]
    batches = list(config["batches"])
    fig = Figure(figsize=(5.5 * len(batches), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(batches), squeeze=False)[0]
    fits = {(f["estimator"], f["batch"]): f["fit"] for f in results["fits"]}
    for ax, batch in zip(axes, batches, strict=True):
        for i, name in enumerate(config["estimators"]):
            est = label(name, config["window"])
            mine = [r for r in rows if r["estimator"] == est and r["batch"] == batch]
            done = [r for r in mine if "best_us" in r]
            if not done:
                continue
            colour = f"C{i}"
            fit = fits.get((est, batch))
            text = est
            if fit is not None:
                text += f" (slope {fit['slope']:.2f}, N {fit['n_min']}–{fit['n_max']})"
                n = np.array([fit["n_min"], fit["n_max"]], float)
                ax.plot(n, np.exp(fit["intercept"]) * n ** fit["slope"], "--", color=colour)
            ax.plot(
                [r["hidden_size"] for r in done],
                [r["best_us"] for r in done],
                "o-",
                color=colour,
                label=text,
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        # Label the measured sizes as plain numbers, not as powers of two.
        sizes = sorted(config["sizes"])
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("hidden size N")
        ax.set_ylabel("µs per step (whole batch)")
        ax.set_title(f"CTRNN, batch {batch}, {config['dtype']}, {results['machine']['backend']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"Online step + gradient; dashed: least-squares fit over N >= {config['fit_min']}")
    fig.savefig(path, dpi=120)


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    p.add_argument("--out", type=Path, help=f"output folder (default {RESULTS}; none if --quick)")
    p.add_argument("--sizes", type=int, nargs="+", help="hidden sizes N")
    p.add_argument("--batches", type=int, nargs="+", help="batch sizes (1 = unbatched)")
    p.add_argument("--estimators", nargs="+", choices=sorted(EXPECTED_EXPONENT))
    p.add_argument("--input-size", type=int)
    p.add_argument("--window", type=int, help="TruncatedBPTT window")
    p.add_argument("--dtype", choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, help="timed calls per round (at most)")
    p.add_argument("--rounds", type=int, help="interleaved passes over all configurations")
    p.add_argument("--budget", type=float, dest="budget_s", help="seconds of timed calls")
    p.add_argument("--target-call", type=float, dest="target_call_s", help="seconds per call")
    p.add_argument("--max-step-seconds", type=float, dest="max_step_s", help="skip above this")
    p.add_argument("--fit-min", type=int, help="smallest N in the slope fit")
    p.add_argument("--seed", type=int)
    args = vars(p.parse_args(argv))
    quick = args.pop("quick")
    given = {k: v for k, v in args.items() if v is not None}
    for k in ("sizes", "batches", "estimators"):
        if k in given:
            given[k] = tuple(given[k])
    if quick:
        given = {"out": None, **QUICK, **given}
    return Config(**given)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and the JSON line, write the files if asked."""
    argv = sys.argv[1:] if argv is None else list(argv)
    config = parse_args(argv)
    results = run(config, log=lambda s: print(s, file=sys.stderr, flush=True))
    command = " ".join(["python benchmarks/estimators.py", *argv])
    table = markdown(results, command)
    print(table)
    print("JSON: " + json.dumps(results))
    if config.out is not None:
        config.out.mkdir(parents=True, exist_ok=True)
        (config.out / "estimators.md").write_text(
            "# Online gradient estimators: time and memory per step (CTRNN)\n\n"
            "Produced by `benchmarks/estimators.py`; see its docstring for the method.\n\n" + table
        )
        (config.out / "estimators.json").write_text(json.dumps(results, indent=1) + "\n")
        plot(results, config.out / "estimators.png")
    return results


if __name__ == "__main__":
    main()
