"""A downstream user's program, type-checked by `make lint` (pyright) against rtrrl's API.

It uses the public names the way the README does and states, with `typing.assert_type`, the
types a checker must infer for the results: if an annotation of rtrrl loses one, pyright
fails here. Run it (``python examples/downstream_typing.py``) for a small end-to-end check.
"""

from typing import assert_type

import jax
import jax.numpy as jnp
import optax

import rtrrl
import rtrrl.testing
from rtrrl.cells import CTRNN
from rtrrl.estimators import RFLO, RTRL
from rtrrl.online import FitResult, LinearReadout, delayed_copy
from rtrrl.testing import EstimatorReport


def fit_delayed_copy() -> FitResult[CTRNN]:
    """`fit_sequence` keeps the cell's type: the trained cell is a CTRNN again."""
    inputs, targets = delayed_copy(jax.random.key(0), 200, 2)
    cell = CTRNN(1, 8, key=jax.random.key(1))
    fit = rtrrl.fit_sequence(cell, RFLO(), optax.adam(1e-2), inputs, targets)
    assert_type(fit, FitResult[CTRNN])
    assert_type(fit.cell, CTRNN)
    assert_type(fit.readout, LinearReadout)
    tau: jax.Array = fit.cell.tau  # a CTRNN's own field, visible to the checker
    del tau
    return fit


def check_rtrl() -> EstimatorReport:
    """`rtrrl.testing` on a built-in estimator (exact RTRL equals BPTT)."""
    cell = CTRNN(2, 4, key=jax.random.key(0))
    return rtrrl.testing.check_estimator(RTRL(), cell, key=jax.random.key(1))


def train_cartpole(total_steps: int = 2_000) -> rtrrl.TrainResult:
    """`rtrrl.train` with a function ``key -> learner`` and a `LoopConfig`."""
    env = rtrrl.envs.make("CartPole-vel")
    n_in = rtrrl.envs.meta_rl_input_size(env)

    def make_agent(key: jax.Array) -> rtrrl.RTRRL:
        return rtrrl.RTRRL(cell=CTRNN(n_in, 8, key=key), estimator=RFLO())

    config = rtrrl.LoopConfig(total_steps=total_steps, num_seeds=1, eval_every=1_000)
    result = rtrrl.train(make_agent, env, config)
    assert_type(result, rtrrl.TrainResult)
    return result


def main() -> None:
    fit = fit_delayed_copy()
    print("fit_sequence: last loss", float(jnp.mean(fit.losses[-20:])))
    print("check_estimator:", check_rtrl())
    print("train: best return", train_cartpole().best_eval_return)


if __name__ == "__main__":
    main()
