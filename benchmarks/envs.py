"""Random-action environment throughput: the floor the online learner is measured against.

One *env step* is `VectorEnv.step` with a uniformly random action per environment (sampling
included), automatic reset and episode statistics included. ``T`` steps run inside one
compiled `jax.lax.scan`; compile time is excluded (ahead-of-time ``.lower().compile()`` and one
warm-up call), every call is closed by ``block_until_ready``, and the reported rate is
``batch × T / time`` for the best (and the median) of repeated calls.

Batch 1 is `VectorEnv(env, 1)` (what a single-stream learner steps); batch 64 is 64
independent copies. JAX's default numerics (float32) are used, as a user would run.

Usage::

    python benchmarks/envs.py                  # writes benchmarks/results/envs.{md,json}
    python benchmarks/envs.py --quick --out -  # fewer steps, prints only

Prints a markdown table and one line ``JSON: {...}`` with every number and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from _experiments import write_report

import rtrrl.envs as envs
from rtrrl import prng

RESULTS = Path(__file__).resolve().parent / "results"

# One or more ids per family: the paper's gymnax tasks, POPGym ports, a brax task.
DEFAULT_IDS = (
    "CartPole-v1",
    "MemoryChain-bsuite",
    "Catch-bsuite",
    "popgym-RepeatPreviousEasy-v0",
    "StatelessCartPole",
    "brax/inverted_pendulum",
)


def make_run(env: envs.AbstractEnvironment, batch: int, steps: int, example_key=None):
    """A compiled ``key -> sum of rewards and observations`` over `steps` random-action steps.

    It takes keys like `example_key` (default: `rtrrl.prng.key`'s, those of the training loop).
    """
    venv = envs.VectorEnv(env, batch)

    def run(key):
        key_reset, key_steps = jax.random.split(key)
        _, state = venv.reset(key_reset)

        def body(carry, key):
            state, total = carry
            key_action, key_step = jax.random.split(key)
            obs, state, reward, _, _ = venv.step(key_step, state, venv.sample_actions(key_action))
            # Consuming the observations keeps XLA from dropping the dynamics (the reward of
            # some tasks does not depend on the state).
            return (state, total + reward.sum() + obs.sum()), None

        zero = jnp.zeros((), envs.default_float())
        (state, total), _ = jax.lax.scan(body, (state, zero), jax.random.split(key_steps, steps))
        return total

    return jax.jit(run).lower(prng.key(0) if example_key is None else example_key).compile()


def measure(env_id: str, batch: int, steps: int, repeats: int) -> dict:
    env = envs.make(env_id)
    start = time.perf_counter()
    run = make_run(env, batch, steps)
    compile_s = time.perf_counter() - start
    run(prng.key(1)).block_until_ready()  # warm-up
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        run(prng.key(2 + i)).block_until_ready()
        times.append(time.perf_counter() - start)
    return {
        "id": env_id,
        "source": envs.spec(env_id).source,
        "batch": batch,
        "steps": steps,
        "best_steps_per_s": batch * steps / min(times),
        "median_steps_per_s": batch * steps / statistics.median(times),
        "compile_s": compile_s,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| env | source | batch | env-steps/s (best) | env-steps/s (median) | compile s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['id']} | {r['source']} | {r['batch']} | {r['best_steps_per_s']:,.0f} | "
            f"{r['median_steps_per_s']:,.0f} | {r['compile_s']:.1f} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", nargs="+", default=list(DEFAULT_IDS), help="environment ids")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    parser.add_argument("--steps", type=int, default=2000, help="scan length T per call")
    parser.add_argument("--brax-steps", type=int, default=200, help="T for brax ids (slower)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="T = 200 (50 for brax), 2 repeats")
    parser.add_argument("--out", default=str(RESULTS), help="results folder, or - to only print")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.quick:
        args.steps, args.brax_steps, args.repeats = 200, 50, 2
    rows = []
    for env_id in args.ids:
        for batch in args.batches:
            steps = args.brax_steps if env_id.startswith("brax/") else args.steps
            rows.append(measure(env_id, batch, steps, args.repeats))
            print(f"measured {env_id} batch {batch}", flush=True)
    device = jax.devices()[0]
    machine = {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device": device.device_kind,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "float": str(envs.default_float()),
    }
    text = table(rows)
    print(text)
    record = {"benchmark": "envs", "machine": machine, "results": rows}
    print("JSON: " + json.dumps(record))
    if args.out != "-":
        out = Path(args.out)
        header = f"Random-action env-steps/s on {machine['device']} ({machine['backend']}).\n\n"
        write_report(out, "envs", header + text, record)


if __name__ == "__main__":
    main()
