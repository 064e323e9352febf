"""XLA:CPU matmul throughput at the sizes of exact RTRL on a CTRNN, beside RTRL itself.

Exact RTRL on a CTRNN (``rtrrl/estimators/_kernels/_ctrnn.py``, `CTRNNRTRLState`) keeps the
influence ``Mᵀ`` of shape ``(P, N)``, ``P = N (I+N+1) + N``, and each step multiplies it by the
step's ``(N, N)`` Jacobian: ``2·P·N²`` flops, the step's dominant cost. Its gradients are
matrix-vector products ``Mᵀ c`` (``2·P·N`` flops each). This script measures, on one XLA
thread unless told otherwise:

- **GEMM**: ``B`` products ``(P, N) @ (N, N)``, one per environment (each environment has
  its own Jacobian), as XLA runs the ``jax.vmap`` of one product;
- **GEMV**: ``B`` products ``(P, N) @ (N,)``;
- **RTRL**: the whole learner step of ``benchmarks/throughput.py`` (CTRNN + RTRL on
  CartPole-v1, the same `TrainConfig`), with its flops counted as ``B·(2·P·N² + 2·2·P·N)``
  (the carry, and the two gradients ``Mᵀ c``: the gradient norm's product has the first
  gradient's cotangent and XLA computes it once), so that its GFLOP/s can be set against the
  GEMM's: the fraction of the machine's matmul throughput the whole step reaches (its other
  work, the heads, traces, optimiser and environment, counts as time but not as flops).

Every kernel runs ``T`` times inside one compiled `jax.lax.fori_loop` or `jax.lax.scan` (the
result feeds the next iteration, so nothing is hoisted), timed as the best of ``--repeats``
calls by process CPU time (a shared machine's waiting time is not counted; one thread, so CPU
time is the kernel's time). Each call also pays a fixed cost outside the loop: the arguments
are copied in and the results out (about 0.4 ms for the RTRL learner at N = 32, batch 1,
against ~40 µs per step). So every kernel is timed at ``T`` and ``2T`` iterations and its
time per iteration is the difference over ``T``: the marginal cost of one more step, which
is what "per step" means for a long run.

Usage::

    python benchmarks/roofline.py --cpu-threads 1          # writes results/roofline.{md,json}
    python benchmarks/roofline.py --cpu-threads 1 --out -  # prints only

Prints a Markdown table and one line ``JSON: {...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
from _experiments import machine_info, write_report

from rtrrl.app.config import TrainConfig
from rtrrl.app.cpu_codegen import configure_cpu_codegen
from rtrrl.app.cpu_threads import configure_cpu_threads

RESULTS = Path(__file__).resolve().parent / "results"

INPUT_SIZE = 7
"""The CTRNN's input size on CartPole-v1 (4 observations, 2 one-hot previous actions, the
previous reward), so ``P = N (I+N+1) + N`` matches the throughput benchmark's learner."""


def params_of(hidden: int, input_size: int = INPUT_SIZE) -> int:
    """``P``: the CTRNN's parameter count (weight ``N × (I+N+1)`` and ``raw_tau``)."""
    return hidden * (input_size + hidden + 1) + hidden


def rtrl_flops(hidden: int, input_size: int = INPUT_SIZE) -> float:
    """Flops of one environment's RTRL step: the carry GEMM and two ``Mᵀ c`` products."""
    p = params_of(hidden, input_size)
    return 2.0 * p * hidden**2 + 2 * 2.0 * p * hidden


def best_cpu_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Best process CPU time of ``fn()`` (blocking on its result) after one warm-up call."""
    jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        jax.block_until_ready(fn())
        best = min(best, time.process_time() - start)
    return best


def marginal_seconds(seconds_of: Callable[[int], float], iterations: int) -> float:
    """Seconds per iteration, ``(t(2T) - t(T)) / T``, from ``seconds_of(T)``, the time of one
    call running ``T`` iterations: the call's fixed cost (argument and result copies) cancels."""
    return (seconds_of(2 * iterations) - seconds_of(iterations)) / iterations


def gemm_seconds(batch: int, p: int, n: int, iterations: int, repeats: int) -> float:
    """Seconds per ``B × (P, N) @ (N, N)`` (vmapped, one Jacobian per environment)."""
    keys = jax.random.split(jax.random.key(0), 2)
    m = jax.random.normal(keys[0], (batch, p, n))
    # Orthogonal factors keep the iterated product bounded (no overflow, no denormals).
    q = jnp.linalg.qr(jax.random.normal(keys[1], (batch, n, n)))[0]
    step = jax.vmap(lambda m, q: m @ q)

    def seconds_of(t: int) -> float:
        run = jax.jit(lambda m, q: jax.lax.fori_loop(0, t, lambda _, m: step(m, q), m))
        return best_cpu_seconds(lambda: run(m, q), repeats)

    return marginal_seconds(seconds_of, iterations)


def gemv_seconds(batch: int, p: int, n: int, iterations: int, repeats: int) -> float:
    """Seconds per ``B × (P, N) @ (N,)``."""
    keys = jax.random.split(jax.random.key(1), 2)
    m = jax.random.normal(keys[0], (batch, p, n))
    c = jax.random.normal(keys[1], (batch, n))
    step = jax.vmap(lambda m, c: m @ c)

    def body(_, c):
        # The product feeds the next cotangent, so the loop cannot be hoisted.
        return 0.5 * c + 1e-3 * step(m, c)[:, :n]

    def seconds_of(t: int) -> float:
        run = jax.jit(lambda m, c: jax.lax.fori_loop(0, t, body, c))
        return best_cpu_seconds(lambda: run(m, c), repeats)

    return marginal_seconds(seconds_of, iterations)


def rtrl_seconds(batch: int, hidden: int, steps: int, repeats: int) -> float:
    """Seconds per learner step of CTRNN + RTRL on CartPole-v1 (``throughput.py``'s step)."""
    from throughput import learner_timing

    config = TrainConfig(
        env="CartPole-v1", cell="ctrnn", estimator="rtrl", hidden_size=hidden, num_envs=batch
    )

    def seconds_of(t: int) -> float:
        return learner_timing(config, t, repeats, clock=time.process_time).best_s

    return marginal_seconds(seconds_of, steps)


def measure(hiddens: Sequence[int], batches: Sequence[int], repeats: int) -> list[dict]:
    rows = []
    for n in hiddens:
        p = params_of(n)
        for batch in batches:
            # About 0.4 GFLOP per timed call (a few ms at least), so that dispatch is noise.
            iterations = max(4, int(4e8 / (2.0 * p * n * n * batch)))
            gemm = gemm_seconds(batch, p, n, iterations, repeats)
            gemv = gemv_seconds(batch, p, n, 4 * iterations, repeats)
            rtrl = rtrl_seconds(batch, n, max(8, int(1e9 / (batch * rtrl_flops(n)))), repeats)
            gemm_gflops = batch * 2.0 * p * n * n / gemm / 1e9
            rtrl_gflops = batch * rtrl_flops(n) / rtrl / 1e9
            rows.append(
                {
                    "hidden": n,
                    "params": p,
                    "batch": batch,
                    "gemm_us": gemm * 1e6,
                    "gemm_gflops": gemm_gflops,
                    "gemv_us": gemv * 1e6,
                    "gemv_gflops": batch * 2.0 * p * n / gemv / 1e9,
                    "rtrl_step_us": rtrl * 1e6,
                    "rtrl_flops_per_env_step": rtrl_flops(n),
                    "rtrl_gflops": rtrl_gflops,
                    "fraction_of_gemm": rtrl_gflops / gemm_gflops,
                }
            )
            r = rows[-1]
            print(
                f"N {n:>3} batch {batch:>3}: GEMM {gemm_gflops:6.1f} GFLOP/s, GEMV "
                f"{r['gemv_gflops']:5.1f} GFLOP/s, RTRL step {r['rtrl_step_us']:9.1f} µs = "
                f"{rtrl_gflops:6.1f} GFLOP/s ({r['fraction_of_gemm']:.2f} of the GEMM)",
                flush=True,
            )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| N | P | batch | GEMM (P,N)@(N,N) µs | GEMM GFLOP/s | GEMV (P,N)@(N) GFLOP/s | RTRL step µs | RTRL MFLOP / env-step | RTRL GFLOP/s | RTRL / GEMM |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['hidden']} | {r['params']} | {r['batch']} | {r['gemm_us']:,.1f} | "
            f"{r['gemm_gflops']:.1f} | {r['gemv_gflops']:.1f} | {r['rtrl_step_us']:,.1f} | "
            f"{r['rtrl_flops_per_env_step'] / 1e6:.2f} | {r['rtrl_gflops']:.1f} | "
            f"{r['fraction_of_gemm']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-sizes", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu-threads", type=int, default=1, help="XLA:CPU threads")
    parser.add_argument(
        "--fast-cpu-codegen", action="store_true", help="as `rtrrl train --fast-cpu-codegen`"
    )
    parser.add_argument("--out", default=str(RESULTS), help="results folder, or - to only print")
    args = parser.parse_args(argv)
    threads = configure_cpu_threads(TrainConfig(cpu_threads=args.cpu_threads))
    configure_cpu_codegen(TrainConfig(fast_cpu_codegen=args.fast_cpu_codegen))
    rows = measure(args.hidden_sizes, args.batches, args.repeats)
    machine = machine_info() | {"cpu_threads": threads}
    command = "python benchmarks/roofline.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = table(rows)
    print(text)
    record = {"benchmark": "roofline", "machine": machine, "rows": rows}
    print("JSON: " + json.dumps(record))
    if args.out != "-":
        out = Path(args.out)
        header = (
            f"XLA:CPU GEMM/GEMV throughput at exact RTRL's sizes on a CTRNN (float32, "
            f"{machine['cpu_count']} CPU cores, XLA threads: {threads}, JAX {machine['jax']}, "
            f"load average {machine['load_average']}), beside the whole CTRNN + RTRL learner "
            f"step on CartPole-v1 (best of {args.repeats} calls, process CPU time).\n\n"
            f"Command: `{command.strip()}`\n\n"
        )
        write_report(out, "roofline", header + text, record)
    return record


if __name__ == "__main__":
    main()
