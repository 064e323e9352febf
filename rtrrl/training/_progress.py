"""What a training run shows while it runs: a tqdm bar on a terminal, one line per
evaluation anywhere else.

Written to a log file (``nohup``, SLURM, ``> run.log 2>&1``, CI), tqdm's redraws become one
endless line of carriage returns that neither ``tail`` nor an editor shows usefully. When the
stream is not a terminal (and not a notebook, where tqdm draws a widget), every evaluation
prints one plain line instead, with the same numbers as the bar.
"""

import sys
from typing import Any

import numpy as np
from tqdm.auto import tqdm

# `tqdm.auto` has already picked the plain bar or the notebook widget; this re-reads its pick.
from tqdm.autonotebook import tqdm as _chosen_tqdm
from tqdm.std import tqdm as _plain_tqdm

from ._records import ChunkPlan, LoopConfig, TrainProgress

_NOTEBOOK = _chosen_tqdm is not _plain_tqdm


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Progress of one `train` call over the run's environment steps per seed."""

    def __init__(self, plan: ChunkPlan, book: TrainProgress, *, enabled: bool, stream: Any = None):
        # `stream`: any object with ``write`` (a file, `io.StringIO`, pytest's capture, a
        # notebook's stream), not only `typing.TextIO`; default: ``sys.stderr`` now.
        self._stream = sys.stderr if stream is None else stream
        self._total = plan.total_env_steps
        self._lines = enabled and not _NOTEBOOK and not _is_terminal(self._stream)
        self._bar = None
        if enabled and not self._lines:
            self._bar = tqdm(
                total=plan.total_env_steps,
                initial=book.steps_done,
                unit="step",
                unit_scale=True,
                dynamic_ncols=True,
                file=self._stream,
            )

    def show(
        self, plan: ChunkPlan, config: LoopConfig, book: TrainProgress, eval_return, seconds
    ) -> None:
        """One chunk done: latest mean return, median best, env-steps per second."""
        numbers = {
            "eval": f"{np.mean(eval_return):.3g}",
            "best": f"{np.median(book.best_eval_return):.3g}",
            "sps": f"{plan.env_steps_per_chunk * config.num_seeds / seconds:.3g}",
        }
        if self._bar is not None:
            self._bar.update(plan.env_steps_per_chunk)
            self._bar.set_postfix(numbers)
        elif self._lines:
            done = book.steps_done
            values = " ".join(f"{name}={value}" for name, value in numbers.items())
            print(
                f"step {done:,}/{self._total:,} ({100 * done / self._total:.0f}%) {values}",
                file=self._stream,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
