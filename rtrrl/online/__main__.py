"""``python -m rtrrl.online`` trains a CTRNN with each estimator on a delayed-copy task and
prints how the loss falls.
"""

import time

import jax
import optax

from ..cells import CTRNN
from ..estimators import RFLO, RTRL, LocalMSE, TruncatedBPTT
from ._fit import delayed_copy, fit_sequence


def _demo() -> None:
    length, delay, hidden = 20_000, 3, 16
    inputs, targets = delayed_copy(jax.random.key(0), length, delay)
    cell = CTRNN(1, hidden, key=jax.random.key(1), tau_range=(1.5, 3.0))
    optimizer = optax.adam(3e-3)
    estimators = [RTRL(), RFLO(), LocalMSE(), TruncatedBPTT(2 * delay)]
    tenth = length // 10
    print(f"delayed copy (delay {delay}), CTRNN with {hidden} neurons, {length} online steps;")
    print("mean squared error of the online predictions (1.0 = no memory; time incl. compile)")
    print(f"{'estimator':<28}{'loss first 10%':>16}{'loss last 10%':>16}{'seconds':>10}")
    for estimator in estimators:
        start = time.perf_counter()
        result = fit_sequence(cell, estimator, optimizer, inputs, targets)
        losses = jax.block_until_ready(result.losses)
        seconds = time.perf_counter() - start
        first, last = float(losses[:tenth].mean()), float(losses[-tenth:].mean())
        print(f"{repr(estimator):<28}{first:>16.4f}{last:>16.4f}{seconds:>10.1f}")


if __name__ == "__main__":
    _demo()
