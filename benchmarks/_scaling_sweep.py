"""A sweep as one program against its configurations run one by one (the scaling benchmark's
``sweep`` part).

For each K, K configurations of RTRRL on CartPole-v1 (step sizes ``lr_cell`` log-spaced over
[1e-4, 1e-2]), each with `seeds` seeds and `steps` steps per seed, are trained

- as one program: `rtrrl.training.train_swept` (one compilation, K·S runs on the batch axis);
- one by one: K calls of `rtrrl.train` (K compilations, S runs each).

Each row gives both ways' compile and run seconds (compile: lowering and XLA compilation of
the chunk program; run: the compiled chunks, evaluations included) and their ratio, with
compile included (what a user waits) and excluded (the throughput of batching alone).

Usage (one XLA:CPU thread unless ``PJRT_NPROC`` says otherwise)::

    python benchmarks/_scaling_sweep.py --configurations 1 4 12 --steps 20000

Prints a Markdown table and one line ``JSON: {...}`` with every number and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("PJRT_NPROC", "1")  # before JAX starts its CPU backend

import numpy as np  # noqa: E402

from rtrrl.app.config import TrainConfig, build_algorithm, build_env  # noqa: E402
from rtrrl.training import train, train_swept  # noqa: E402


def sweep_rows(
    configurations: Sequence[int] = (1, 4, 12),
    *,
    steps: int = 20_000,
    seeds: int = 3,
    hidden_size: int = 32,
    eval_every: int = 5_000,
    env: str = "CartPole-v1",
) -> list[dict[str, float | int]]:
    """One row per K in `configurations`: the sweep of K step sizes × `seeds` as one program
    and as K separate `rtrrl.train` runs, each on `env` for `steps` steps per seed."""
    base = TrainConfig(
        env=env, steps=steps, seeds=seeds, hidden_size=hidden_size, eval_every=eval_every
    )
    environment = build_env(base)
    rows = []
    for num in configurations:
        values = [{"lr_cell": float(lr)} for lr in np.geomspace(1e-4, 1e-2, num)]
        algorithm = build_algorithm(base, environment)
        swept = train_swept(algorithm, environment, base.loop(), values, progress=False)
        one_compile = one_run = 0.0
        for value in values:
            config = TrainConfig(**{**_fields(base), **value})
            result = train(
                build_algorithm(config, environment), environment, config.loop(), progress=False
            )
            one_compile += result.compile_seconds
            one_run += result.run_seconds
        sweep_compile, sweep_run = swept.runs.compile_seconds, swept.runs.run_seconds
        rows.append(
            {
                "configurations": num,
                "seeds": seeds,
                "steps": steps,
                "sweep_compilations": swept.num_compilations,
                "sweep_compile_s": sweep_compile,
                "sweep_run_s": sweep_run,
                "one_by_one_compilations": num,
                "one_by_one_compile_s": one_compile,
                "one_by_one_run_s": one_run,
                "speedup_with_compile": (one_compile + one_run) / (sweep_compile + sweep_run),
                "speedup_without_compile": one_run / sweep_run,
                "sweep_s_per_configuration": (sweep_compile + sweep_run) / num,
                "one_by_one_s_per_configuration": (one_compile + one_run) / num,
            }
        )
    return rows


def _fields(config: TrainConfig) -> dict:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


def markdown(rows: list[dict[str, float | int]]) -> str:
    """The rows as a Markdown table (seconds)."""
    lines = [
        "| K | sweep compile | sweep run | one by one compile | one by one run | "
        "speed-up (with compile) | speed-up (run only) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['configurations']} | {r['sweep_compile_s']:.1f} s | {r['sweep_run_s']:.1f} s "
            f"| {r['one_by_one_compile_s']:.1f} s | {r['one_by_one_run_s']:.1f} s "
            f"| {r['speedup_with_compile']:.2f}× | {r['speedup_without_compile']:.2f}× |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configurations", type=int, nargs="+", default=[1, 4, 12])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--hidden-size", type=int, default=32)
    args = parser.parse_args(argv)
    rows = sweep_rows(
        args.configurations, steps=args.steps, seeds=args.seeds, hidden_size=args.hidden_size
    )
    print(markdown(rows))
    from _experiments import machine_info

    print("JSON: " + json.dumps({"machine": machine_info(), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
