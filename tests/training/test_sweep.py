"""`rtrrl.training.train_swept`: configurations × seeds as one compiled program, each
configuration's curve that of the same configuration trained alone."""

import logging

import jax
import numpy as np
import pytest

from rtrrl.app.config import TrainConfig, build_algorithm, build_env
from rtrrl.training import train, train_swept
from rtrrl.training._sweep import SweptState
from tests._training_helpers import TINY, RewardTurnsNaN, leaves

# Compares two different programs (batched and unbatched, traced and constant, ...) bit for bit
# or to 1e-12: XLA's unoptimised float64 kernels, which the rest of the suite compiles with,
# differ between such programs by ~1e-8 (tests/_fast_compile.py).
pytestmark = pytest.mark.optimized

STEPS = 1500  # three evaluations of 500 steps
BASE = {**TINY, "steps": STEPS, "seeds": 2, "lr_decay": "none"}
GRID = [
    {"lr_cell": lr, "lambda_cell": lam} for lr in (1e-3, 3e-3) for lam in (0.9, 0.99)
]  # a 2 × 2 grid


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def swept():
    """The 2 × 2 grid with 2 seeds, and the messages of JAX's compile log meanwhile."""
    config = TrainConfig(**BASE)
    env = build_env(config)
    log = _Messages()
    logging.getLogger("jax").addHandler(log)
    try:
        with jax.log_compiles():
            result = train_swept(
                build_algorithm(config, env), env, config.loop(), GRID, progress=False
            )
    finally:
        logging.getLogger("jax").removeHandler(log)
    return result, log.messages


def test_a_2x2_grid_of_two_seeds_is_one_compiled_program(swept):
    swept, messages = swept
    assert swept.num_compilations == 1
    # XLA compiled the chunk program once, for all four configurations and both seeds.
    assert sum(m.startswith("Compiling jit(chunk_fn)") for m in messages) == 1
    assert isinstance(swept.runs.final_state, SweptState)
    assert swept.runs.eval_returns.shape == (STEPS // 500, len(GRID) * 2)
    # Each run carries its own values: configuration-major, seeds inside.
    values = np.asarray(swept.runs.final_state.values["lr_cell"])
    np.testing.assert_array_equal(values, np.repeat([1e-3, 1e-3, 3e-3, 3e-3], 2))
    for result in swept.results:
        assert result.seeds == [0, 1]
        assert result.eval_returns.shape == (STEPS // 500, 2)


@pytest.mark.parametrize("k", [3])
def test_each_configuration_equals_its_run_alone(swept, k):
    """Configuration `k` of the sweep against ``rtrrl.train`` of it with constants.

    Traced hyperparameters let XLA round a few products differently from the constant-folded
    ones (e.g. ``γ·λ`` is one float64 product of Python floats in a plain run, two traced
    factors in the sweep). Measured here (float64, 1500 steps): the evaluation returns are
    equal, 16 of the 33 float leaves of the final state are equal, and the others differ by
    at most 1.8e-15 (a few ulps), so the test asserts equal curves and states to 1e-12.
    """
    config = TrainConfig(**BASE, **GRID[k])
    env = build_env(config)
    alone = train(build_algorithm(config, env), env, config.loop(), progress=False)
    mine = swept[0].results[k]
    np.testing.assert_array_equal(mine.steps, alone.steps)
    np.testing.assert_array_equal(mine.eval_returns, alone.eval_returns)
    np.testing.assert_array_equal(mine.best_eval_return, alone.best_eval_return)
    for a, b in zip(leaves(mine.final_state), leaves(alone.final_state), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(a, b)


def test_values_are_checked_like_the_learners_own():
    config = TrainConfig(**BASE)
    env = build_env(config)
    algorithm = build_algorithm(config, env)
    with pytest.raises(ValueError, match="lambda_cell"):
        train_swept(algorithm, env, config.loop(), [{"lambda_cell": 1.5}], progress=False)
    with pytest.raises(ValueError, match="not a float hyperparameter"):
        train_swept(algorithm, env, config.loop(), [{"cell": 1.0}], progress=False)
    with pytest.raises(ValueError, match="same hyperparameters"):
        train_swept(
            algorithm, env, config.loop(), [{"gamma": 0.9}, {"lr_cell": 0.1}], progress=False
        )


def test_a_run_that_diverges_stops_instead_of_ending_the_sweep():
    """`RewardTurnsNaN` pays NaN from step 1750 (the fourth chunk): under `train` that is a
    `NonFiniteError` (tests/training/test_training.py); in a sweep each run stops there with
    the finite state and the three evaluations of the chunks before."""
    env = RewardTurnsNaN()
    config = TrainConfig(**BASE | {"steps": 8 * 500})
    algorithm = build_algorithm(config, env)
    grid = [{"lr_cell": 1e-3}, {"lr_cell": 3e-3}]
    swept = train_swept(algorithm, env, config.loop(), grid, progress=False)
    assert swept.runs.stopped_early.all() and swept.runs.total_steps == 4 * 500
    for result in swept.results:
        assert result.steps.tolist() == [500, 1000, 1500]
        assert np.isfinite(result.eval_returns).all()
        assert all(np.isfinite(leaf).all() for leaf in leaves(result.final_state))
