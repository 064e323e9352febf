"""Training-loop throughput against the total batch and against the number of devices.

Every number is ``rtrrl.train``'s own ``env_steps_per_second``: the default learner
(CTRNN-32, RFLO, default preset) on CartPole-v1, all seeds' environment steps over the time of
the compiled chunks (compile excluded), with a minimal evaluation (1 episode of 1 step) so that
the chunks are training steps. Parts (``--part``):

- ``batch``: total batch ``B = seeds × envs`` from 1 to ``--max-batch`` (powers of 4, up to
  65,536), ``seeds = min(B, --max-seeds)``, on one device; each seed runs about
  ``--env-steps / B`` steps per chunk, two chunks.
- ``devices``: a fixed batch (``--device-seeds`` × ``--device-envs``) split over 1, 2, 4, ...
  devices (`LoopConfig.devices`), each count in a subprocess of its own, since JAX fixes its
  device count at start-up. On CPU the devices are virtual (``jax_num_cpu_devices``) and share
  the same cores, so the numbers show the cost of splitting, not a speed-up.
- ``sweep``: K configurations (``--sweep-configurations``, step sizes ``lr_cell``) × 3 seeds
  trained as one program (`rtrrl.training.train_swept`, one compilation) against K separate
  `rtrrl.train` runs, seconds per configuration with and without compilation
  (``_scaling_sweep.py``, which also runs on its own).

Usage::

    python benchmarks/scaling.py                           # both parts, results/scaling.*
    python benchmarks/scaling.py --part batch --max-batch 1024 --env-steps 20000 --out -
    python benchmarks/scaling.py --max-batch 65536 --out results/gpu   # on a GPU, one command

On a machine with several GPUs the ``devices`` part uses real devices (``--device-counts``
must not exceed them). Prints a Markdown table per part and one line ``JSON: {...}`` with
every number and the machine; writes ``scaling.{md,json,png}`` to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _loop_run(seeds: int, envs: int, env_steps: int, devices: int | None) -> dict:
    """One two-chunk `rtrrl.train` run of `seeds` × `envs`; its throughput and times."""
    from rtrrl.app.config import TrainConfig, build_algorithm, build_env
    from rtrrl.training import train

    per_seed = max(4, env_steps // (seeds * envs)) * envs  # env-steps per seed and chunk
    config = TrainConfig(
        env="CartPole-v1",
        seeds=seeds,
        num_envs=envs,
        steps=2 * per_seed,
        eval_every=per_seed,
        eval_envs=1,
        eval_steps=1,
    )
    env = build_env(config)
    loop = dataclasses.replace(config.loop(), devices=devices)
    result = train(build_algorithm(config, env), env, loop, progress=False)
    return {
        "seeds": seeds,
        "envs": envs,
        "batch": seeds * envs,
        "devices": devices or 1,
        "steps_per_seed": int(result.total_steps),
        "env_steps_per_s": result.env_steps_per_second,
        "run_s": result.run_seconds,
        "compile_s": result.compile_seconds,
    }


def batch_part(args: argparse.Namespace) -> list[dict]:
    """Env-steps/s against the total batch, on one device."""
    rows = []
    batch = 1
    while batch <= args.max_batch:
        seeds = min(batch, args.max_seeds)
        rows.append(_loop_run(seeds, batch // seeds, args.env_steps, None))
        _say(rows[-1])
        batch *= 4
    return rows


def devices_part(args: argparse.Namespace) -> list[dict]:
    """Env-steps/s of one batch against the device count, a subprocess per count."""
    rows = []
    for count in args.device_counts:
        command = [sys.executable, __file__, "--worker-devices", str(count)]
        command += [
            "--device-seeds",
            str(args.device_seeds),
            "--device-envs",
            str(args.device_envs),
        ]
        command += ["--env-steps", str(args.env_steps)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        line = next((x for x in done.stdout.splitlines() if x.startswith("ROW: ")), None)
        if line is None:
            raise SystemExit(f"the {count}-device run failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(line[len("ROW: ") :]))
        _say(rows[-1])
    return rows


def sweep_part(args: argparse.Namespace) -> list[dict]:
    """Seconds per configuration of a sweep as one program against one-by-one runs."""
    from _scaling_sweep import sweep_rows

    rows = sweep_rows(args.sweep_configurations, steps=args.sweep_steps)
    for row in rows:
        print(
            f"{row['configurations']:>3} configurations: "
            f"{row['sweep_s_per_configuration']:.1f} s each as one program, "
            f"{row['one_by_one_s_per_configuration']:.1f} s each one by one",
            flush=True,
        )
    return rows


PARTS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {
    "batch": batch_part,
    "devices": devices_part,
    "sweep": sweep_part,
}
"""``--part`` choices besides ``all`` (every part, in this order)."""


def _say(row: dict) -> None:
    print(
        f"{row['seeds']:>6} seeds × {row['envs']:>6} envs on {row['devices']} device(s): "
        f"{row['env_steps_per_s']:>14,.0f} env-steps/s (compile {row['compile_s']:.1f} s)",
        flush=True,
    )


def _worker(args: argparse.Namespace) -> None:
    """``--worker-devices D``: the `devices_part` run with D devices (virtual on CPU)."""
    import jax

    # Virtual devices if JAX runs on the CPU (set before its backend starts; no effect on
    # GPUs, whose count is the machine's).
    jax.config.update("jax_num_cpu_devices", args.worker_devices)
    row = _loop_run(args.device_seeds, args.device_envs, args.env_steps, args.worker_devices)
    print("ROW: " + json.dumps(row))


def table(rows: list[dict]) -> str:
    lines = [
        "| seeds | envs | batch | devices | env-steps/s | steps per seed | compile s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seeds']} | {r['envs']} | {r['batch']:,} | {r['devices']} | "
            f"{r['env_steps_per_s']:,.0f} | {r['steps_per_seed']:,} | {r['compile_s']:.1f} |"
        )
    return "\n".join(lines)


def sweep_table(rows: list[dict]) -> str:
    from _scaling_sweep import markdown

    return markdown(rows)


def plot(parts: dict[str, list[dict]], path: Path, title: str) -> None:
    """One panel per part: env-steps/s against batch (log-log) and against devices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_of = {
        "batch": ("batch", "total batch (seeds × envs)"),
        "devices": ("devices", "devices"),
        "sweep": ("configurations", "configurations in the sweep"),
    }
    shown = [name for name in parts if name in axes_of and parts[name]]
    fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 4), squeeze=False)
    for ax, name in zip(axes[0], shown, strict=True):
        key, label = axes_of[name]
        rows = parts[name]
        if name == "sweep":
            for column, legend in (
                ("sweep_s_per_configuration", "one program"),
                ("one_by_one_s_per_configuration", "one by one"),
            ):
                ax.plot([r[key] for r in rows], [r[column] for r in rows], "o-", label=legend)
            ax.set_xscale("log", base=2)
            ax.set_xlabel(label)
            ax.set_ylabel("seconds per configuration (compile included)")
            ax.legend()
            ax.grid(True, which="both", alpha=0.3)
            continue
        ax.plot([r[key] for r in rows], [r["env_steps_per_s"] for r in rows], "o-")
        ax.set_xscale("log", base=4 if name == "batch" else 2)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("env-steps/s")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--max-batch", type=int, default=65_536, help="largest total batch")
    parser.add_argument("--max-seeds", type=int, default=64, help="seeds of the large batches")
    parser.add_argument(
        "--env-steps", type=int, default=400_000, help="env-steps of all seeds per chunk"
    )
    parser.add_argument("--device-counts", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--device-seeds", type=int, default=8)
    parser.add_argument("--device-envs", type=int, default=32)
    parser.add_argument("--sweep-configurations", nargs="+", type=int, default=[1, 4, 12])
    parser.add_argument(
        "--sweep-steps", type=int, default=20_000, help="steps per seed of each configuration"
    )
    parser.add_argument("--out", default=str(RESULTS), help="results folder, or - to only print")
    parser.add_argument("--worker-devices", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.worker_devices is not None:
        return _worker(args)
    import jax
    from _experiments import machine_info, write_report

    names = list(PARTS) if args.part == "all" else [args.part]
    parts = {name: PARTS[name](args) for name in names}
    machine = machine_info()
    machine["device"] = jax.devices()[0].device_kind
    command = "python benchmarks/scaling.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = "\n\n".join(
        f"**{name}**\n\n{sweep_table(rows) if name == 'sweep' else table(rows)}"
        for name, rows in parts.items()
    )
    print(text)
    record = {"benchmark": "scaling", "env": "CartPole-v1", "machine": machine, "parts": parts}
    print("JSON: " + json.dumps(record))
    if args.out != "-":
        out = Path(args.out)
        virtual = (
            " The devices of the `devices` part are virtual CPU devices that share this "
            "machine's cores, each running its share of the seeds on a thread of its own: up to "
            "the core count they can use cores that one device's small kernels leave idle, and "
            "beyond it they only add the cost of splitting."
            if machine["device"].lower() == "cpu"
            else ""
        )
        header = (
            f"`rtrrl.train` env-steps/s of CTRNN-32 with RFLO (default preset) on CartPole-v1, "
            f"on {machine['device']} ({machine['cpu_count']} CPU cores, JAX {machine['jax']}, "
            f"load average {machine['load_average']}).{virtual}\n\n"
            f"Command: `{command.strip()}`\n\n"
        )
        write_report(out, "scaling", header + text, record)
        plot(parts, out / "scaling.png", f"rtrrl.train, CartPole-v1, {machine['device']}")
    return record


if __name__ == "__main__":
    main()
