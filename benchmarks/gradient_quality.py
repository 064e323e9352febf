"""How close each online gradient estimator comes to the exact gradient, and at what cost.

For a CTRNN of ``N`` neurons (``N`` in 8, 16, 32, 64, 128 by default), untrained and trained
(``fit_sequence`` with RFLO on a delayed-copy task), every estimator runs along the same
trajectory of ``T`` steps (white-noise inputs, random cotangents ``c_t`` on the features) with
the parameters held fixed. At each step its gradient ``g_t = estimator.gradient(cell, s_t,
c_t)`` is compared with exact RTRL's ``g*_t`` (the gradient of ``c_tᵀ output(h_t)`` through
the whole past, i.e. BPTT's):

- ``cosine``: mean over steps of ``⟨g_t, g*_t⟩ / (‖g_t‖ ‖g*_t‖)``;
- ``relative_error``: mean over steps of ``‖g_t - g*_t‖ / ‖g*_t‖``;
- ``summed_cosine``: the cosine of the sums over the trajectory (what a learner with a small
  step size effectively follows);

and its cost is the time of one step (``step`` + ``gradient``, best of several compiled
calls of a ``lax.scan`` over the trajectory, divided by ``T``) and the bytes of its state.
The first ``burn_in`` steps are left out of the means (every estimator is exact at the start).
Stochastic estimators (UORO) get a fresh key per step, as the learners give them.

Usage::

    python benchmarks/gradient_quality.py          # writes results/gradient_quality.{md,json,png}
    python benchmarks/gradient_quality.py --quick  # tiny sizes, prints only

Prints a markdown table and one line ``JSON: {...}``. Estimators are named as on the command
line (``rtrrl train --estimator``); names that are not registered are skipped with a note.
"""

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from estimators import machine_info, make_cell, state_bytes

from rtrrl import fit_sequence
from rtrrl.app.parts import EstimatorPart
from rtrrl.app.registry import ESTIMATORS
from rtrrl.estimators import RFLO, RTRL, AbstractGradientEstimator, key_argument
from rtrrl.online import delayed_copy

RESULTS = Path(__file__).resolve().parent / "results"
NAMES = ("rtrl", "snap1", "rflo", "uoro", "local-mse", "tbptt")


@dataclasses.dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...] = (8, 16, 32, 64, 128)
    estimators: tuple[str, ...] = NAMES
    input_size: int = 8
    window: int = 8
    steps: int = 200
    burn_in: int = 20
    train_steps: int = 5_000
    repeats: int = 3
    dtype: str = "float32"
    seed: int = 0
    out: Path | None = RESULTS


QUICK = dict(sizes=(4, 8), steps=40, burn_in=5, train_steps=500, repeats=2, out=None)


def estimator_named(name: str, window: int) -> AbstractGradientEstimator | None:
    """The estimator the command line calls `name` (``None`` if it is not registered)."""
    if name not in ESTIMATORS.names():
        return None
    return ESTIMATORS.resolve(name)(EstimatorPart(name=name, window=window))


def trajectory(estimator, cell, inputs, cotangents, key):
    """Per step, the flattened gradient estimate ``g_t`` (shape ``(T, P)``)."""
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def run(params, inputs, cotangents, key):
        model = eqx.combine(params, static)
        hidden = model.init_hidden()
        init_key, steps_key = jax.random.split(key)
        state = estimator.init(model, hidden, inputs[0], **key_argument(estimator, init_key))
        keys = jax.random.split(steps_key, len(inputs))

        def body(carry, step):
            hidden, state = carry
            x, cotangent, step_key = step
            hidden, state = estimator.step(
                model, hidden, x, state, **key_argument(estimator, step_key)
            )
            grads = estimator.gradient(model, state, cotangent)
            flat = jnp.concatenate([g.ravel() for g in jax.tree.leaves(grads)])
            return (hidden, state), flat

        _, flat = jax.lax.scan(body, (hidden, state), (inputs, cotangents, keys))
        return flat

    return jax.jit(run), params


def seconds_per_step(compiled, args, steps: int, repeats: int) -> float:
    """Best time of `repeats` calls of the compiled trajectory, per step (compile excluded)."""
    jax.block_until_ready(compiled(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - start)
    return best / steps


def quality(grads: np.ndarray, exact: np.ndarray, burn_in: int) -> dict[str, float]:
    """Cosine and relative error per step (means after `burn_in`), and of the sums."""
    g, e = grads[burn_in:].astype(np.float64), exact[burn_in:].astype(np.float64)
    norms = np.linalg.norm(e, axis=1)
    keep = norms > 0
    cos = np.sum(g * e, axis=1)[keep] / (np.linalg.norm(g, axis=1)[keep] * norms[keep] + 1e-30)
    rel = np.linalg.norm(g - e, axis=1)[keep] / norms[keep]
    gs, es = g.sum(0), e.sum(0)
    summed = float(gs @ es / (np.linalg.norm(gs) * np.linalg.norm(es) + 1e-30))
    return {
        "cosine": float(np.mean(cos)),
        "relative_error": float(np.mean(rel)),
        "summed_cosine": summed,
    }


def trained(cell, config: Config, key):
    """`cell` after `train_steps` of online RFLO on a delayed-copy task (delay 4)."""
    inputs, targets = delayed_copy(key, config.train_steps, 4, channels=config.input_size)
    inputs, targets = inputs.astype(config.dtype), targets.astype(config.dtype)
    return fit_sequence(cell, RFLO(), optax.adam(3e-3), inputs, targets).cell


def measure_size(config: Config, size: int, log) -> list[dict[str, Any]]:
    """Every (cell kind, estimator) row of one network size."""
    dtype = jnp.dtype(config.dtype)
    key = jax.random.key(config.seed + size)
    cell_key, train_key, data_key, cot_key, run_key = jax.random.split(key, 5)
    fresh = make_cell(config.input_size, size, dtype, cell_key)
    cells = {"untrained": fresh, "trained": trained(fresh, config, train_key)}
    inputs = jax.random.normal(data_key, (config.steps, config.input_size), dtype)
    cotangents = jax.random.normal(cot_key, (config.steps, fresh.feature_size), dtype)
    rows = []
    for kind, cell in cells.items():
        reference, params = trajectory(RTRL(), cell, inputs, cotangents, run_key)
        exact = np.asarray(reference(params, inputs, cotangents, run_key))
        for name in config.estimators:
            estimator = estimator_named(name, config.window)
            if estimator is None:
                log(f"  {name}: not registered, skipped")
                continue
            run, params = trajectory(estimator, cell, inputs, cotangents, run_key)
            args = (params, inputs, cotangents, run_key)
            compiled = run.lower(*args).compile()
            grads = np.asarray(compiled(*args))
            row = {
                "size": size,
                "cell": kind,
                "estimator": name,
                **quality(grads, exact, config.burn_in),
                "seconds_per_step": seconds_per_step(compiled, args, config.steps, config.repeats),
                "state_bytes": state_bytes(estimator, cell),
            }
            log(
                f"  N={size:<4} {kind:<9} {name:<10} cos {row['cosine']:6.3f}  "
                f"rel.err {row['relative_error']:8.3g}  {1e6 * row['seconds_per_step']:9.1f} µs"
            )
            rows.append(row)
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| N | cell | estimator | cosine | relative error | summed cosine | µs/step | state |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['size']} | {r['cell']} | {r['estimator']} | {r['cosine']:.3f} | "
            f"{r['relative_error']:.3g} | {r['summed_cosine']:.3f} | "
            f"{1e6 * r['seconds_per_step']:.1f} | {r['state_bytes'] / 1024:.1f} KiB |"
        )
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """Quality against cost: mean cosine vs µs per step, one line per estimator over N."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.2))
    FigureCanvasAgg(figure)
    for index, kind in enumerate(("untrained", "trained")):
        axes = figure.add_subplot(1, 2, index + 1)
        for name in dict.fromkeys(r["estimator"] for r in results["rows"]):
            rows = [r for r in results["rows"] if r["estimator"] == name and r["cell"] == kind]
            x = [1e6 * r["seconds_per_step"] for r in rows]
            y = [r["cosine"] for r in rows]
            axes.plot(x, y, marker="o", label=name)
            for r, xi, yi in zip(rows, x, y, strict=True):
                axes.annotate(str(r["size"]), (xi, yi), fontsize=7, xytext=(2, 2),
                              textcoords="offset points")  # fmt: skip
        axes.set_xscale("log")
        axes.set_xlabel("µs per step (step + gradient, batch 1)")
        axes.set_ylabel("cosine with the exact gradient")
        axes.set_title(f"{kind} CTRNN (labels: N)")
        axes.grid(alpha=0.3)
    figure.axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def run(config: Config, log=print) -> dict[str, Any]:
    rows = []
    for size in config.sizes:
        log(f"N = {size}")
        rows += measure_size(config, size, log)
    return {
        "config": _jsonable(dataclasses.asdict(config)),
        "machine": machine_info(),
        "rows": rows,
    }


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, print only")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--estimators", nargs="+", help=f"names (default: {' '.join(NAMES)})")
    parser.add_argument("--steps", type=int, help="trajectory length T")
    parser.add_argument("--out", type=Path, help="folder for the .md/.json/.png files")
    args = parser.parse_args(argv)
    values = dict(QUICK) if args.quick else {}
    for name in ("sizes", "estimators", "steps", "out"):
        value = getattr(args, name)
        if value is not None:
            values[name] = tuple(value) if isinstance(value, list) else value
    return Config(**values)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    config = parse_args(argv)
    results = run(config)
    table = markdown(results)
    print(table)
    print("JSON: " + json.dumps(results))
    if config.out is not None:
        config.out.mkdir(parents=True, exist_ok=True)
        prefix = config.out / "gradient_quality"
        command = "python benchmarks/gradient_quality.py " + " ".join(sys.argv[1:])
        prefix.with_suffix(".md").write_text(
            f"# Gradient quality against cost\n\n`{command.strip()}`\n\n{table}\n"
        )
        prefix.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
        plot(results, prefix.with_suffix(".png"))
    return results


if __name__ == "__main__":
    main()
