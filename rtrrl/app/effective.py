"""The settings a run actually uses, as ``config.json`` records them under ``"effective"``.

The saved configuration keeps the flags as given: an unset flag is ``null`` there
(``max_grad_norm``: the learner's default; ``eval_steps``: the environment's episode limit;
``cpu_threads``: automatic). That saved configuration is what ``--resume`` and ``rtrrl eval``
read back and what the checkpoint's fingerprint is made of, so it must not change. The
resolved values, which a reader of the folder wants to see, go into a separate object that
`rtrrl.app.runs.load_run_config` ignores.
"""

import dataclasses
from typing import Any

from ..envs import AbstractEnvironment
from ..training import evaluation_steps
from .config import TrainConfig

EFFECTIVE_KEY = "effective"


def effective_settings(
    config: TrainConfig, env: AbstractEnvironment, cpu_threads: str
) -> dict[str, Any]:
    """The values in use: the gradient clip in flag terms (0: off), the evaluation length,
    the XLA:CPU threads (as `rtrrl.app.cpu_threads.configure_cpu_threads` reports them), and
    every part the run builds (`TrainConfig.parts`: environment, cell, estimator, learner and
    its full settings, loop)."""
    parts = config.parts()
    clip = parts.learner.max_grad_norm
    return _jsonable(
        {
            "max_grad_norm": 0.0 if clip is None else clip,
            "eval_steps": evaluation_steps(parts.loop, env),
            "cpu_threads": cpu_threads,
            "env": {"id": parts.env.id, "options": dict(parts.env.options)},
            "cell": dataclasses.asdict(parts.cell),
            "estimator": dataclasses.asdict(parts.estimator),
            "learner": {"algo": config.algo, **dataclasses.asdict(parts.learner)},
            "loop": dataclasses.asdict(parts.loop),
        }
    )


def _jsonable(value: Any) -> Any:
    """Lists for tuples, text for anything JSON has no form of (an env option's object)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
