"""Where a learner's step spends its time: the compiled program's kernels, from `jax.profiler`.

For each learner of ``benchmarks/throughput.py`` (the same `TrainConfig`, CartPole-v1 by
default) and each batch ``B``, ``T`` scanned `RTRRL.step` calls are compiled and timed
unprofiled (best of ``--repeats`` calls). A shorter scan of the same step
(``--traced-env-steps``: the profiler keeps a bounded number of events) then runs once under
`jax.profiler.trace`. Every event of that trace whose name is an instruction of the compiled
program (a loop fusion, a dot, a YNNPACK fusion, a scatter, ...; not the ``while`` loop that
contains them) is summed per instruction and divided by the traced steps. Each row names the
instruction's output shape and the JAX operation it was lowered from, so that a slow kernel
can be traced back to the code.

The profiler adds a cost to every kernel it records (the step takes up to twice as long
while traced on XLA:CPU), so the traced times are relative: a kernel's share of the traced
kernels' sum says where the time goes, the unprofiled µs per step says how much there is.

Usage::

    python benchmarks/kernel_profile.py --cpu-threads 1 --clock cpu  # results/kernel_profile.*
    python benchmarks/kernel_profile.py --methods "LRU (RTRL)" --batches 1 --top 40 --out -
    python benchmarks/kernel_profile.py --cpu-threads 1 --fast-cpu-codegen --out -

Prints a Markdown table per learner and batch, and one line ``JSON: {...}``.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import jax
from _experiments import machine_info, write_report
from throughput import (
    CLOCKS,
    METHODS,
    RESULTS,
    _time,
    add_cpu_options,
    compile_learner,
    configure_cpu,
    steps_for,
)

from rtrrl.app.config import TrainConfig

_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT\s+)?%?(?P<name>[\w.\-]+) = (?P<shape>\([^)]*\)|\S+) (?P<opcode>[\w\-]+)\("
)
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_LAYOUT = re.compile(r"\{[^}]*\}")
_CONTAINERS = {"while", "conditional", "call", "async-start", "async-done"}
"""Instructions whose events span other kernels' (counting them would count time twice)."""


def instructions(hlo_text: str) -> dict[str, dict[str, str]]:
    """``name -> {"shape", "opcode", "op"}`` for every instruction of an optimized HLO module's
    text (computations' parameters and constants included; the trace never names those).
    ``op`` is the JAX operation of the instruction's metadata, without the leading path of
    the jitted function and its loop (``jit(run)/while/body/closed_call/``)."""
    found = {}
    for line in hlo_text.splitlines():
        match = _INSTRUCTION.match(line)
        if match is None:
            continue
        op = _OP_NAME.search(line)
        op_name = op.group(1) if op else ""
        op_name = re.sub(r"^jit\([^)]*\)/(while/body/)?(closed_call/)?", "", op_name)
        found[match["name"]] = {
            "shape": _LAYOUT.sub("", match["shape"]),
            "opcode": match["opcode"],
            "op": op_name,
        }
    return found


def kernel_times(
    events: Sequence[dict], known: dict[str, dict[str, str]], steps: int
) -> list[dict]:
    """Per-step traced time and launches of each instruction in `known` that `events` (Chrome
    trace events) record as complete (``"ph": "X"``) spans, slowest first; containers left
    out."""
    total_us: collections.Counter[str] = collections.Counter()
    launches: collections.Counter[str] = collections.Counter()
    for event in events:
        name = event.get("name")
        if event.get("ph") != "X" or name not in known:
            continue
        if known[name]["opcode"] in _CONTAINERS:
            continue
        total_us[name] += float(event.get("dur", 0.0))
        launches[name] += 1
    return [
        {
            "kernel": name,
            **known[name],
            "us_per_step": us / steps,
            "launches_per_step": launches[name] / steps,
        }
        for name, us in total_us.most_common()
    ]


def check_complete(kernels: Sequence[dict], steps: int) -> None:
    """Exit with an ``error:`` line if `kernel_times` found no kernel, or if the trace of
    `steps` steps lost events: most kernels of a step run once per step, so a median below one
    launch per step means the profiler dropped some."""
    if not kernels:
        raise SystemExit(
            "error: the profiler's trace names none of the compiled program's instructions "
            "(this script reads XLA:CPU's per-kernel events; other backends name their kernels "
            "otherwise)"
        )
    if statistics.median(k["launches_per_step"] for k in kernels) < 1:
        raise SystemExit(
            f"error: the trace of {steps} steps is incomplete (the profiler dropped events): "
            "pass a smaller --traced-env-steps"
        )


def traced_events(compiled, args) -> list[dict]:
    """The trace events of one call of `compiled` (after its warm-up elsewhere)."""
    with tempfile.TemporaryDirectory() as log_dir:
        with jax.profiler.trace(log_dir, create_perfetto_trace=True):
            jax.block_until_ready(compiled(*args))
        paths = sorted(Path(log_dir).glob("**/perfetto_trace.json.gz"))
        if not paths:
            raise SystemExit(f"error: jax.profiler wrote no perfetto_trace.json.gz in {log_dir}")
        with gzip.open(paths[-1], "rt") as file:
            return json.load(file)["traceEvents"]


def profile(
    method: str,
    batch: int,
    *,
    env_id: str,
    hidden_size: int,
    env_steps: int,
    traced_env_steps: int,
    repeats: int,
    clock=time.perf_counter,
) -> dict:
    """One learner at one batch: its unprofiled µs per step and its kernels' traced times."""
    steps = steps_for(method, batch, env_steps)
    config = TrainConfig(env=env_id, hidden_size=hidden_size, num_envs=batch, **METHODS[method])
    compiled, args, _ = compile_learner(config, steps)
    best, _median = _time(compiled, *args, repeats=repeats, clock=clock)
    # The profiler keeps a bounded number of events (a step launches ~100-200 kernels): the
    # traced call is a shorter scan of the same step, compiled on its own.
    traced_steps = min(steps, max(4, traced_env_steps // batch))
    traced, traced_args, _ = compile_learner(config, traced_steps)
    jax.block_until_ready(traced(*traced_args))  # warm-up
    known = instructions(traced.compiled.as_text())  # equinox wraps JAX's `Compiled`
    kernels = kernel_times(traced_events(traced, traced_args), known, traced_steps)
    check_complete(kernels, traced_steps)
    traced_us = sum(k["us_per_step"] for k in kernels)
    for kernel in kernels:
        kernel["share"] = kernel["us_per_step"] / traced_us
    return {
        "method": method,
        "batch": batch,
        "steps": steps,
        "step_us": best / steps * 1e6,
        "traced_steps": traced_steps,
        "traced_kernels_us": traced_us,
        "kernels_per_step": sum(k["launches_per_step"] for k in kernels),
        "kernels": kernels,
    }


def table(result: dict, top: int) -> str:
    r = result
    lines = [
        f"**{r['method']}, batch {r['batch']}**: {r['step_us']:,.1f} µs per step unprofiled; "
        f"traced, {r['kernels_per_step']:.0f} kernels per step take {r['traced_kernels_us']:,.1f} "
        f"µs. The {min(top, len(r['kernels']))} slowest:",
        "",
        "| # | kernel | output | from | µs / step (traced) | share | launches / step |",
        "|---:|---|---|---|---:|---:|---:|",
    ]
    for rank, k in enumerate(r["kernels"][:top], start=1):
        lines.append(
            f"| {rank} | `{k['kernel']}` | `{k['shape']}` | `{k['op'] or k['opcode']}` | "
            f"{k['us_per_step']:,.2f} | {100 * k['share']:.1f} % | "
            f"{k['launches_per_step']:g} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--methods", nargs="+", choices=list(METHODS), default=["RFLO", "LRU (RTRL)"]
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--env-steps", type=int, default=20_000, help="environment steps per call")
    parser.add_argument(
        "--traced-env-steps",
        type=int,
        default=2_000,
        help="environment steps of the traced call (at least 4 steps; the profiler keeps "
        "about 500k events, ~3k steps of 150 kernels)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="unprofiled calls timed")
    parser.add_argument("--top", type=int, default=20, help="kernels listed per learner")
    add_cpu_options(parser)
    parser.add_argument("--out", default=str(RESULTS), help="results folder, or - to only print")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    threads = configure_cpu(args)
    results = []
    for batch in args.batches:
        for method in args.methods:
            print(f"profiling {method}, batch {batch} ...", file=sys.stderr, flush=True)
            results.append(
                profile(
                    method,
                    batch,
                    env_id=args.env,
                    hidden_size=args.hidden_size,
                    env_steps=args.env_steps,
                    traced_env_steps=args.traced_env_steps,
                    repeats=args.repeats,
                    clock=CLOCKS[args.clock],
                )
            )
    machine = machine_info()
    machine["device"] = jax.devices()[0].device_kind
    machine["cpu_threads"] = threads
    command = "python benchmarks/kernel_profile.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = "\n\n".join(table(r, args.top) for r in results)
    print(text)
    record = {
        "benchmark": "kernel_profile",
        "env": args.env,
        "hidden_size": args.hidden_size,
        "machine": machine,
        # The `--top` slowest kernels of each learner, and the traced time of the others.
        "results": [
            r
            | {
                "kernels": r["kernels"][: args.top],
                "other_kernels_us": sum(k["us_per_step"] for k in r["kernels"][args.top :]),
            }
            for r in results
        ],
    }
    print("JSON: " + json.dumps(record))
    if args.out != "-":
        out = Path(args.out)
        header = (
            f"Kernels of the RTRRL learner's step on {args.env} (N = {args.hidden_size}, "
            f"float32) on {machine['device']} ({machine['cpu_count']} CPU cores, XLA threads: "
            f"{threads}, "
            + (f"XLA_FLAGS `{machine['xla_flags']}`, " if machine["xla_flags"] else "")
            + f"JAX {machine['jax']}), from `jax.profiler`. Traced times include the "
            "profiler's own cost per kernel: read them as shares.\n\n"
            f"Command: `{command.strip()}`\n\n"
        )
        write_report(out, "kernel_profile", header + text, record)
    return record


if __name__ == "__main__":
    main()
