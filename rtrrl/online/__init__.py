"""Supervised online learning with any cell and gradient estimator (no RL involved).

`fit_sequence` learns to predict a target sequence from an input sequence one step at a time,
the way RTRRL learns: one estimator step, one prediction, one update, under one `lax.scan`.
``python -m rtrrl.online`` trains a CTRNN with each estimator on a delayed-copy task and
prints how the loss falls.
"""

from ._fit import (
    FitResult as FitResult,
    LinearReadout as LinearReadout,
    delayed_copy as delayed_copy,
    fit_sequence as fit_sequence,
)
