"""Throughput of the RTRRL learner on CartPole-v1 beside the bare-environment floor.

For each learner (CTRNN-32 with RFLO, RTRL, LocalMSE, TBPTT(k); LRU-32 with its exact RTRL)
and each batch B, ``T`` calls of `RTRRL.step` run inside one compiled `jax.lax.scan` (the same
step the training loop scans, built from the same `TrainConfig` as ``rtrrl train``). The
rate is ``B × T / time``: environment steps per second with learning (one optimiser update
per step), compile excluded (ahead-of-time ``.lower().compile()`` and one warm-up call),
best and median of repeated calls. At each batch, the learners and the floor are compiled
first and then called in turn, round after round (`time_in_turns`), so that the ratios within
one run compare calls timed under the same load.

The *floor* is `benchmarks/envs.py`'s measurement of the same environment at the same batch:
random actions, auto-reset and episode statistics, in the same kind of scan. The ratio
``learner µs / floor µs`` per step says what learning costs on top of acting.

Usage::

    python benchmarks/throughput.py                       # writes results/throughput.{md,json}
    python benchmarks/throughput.py --batches 1 64 1024 4096 --out results/gpu  # on a GPU
    python benchmarks/throughput.py --cpu-threads 1       # XLA:CPU on one thread (small steps)
    python benchmarks/throughput.py --prng threefry2x32   # JAX's own threefry lowering (a loop)
    python benchmarks/throughput.py --quick --out -       # short, prints only
    python benchmarks/throughput.py --fast-cpu-codegen    # LLVM vectorizes short loops

Prints a Markdown table and one line ``JSON: {...}`` with every number and the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
from _experiments import machine_info, write_report
from envs import make_run as make_floor_run

from rtrrl import prng
from rtrrl.app.config import TrainConfig, build_algorithm, build_env
from rtrrl.app.cpu_codegen import configure_cpu_codegen
from rtrrl.app.cpu_threads import ENV_VAR, configure_cpu_threads

RESULTS = Path(__file__).resolve().parent / "results"

METHODS: dict[str, dict] = {
    "RFLO": dict(cell="ctrnn", estimator="rflo"),
    # The paper's learner (no observation normalisation, std reward scale, constant step
    # sizes), measured beside the default one in the same run so that the default's extra
    # work has a number.
    "RFLO (paper preset)": dict(cell="ctrnn", estimator="rflo", preset="paper"),
    "RTRL": dict(cell="ctrnn", estimator="rtrl"),
    "LocalMSE": dict(cell="ctrnn", estimator="local-mse"),
    "TBPTT": dict(cell="ctrnn", estimator="tbptt"),
    "LRU (RTRL)": dict(cell="lru", estimator="rtrl"),
}
"""Learners measured: ``TrainConfig`` options on top of its defaults (the default preset)."""

PRNGS = ("rtrrl", "threefry2x32", "rbg", "unsafe_rbg")
"""``--prng`` choices: ``rtrrl`` (`rtrrl.prng.key`) or a JAX implementation name."""

# Exact RTRL on a CTRNN costs 2·P·N² = O(N⁴) flops per environment (≈ 50 µs at N = 32, one
# thread): its calls get fewer steps so that one call stays near the others' duration.
_SLOW = {"RTRL": 8}


@dataclasses.dataclass(frozen=True)
class Timing:
    best_s: float
    median_s: float
    compile_s: float


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""``--clock`` choices: wall-clock time, or the process's CPU time (on one XLA thread, the
step's own time without the waits a shared machine adds)."""


def time_in_turns(
    calls: Sequence[tuple], *, repeats: int, clock=time.perf_counter
) -> list[tuple[float, float]]:
    """``(best, median)`` seconds of each ``(compiled, args)`` in `calls`, over `repeats`
    rounds in which every call runs once, in turn (after one warm-up call each).

    A shared machine's speed drifts (other tenants' load, the CPU clock) over the minutes a
    benchmark takes. Timing each call's repeats back to back, two learners compared in "the
    same run" met different stretches of that drift; taking turns, each call's best is taken
    over the same stretch as every other call's, so their ratio is what the run can vouch for.
    """
    for compiled, args in calls:
        jax.block_until_ready(compiled(*args))  # warm-up
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for durations, (compiled, args) in zip(times, calls, strict=True):
            start = clock()
            jax.block_until_ready(compiled(*args))
            durations.append(clock() - start)
    return [(min(durations), statistics.median(durations)) for durations in times]


def _time(compiled, *args, repeats: int, clock=time.perf_counter) -> tuple[float, float]:
    """`time_in_turns` of one call."""
    return time_in_turns([(compiled, args)], repeats=repeats, clock=clock)[0]


def make_key(seed: int, prng_name: str = "rtrrl"):
    """A key of `PRNGS` entry `prng_name`."""
    return prng.key(seed) if prng_name == "rtrrl" else jax.random.key(seed, impl=prng_name)


def compile_learner(config: TrainConfig, steps: int, prng_name: str = "rtrrl") -> tuple:
    """``(compiled, args, compile_s)``: ``compiled(*args)`` runs ``steps`` scanned `RTRRL.step`
    calls of `config` (``num_envs`` = batch) from a fresh state; compiled ahead of time."""
    env = build_env(config)
    key = make_key(config.seed, prng_name)
    algorithm = build_algorithm(config, env)(key)
    state = algorithm.init(key, env, num_envs=config.num_envs)

    def run(state, key):
        def body(state, step_key):
            state, metrics = algorithm.step(state, env, step_key)
            return state, metrics.td_error_sq

        state, td_error_sq = jax.lax.scan(body, state, jax.random.split(key, steps))
        return state, td_error_sq.sum()

    start = time.perf_counter()
    compiled = eqx.filter_jit(run).lower(state, key).compile()
    return compiled, (state, key), time.perf_counter() - start


def learner_timing(
    config: TrainConfig, steps: int, repeats: int, prng_name: str = "rtrrl", clock=time.perf_counter
) -> Timing:
    """Time ``steps`` scanned `RTRRL.step` calls of `config` (``num_envs`` = batch)."""
    compiled, args, compile_s = compile_learner(config, steps, prng_name)
    best, median = _time(compiled, *args, repeats=repeats, clock=clock)
    return Timing(best, median, compile_s)


def compile_floor(
    env_id: str, batch: int, steps: int, prng_name: str = "rtrrl"
) -> tuple[object, tuple, float]:
    """``(compiled, args, compile_s)`` of `benchmarks/envs.py`'s random-action floor: `steps`
    scanned steps of `env_id` at `batch`."""
    start = time.perf_counter()
    env = build_env(TrainConfig(env=env_id))
    compiled = make_floor_run(env, batch, steps, make_key(0, prng_name))
    return compiled, (make_key(1, prng_name),), time.perf_counter() - start


def steps_for(method: str, batch: int, env_steps: int) -> int:
    """Scan length T of one call: about `env_steps` environment steps, at least 4 steps."""
    return max(4, env_steps // batch // _SLOW.get(method, 1))


def measure(
    methods: Sequence[str],
    batches: Sequence[int],
    *,
    env_id: str,
    hidden_size: int,
    window: int,
    env_steps: int,
    repeats: int,
    prng_name: str = "rtrrl",
    clock=time.perf_counter,
) -> list[dict]:
    rows = []
    for batch in batches:
        # Everything at this batch is compiled first, then timed in turns (`time_in_turns`),
        # so that the learners and the floor they are divided by meet the same machine.
        floor_steps = max(4, env_steps // batch)
        programs = [compile_floor(env_id, batch, floor_steps, prng_name)]
        all_steps = []
        for method in methods:
            all_steps.append(steps_for(method, batch, env_steps))
            config = TrainConfig(
                env=env_id, hidden_size=hidden_size, window=window, num_envs=batch,
                **METHODS[method],
            )  # fmt: skip
            programs.append(compile_learner(config, all_steps[-1], prng_name))
            print(f"batch {batch:>5}: compiled {method} in {programs[-1][2]:.1f} s", flush=True)
        timings = time_in_turns(
            [(compiled, args) for compiled, args, _ in programs], repeats=repeats, clock=clock
        )
        floor_best, _ = timings[0]
        floor_us = floor_best / floor_steps * 1e6
        for method, steps, (best, median), (_, _, compile_s) in zip(
            methods, all_steps, timings[1:], programs[1:], strict=True
        ):
            step_us = best / steps * 1e6
            rows.append(
                {
                    "method": method if method != "TBPTT" else f"TBPTT({window})",
                    "batch": batch,
                    "steps": steps,
                    "step_us": step_us,
                    "env_steps_per_s": batch * steps / best,
                    "median_env_steps_per_s": batch * steps / median,
                    "floor_step_us": floor_us,
                    "floor_env_steps_per_s": batch * floor_steps / floor_best,
                    "ratio": step_us / floor_us,
                    "compile_s": compile_s,
                }
            )
            r = rows[-1]
            print(
                f"{r['method']:>12} batch {batch:>5}: {r['env_steps_per_s']:>12,.0f} env-steps/s "
                f"({step_us:8.1f} µs/step, {r['ratio']:.1f}× the floor)",
                flush=True,
            )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| learner | batch | env-steps/s (best) | env-steps/s (median) | µs / step | floor env-steps/s | floor µs / step | learner / floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['batch']} | {r['env_steps_per_s']:,.0f} | "
            f"{r['median_env_steps_per_s']:,.0f} | {r['step_us']:,.1f} | "
            f"{r['floor_env_steps_per_s']:,.0f} | {r['floor_step_us']:,.1f} | {r['ratio']:.1f}× |"
        )
    return "\n".join(lines)


def add_cpu_options(parser: argparse.ArgumentParser) -> None:
    """``--cpu-threads``, ``--clock`` and ``--fast-cpu-codegen``: how XLA:CPU runs and how its
    time is taken (shared with ``benchmarks/kernel_profile.py``; applied by `configure_cpu`)."""
    parser.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        help="XLA:CPU threads (PJRT_NPROC; default: JAX's, every core). `rtrrl train` picks 1 "
        "for small steps (rtrrl.app.cpu_threads)",
    )
    parser.add_argument(
        "--clock",
        default="wall",
        choices=list(CLOCKS),
        help="time by the wall clock, or by the process's CPU time (with --cpu-threads 1: "
        "steadier on a shared machine, since waiting for a core is not counted)",
    )
    parser.add_argument(
        "--fast-cpu-codegen", action="store_true", help="as `rtrrl train --fast-cpu-codegen`"
    )


def configure_cpu(args: argparse.Namespace) -> str:
    """Apply `add_cpu_options`' choices before JAX starts its backend; the thread count, said
    for the report."""
    configure_cpu_codegen(TrainConfig(fast_cpu_codegen=args.fast_cpu_codegen))
    if args.cpu_threads is not None:
        return configure_cpu_threads(TrainConfig(cpu_threads=args.cpu_threads))
    return os.environ.get(ENV_VAR, "all cores (JAX's default)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64, 1024])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--window", type=int, default=8, help="TBPTT window k")
    parser.add_argument(
        "--env-steps", type=int, default=40_000, help="environment steps per timed call"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--prng",
        default="rtrrl",
        choices=PRNGS,
        help="keys: rtrrl's (JAX's threefry2x32 bits, unrolled; the training loop's), "
        "threefry2x32 (the same bits as JAX lowers them, a loop on CPU), rbg, unsafe_rbg",
    )
    parser.add_argument("--quick", action="store_true", help="2,000 env-steps per call, 2 repeats")
    add_cpu_options(parser)
    parser.add_argument("--out", default=str(RESULTS), help="results folder, or - to only print")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.quick:
        args.env_steps, args.repeats = 2_000, 2
    threads = configure_cpu(args)
    rows = measure(
        args.methods,
        args.batches,
        env_id=args.env,
        hidden_size=args.hidden_size,
        window=args.window,
        env_steps=args.env_steps,
        repeats=args.repeats,
        prng_name=args.prng,
        clock=CLOCKS[args.clock],
    )
    machine = machine_info()
    machine["device"] = jax.devices()[0].device_kind
    machine["prng"] = "threefry2x32_unrolled (rtrrl.prng)" if args.prng == "rtrrl" else args.prng
    machine["cpu_threads"] = threads
    machine["clock"] = args.clock
    command = "python benchmarks/throughput.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = table(rows)
    print(text)
    record = {
        "benchmark": "throughput",
        "env": args.env,
        "hidden_size": args.hidden_size,
        "machine": machine,
        "rows": rows,
    }
    print("JSON: " + json.dumps(record))
    if args.out != "-":
        out = Path(args.out)
        header = (
            f"RTRRL env-steps/s on {args.env} (N = {args.hidden_size}, float32, PRNG "
            f"{machine['prng']}) on {machine['device']} ({machine['cpu_count']} CPU cores, "
            f"XLA threads: {threads}, clock: {args.clock}, "
            + (f"XLA_FLAGS `{machine['xla_flags']}`, " if machine["xla_flags"] else "")
            + f"JAX {machine['jax']}, load average {machine['load_average']}), beside the "
            f"random-action floor of the same environment.\n\nCommand: `{command.strip()}`\n\n"
        )
        write_report(out, "throughput", header + text, record)
    return record


if __name__ == "__main__":
    main()
