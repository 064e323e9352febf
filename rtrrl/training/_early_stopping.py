"""Recording each evaluation, and stopping seeds that no longer improve."""

import dataclasses
import itertools
import math
from typing import Any

import numpy as np

from ._records import ChunkPlan, LoopConfig, TrainProgress


def reactivate(
    book: TrainProgress, patience: int | None, target_return: float | None = None
) -> TrainProgress:
    """`book` with each seed's ``active`` flag recomputed under `patience` and `target_return`.

    A seed stops when it has gone `patience` evaluations without improving, or when its best
    return has reached `target_return`, so under unchanged settings this gives back the flags
    the loop set. Resuming with the result under a larger patience or target (or ``None``)
    lets stopped seeds go on from the state they stopped in; `train` itself keeps the flags it
    is given (a seed may also be stopped by hand).
    """
    active = [
        (patience is None or since < patience) and not reached(best, target_return)
        for since, best in zip(book.evals_since_best, book.best_eval_return, strict=True)
    ]
    return dataclasses.replace(book, active=active)


def reached(value: float, target_return: float | None) -> bool:
    """Whether an evaluation return `value` meets `target_return` (never when it is None)."""
    return target_return is not None and value >= target_return


def record_evaluation(
    book: TrainProgress,
    config: LoopConfig,
    plan: ChunkPlan,
    seeds: list[int],
    totals: Any,
    eval_return: np.ndarray,
    seconds: float,
    extra: dict[str, Any],
) -> None:
    """Append one row per active seed to ``book.rows`` (evaluation return, training return,
    RMS TD error, throughput and any diagnostics) and update each seed's best and its early
    stopping: a seed stops after ``patience`` evaluations without a new best of the mean of
    its last ``patience_window`` evaluations, or at an evaluation that reaches
    ``target_return``."""
    extra = {name: np.asarray(values) for name, values in extra.items()}
    episodes = np.asarray(totals.episodes)
    return_sum = np.asarray(totals.return_sum)
    td = np.sqrt(np.asarray(totals.td_error_sq) / plan.steps_per_chunk)
    for i, seed in enumerate(seeds):
        if not book.active[i]:
            continue
        value = float(eval_return[i])
        book.rows.append(
            {
                "step": book.steps_done,
                "seed": seed,
                "eval_return": value,
                "train_return": float(return_sum[i] / episodes[i]) if episodes[i] else math.nan,
                "td_error": float(td[i]),
                "steps_per_second": plan.env_steps_per_chunk * config.num_seeds / seconds,
            }
            | {name: float(values[i]) for name, values in extra.items()}
        )
        if value > book.best_eval_return[i]:
            book.best_eval_return[i], book.best_step[i] = value, book.steps_done
        # Early stopping compares the mean of the seed's last `patience_window` evaluations.
        mine = (row["eval_return"] for row in reversed(book.rows) if row["seed"] == seed)
        smoothed = float(np.mean(list(itertools.islice(mine, config.patience_window))))
        if smoothed > book.best_smoothed[i]:
            book.best_smoothed[i] = smoothed
            book.evals_since_best[i] = 0
        else:
            book.evals_since_best[i] += 1
            if config.patience is not None and book.evals_since_best[i] >= config.patience:
                book.active[i] = False
        if reached(value, config.target_return):
            book.active[i] = False
