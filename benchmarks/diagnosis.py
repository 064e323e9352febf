"""Why the paper's learner fails on Acrobot: one change at a time, with the learner's
diagnostics (``rtrrl train --diagnostics``) recorded at every evaluation.

Every variant is the paper's learner (``--preset paper``: RFLO CTRNN-32, Table 1
hyperparameters, rewards scaled by the std of the return, raw observations) with one thing
changed, on Acrobot-v1, 3 seeds vmapped, 200k steps per seed, an evaluation (16 episodes)
and a diagnostics record every 5k steps, no early stopping. The last rows add the default
preset's stabilisers one at a time, then all of them (the default preset).

Then, for the paper's learner and the default preset after 200k steps, one evaluation episode
per seed is replayed step by step to show where the cell's state sits: the fraction of
saturated neurons (``|h_i| > 0.99``), the fraction of those on the side that lowers the value
(``sign h_i = -sign w_i`` for the critic's weight ``w``), and the critic's value split into
``wᵀh`` and its bias ``b``.

Usage::

    python benchmarks/diagnosis.py            # about 10 minutes on one core

Writes ``benchmarks/results/diagnosis.{json,md}`` (re-running skips finished variants).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _experiments import (
    RESULTS,
    ResultStore,
    duration,
    fmt,
    machine_info,
    machine_line,
    markdown_table,
    spread,
)

from rtrrl import envs, prng
from rtrrl.app.config import TrainConfig, build_algorithm, build_env
from rtrrl.app.runs import write_atomic
from rtrrl.training import train

STEPS = 200_000
SEEDS = 3
EVAL_EVERY = 5_000

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "paper": ("the paper's learner (reference)", {}),
    "frozen": ("cell frozen (echo state)", dict(freeze_cell=True)),
    "rtrl": ("exact RTRL instead of RFLO", dict(estimator="rtrl")),
    "no-critic-error": ("critic's error kept out of the cell (η_C = 0)", dict(eta_critic=0.0)),
    "no-actor-error": ("actor's error kept out of the cell (η_A = 0)", dict(eta_actor=0.0)),
    "lr-cell-1e-4": ("cell step size 1e-4", dict(lr_cell=1e-4)),
    "lr-critic-1e-2": ("critic step size 1e-2", dict(lr_critic=1e-2)),
    "no-clip": ("no gradient clipping", dict(max_grad_norm=0.0)),
    "raw-rewards": ("no reward scaling", dict(scale_rewards=False)),
    "no-entropy": ("no entropy bonus (η_H = 0)", dict(eta_entropy=0.0)),
    "rms": ("+ rewards / RMS of the return", dict(reward_scale="rms")),
    "obs-norm": ("+ observation normalisation", dict(normalize_observations=True)),
    "default": ("default preset (all stabilisers)", dict(preset="default")),
}

REPLAY_STEPS = 500
"""Steps of the replayed episode (Acrobot's limit)."""

COLUMNS = ("saturated", "value", "entropy", "norm_cell.weight", "step_cell", "step_critic")


def config(variant: str) -> TrainConfig:
    return TrainConfig(
        env="Acrobot-v1",
        steps=STEPS,
        seeds=SEEDS,
        eval_every=EVAL_EVERY,
        eval_envs=16,
        eval_steps=500,
        patience=None,
        diagnostics=True,
        **{"preset": "paper", **VARIANTS[variant][1]},
    )


def run_variant(cfg: TrainConfig) -> dict[str, Any]:
    env = build_env(cfg)
    result = train(build_algorithm(cfg, env), env, cfg.loop(), progress=False)
    rows = result.progress.rows
    steps = sorted({row["step"] for row in rows})
    curves = {
        name: [[row[name] for row in rows if row["step"] == step] for step in steps]
        for name in ("eval_return", *COLUMNS)
    }
    return {
        "config": cfg.to_json(),
        "steps": steps,
        "curves": curves,
        "best_eval_return": result.best_eval_return.tolist(),
        "final_eval_return": result.final_eval_return.tolist(),
        "wall_seconds": result.run_seconds + result.compile_seconds,
        "replay": replay(cfg, env, result.final_state),
    }


def replay(cfg: TrainConfig, env, states) -> dict[str, list[float]]:
    """One sampled evaluation episode per seed with the final parameters, step by step:
    the mean over the episode of the saturated fraction, of the fraction of saturated
    neurons on the value-lowering side, of ``wᵀh`` and the critic's bias."""
    learner = build_algorithm(cfg, env)(prng.key(cfg.seed))
    out: dict[str, list[float]] = {"saturated": [], "value_side": [], "w_h": [], "bias": []}
    for seed in range(cfg.seeds):
        state = jax.tree.map(lambda x, i=seed: x[i] if eqx.is_array(x) else x, states)
        params = state.params
        scale = 1.0
        if learner.reward_scale is not None:
            scale = float(learner.reward_scale.divisor(state.return_stats))
        key = jax.random.key(1000 + seed)
        obs, env_state = env.reset(key)
        hidden, action, reward, start = (
            params.cell.init_hidden(),
            env.action_space.zero(),
            0.0,
            True,
        )
        sat, side, w_h = [], [], []
        weight = np.asarray(params.critic.weight)
        for _ in range(REPLAY_STEPS):
            seen = obs
            if learner.observation_norm is not None:
                seen = learner.observation_norm(state.observation_stats, obs)
            x = envs.meta_rl_input(
                seen, action, reward / scale, env.action_space, episode_start=start
            )
            hidden = params.cell(hidden, x)
            h = np.asarray(params.cell.output(hidden))
            saturated = np.abs(h) > 0.99
            sat.append(saturated.mean())
            side.append(
                (saturated & (np.sign(h) == -np.sign(weight))).sum() / max(1, saturated.sum())
            )
            w_h.append(float(weight @ h))
            key, act_key, env_key = jax.random.split(key, 3)
            action = params.actor.sample(jnp.asarray(h), key=act_key)
            obs, env_state, r, done, _ = env.step(env_key, env_state, action)
            reward, start = float(r), False
            if bool(done):
                break
        out["saturated"].append(float(np.mean(sat)))
        out["value_side"].append(float(np.mean(side)))
        out["w_h"].append(float(np.mean(w_h)))
        out["bias"].append(float(params.critic.bias))
    return out


def _at(record: dict[str, Any], name: str, step: int) -> float:
    """The median over seeds of `name` at the evaluation nearest to `step`."""
    index = int(np.argmin(np.abs(np.asarray(record["steps"]) - step)))
    return float(np.median(record["curves"][name][index]))


def render_markdown(store: ResultStore) -> str:
    cells, meta = store.cells, store.meta
    total = sum(c.get("wall_seconds", 0.0) for c in cells.values())
    lines = [
        "# Diagnosis: the paper's learner on Acrobot-v1, one change at a time",
        "",
        "Generated by `benchmarks/diagnosis.py` (do not edit; the reading of these numbers is in "
        "`learning_notes.md`). RFLO CTRNN-32, the paper's Table 1 hyperparameters and "
        f"`--preset paper` unless the row says otherwise; {SEEDS} seeds, {STEPS // 1000}k "
        f"steps per seed, an evaluation (16 episodes) and `--diagnostics` every "
        f"{EVAL_EVERY // 1000}k steps. Medians over seeds.",
        "",
        f"- Machine: {machine_line(meta.get('machine', {}))}.",
        f"- Wall time: {duration(total)} ({len(cells)} variants).",
        "",
        "*saturated*: fraction of neurons with |h| > 0.99 over a probe rollout of the policy; "
        "*value*: the critic's mean value there (in scaled reward units); *|W|*: norm of the "
        "CTRNN's weight matrix (about 8 at the start); *cell step*: Adam's mean absolute "
        "change of a cell parameter per step.",
        "",
    ]
    header = [
        "variant",
        "best",
        "final",
        "saturated at 10k",
        "saturated at end",
        "value at end",
        "entropy at end",
        "|W| at 10k / end",
        "cell step at 5k",
    ]
    rows = []
    for v, (label, _) in VARIANTS.items():
        record = cells.get(v)
        if record is None:
            continue
        end = record["steps"][-1]
        rows.append(
            [
                label,
                fmt(spread(record["best_eval_return"])[0]),
                fmt(spread(record["final_eval_return"])[0]),
                f"{_at(record, 'saturated', 10_000):.2f}",
                f"{_at(record, 'saturated', end):.2f}",
                fmt(_at(record, "value", end)),
                fmt(_at(record, "entropy", end)),
                f"{fmt(_at(record, 'norm_cell.weight', 10_000))} / "
                f"{fmt(_at(record, 'norm_cell.weight', end))}",
                f"{_at(record, 'step_cell', EVAL_EVERY):.1e}" if v != "frozen" else "—",
            ]
        )
    lines += [markdown_table(header, rows), ""]
    lines += [
        "## Where the cell's state sits after training",
        "",
        "One sampled evaluation episode per seed with the final parameters, means over its "
        "steps: the saturated fraction, the fraction of saturated neurons whose sign lowers "
        "the value (`sign h_i = -sign w_i`), and the critic's value `wᵀh + b` split into its "
        "two parts (median over seeds).",
        "",
    ]
    header = ["variant", "saturated", "on the value-lowering side", "wᵀh", "bias b"]
    rows = []
    for v, (label, _) in VARIANTS.items():
        record = cells.get(v)
        if record is None or "replay" not in record:
            continue
        r = record["replay"]
        rows.append(
            [
                label,
                f"{np.median(r['saturated']):.2f}",
                f"{np.median(r['value_side']):.2f}",
                fmt(float(np.median(r["w_h"]))),
                fmt(float(np.median(r["bias"]))),
            ]
        )
    lines += [markdown_table(header, rows), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=RESULTS / "diagnosis")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    store = ResultStore(args.out.with_suffix(".json"))
    if not args.report_only:
        store.meta["machine"] = machine_info()
        store.meta["command"] = "python benchmarks/diagnosis.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        for v in [v.strip() for v in args.variants.split(",")]:
            if v not in VARIANTS:
                raise SystemExit(f"Unknown variant {v!r}; choose from {', '.join(VARIANTS)}.")
            cfg = config(v)
            if not args.force and store.done(v, cfg):
                print(f"{v}: done already, skipped", flush=True)
                continue
            record = run_variant(cfg)
            store.put(v, record)
            write_atomic(args.out.with_suffix(".md"), render_markdown(store))
            print(
                f"{v}: best {fmt(spread(record['best_eval_return'])[0])}, final "
                f"{fmt(spread(record['final_eval_return'])[0])}, "
                f"saturated {fmt(_at(record, 'saturated', record['steps'][-1]))}",
                flush=True,
            )
    write_atomic(args.out.with_suffix(".md"), render_markdown(store))


if __name__ == "__main__":
    main()
