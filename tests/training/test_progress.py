"""Progress while training: tqdm's bar on a terminal; one plain line per evaluation on any
other stream (a log file gets no carriage returns)."""

import dataclasses
import io

import numpy as np

from rtrrl.training import LoopConfig
from rtrrl.training._progress import Progress
from rtrrl.training._records import ChunkPlan, fresh_progress

PLAN = ChunkPlan(steps_per_chunk=500, env_steps_per_chunk=500, num_chunks=3)
CONFIG = LoopConfig(total_steps=1500, num_seeds=2, eval_every=500)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _three_evaluations(stream, *, enabled=True) -> str:
    book = fresh_progress(2)
    progress = Progress(PLAN, book, enabled=enabled, stream=stream)
    for chunk in range(1, 4):
        book = dataclasses.replace(
            book, chunk=chunk, steps_done=500 * chunk, best_eval_return=[10.0 * chunk, 20.0]
        )
        progress.show(PLAN, CONFIG, book, np.array([10.0 * chunk, 5.0]), 0.25)
    progress.close()
    return stream.getvalue()


def test_a_stream_that_is_not_a_terminal_gets_one_line_per_evaluation():
    text = _three_evaluations(io.StringIO())
    assert "\r" not in text
    assert text.splitlines() == [
        "step 500/1,500 (33%) eval=7.5 best=15 sps=4e+03",
        "step 1,000/1,500 (67%) eval=12.5 best=20 sps=4e+03",
        "step 1,500/1,500 (100%) eval=17.5 best=25 sps=4e+03",
    ]


def test_a_terminal_gets_the_progress_bar():
    text = _three_evaluations(Terminal())
    assert "\r" in text and "eval=17.5" in text and "1.50k/1.50k" in text


def test_no_progress_writes_nothing():
    assert _three_evaluations(io.StringIO(), enabled=False) == ""
    assert _three_evaluations(Terminal(), enabled=False) == ""
