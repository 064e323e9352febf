"""The compiled training loop (`rtrrl.training.train`): compilation count, seeds, early
stopping, the result it returns, and divergence."""

import copy
import dataclasses
import math
import re
from types import SimpleNamespace

import jax
import numpy as np
import pytest
from _training_helpers import (
    EVAL_EVERY,
    NAN_AFTER,
    RewardTurnsNaN,
    assert_trees_equal,
    leaves,
    persistent_compilation_cache,
    tiny_config,
)

from rtrrl.app.config import build_algorithm, build_env
from rtrrl.training import (
    ChunkPlan,
    LoopConfig,
    NonFiniteError,
    TrainProgress,
    _early_stopping,
    reactivate,
    record_evaluation,
    train,
)

# Compares two different programs (batched and unbatched, traced and constant, ...) bit for bit
# or to 1e-12: XLA's unoptimised float64 kernels, which the rest of the suite compiles with,
# differ between such programs by ~1e-8 (tests/_fast_compile.py).
pytestmark = pytest.mark.optimized

STEPS = 4 * EVAL_EVERY


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(tmp_path_factory):
    with persistent_compilation_cache(tmp_path_factory.getbasetemp() / "jax-compilation-cache"):
        yield


def _run(config, env=None, **kwargs):
    env = build_env(config) if env is None else env
    return train(build_algorithm(config, env), env, config.loop(), progress=False, **kwargs)


@pytest.fixture(scope="module")
def three_seeds():
    """A 3-seed run of 4 chunks, with a snapshot ``(states, progress)`` after every chunk."""
    config = tiny_config(seeds=3, seed=0, steps=STEPS, patience=None)
    snapshots = []

    def on_chunk(states, progress):
        snapshots.append((states, copy.deepcopy(progress)))

    result = _run(config, on_chunk=on_chunk)
    return config, result, snapshots


def _rows_without_timing(progress):
    return [{k: v for k, v in row.items() if k != "steps_per_second"} for row in progress.rows]


def test_chunk_program_compiles_once_over_all_chunks(three_seeds):
    """Four chunks run one compiled program: the chunk function is traced exactly once."""
    _, result, snapshots = three_seeds
    assert len(snapshots) == 4
    assert result.num_compilations == 1


def test_resume_compiles_once_and_replays_the_remaining_chunks_exactly(three_seeds):
    """A resume builds a new chunk function, compiled once, and continues bit for bit."""
    config, result, snapshots = three_seeds
    states, progress = snapshots[1]  # after 2 of the 4 chunks
    resumed = _run(config, resume=(states, copy.deepcopy(progress)))
    assert resumed.num_compilations == 1
    assert resumed.total_steps == STEPS
    assert_trees_equal(resumed.final_state, result.final_state)
    assert _rows_without_timing(resumed.progress) == _rows_without_timing(result.progress)
    np.testing.assert_array_equal(resumed.eval_returns, result.eval_returns)


def test_seed_of_multi_seed_run_matches_single_seed_run(three_seeds):
    """Seed 2 of ``num_seeds=3, seed=0`` is the run ``seed=2``: keys are ``key(seed + i)``.

    Episode returns are sums of whole rewards of identical action sequences, so they agree
    exactly. Parameters and TD errors agree to rounding only: a vmap over 3 seeds instead of
    1 lets XLA vectorise and sum in another order (differences of ~1e-16 after 2000 steps).
    """
    config, result, _ = three_seeds
    single = _run(tiny_config(seeds=1, seed=2, steps=STEPS, patience=None))
    assert result.seeds == [0, 1, 2] and single.seeds == [2]
    np.testing.assert_array_equal(result.steps, single.steps)
    np.testing.assert_array_equal(result.eval_returns[:, 2], single.eval_returns[:, 0])
    np.testing.assert_array_equal(result.train_returns[:, 2], single.train_returns[:, 0])
    np.testing.assert_allclose(result.td_errors[:, 2], single.td_errors[:, 0], rtol=1e-9)
    for many, one in zip(leaves(result.final_state), leaves(single.final_state), strict=True):
        np.testing.assert_allclose(many[2], one[0], rtol=1e-9, atol=1e-12)
    # ...and the seeds of one run really differ from each other.
    params = leaves(result.final_state.params)
    assert not all(np.allclose(p[1], p[2]) for p in params)


def test_result_fields_hold_curves_best_values_and_throughput(three_seeds):
    """`TrainResult`: curves (evals, seeds), best per seed from the curve, throughput > 0."""
    config, result, _ = three_seeds
    np.testing.assert_array_equal(result.steps, [500, 1000, 1500, 2000])
    for curve in (result.eval_returns, result.train_returns, result.td_errors):
        assert curve.shape == (4, 3)
    assert np.all(np.isfinite(result.eval_returns)) and np.all(result.td_errors > 0)
    np.testing.assert_array_equal(result.best_eval_return, result.eval_returns.max(axis=0))
    best_index = result.eval_returns.argmax(axis=0)  # the first evaluation reaching the best
    np.testing.assert_array_equal(result.best_step, result.steps[best_index])
    np.testing.assert_array_equal(result.final_eval_return, result.eval_returns[-1])
    assert not result.stopped_early.any()
    assert result.total_steps == STEPS
    assert math.isfinite(result.env_steps_per_second) and result.env_steps_per_second > 0
    assert result.run_seconds > 0 and result.compile_seconds > 0
    assert len(result.progress.rows) == 4 * 3
    assert all(leaf.shape[0] == 3 for leaf in leaves(result.final_state))


def test_stopped_seed_keeps_its_state_while_the_others_train_on(three_seeds):
    """A seed marked inactive is frozen (state unchanged, no more rows); the other seeds of
    the same compiled program continue exactly as in the uninterrupted run."""
    config, result, snapshots = three_seeds
    states, progress = snapshots[1]
    progress = copy.deepcopy(progress)
    progress.active[1] = False
    partial = _run(config, resume=(states, progress))
    np.testing.assert_array_equal(partial.stopped_early, [False, True, False])
    for now, before, full in zip(
        leaves(partial.final_state), leaves(states), leaves(result.final_state), strict=True
    ):
        np.testing.assert_array_equal(now[1], before[1])
        np.testing.assert_array_equal(now[[0, 2]], full[[0, 2]])
    assert max(r["step"] for r in partial.progress.rows if r["seed"] == 1) == 2 * EVAL_EVERY
    assert max(r["step"] for r in partial.progress.rows if r["seed"] == 0) == STEPS


def test_patience_stops_a_seed_that_no_longer_improves():
    """With a constant evaluation return (50 per 50-step evaluation), patience 2 stops the
    seed after the third evaluation and the loop ends there, before the requested steps."""
    env = RewardTurnsNaN()
    config = tiny_config(steps=10 * EVAL_EVERY, patience=2)
    result = _run(config, env)
    np.testing.assert_array_equal(result.steps, [500, 1000, 1500])
    np.testing.assert_array_equal(result.eval_returns[:, 0], [50.0, 50.0, 50.0])
    assert result.stopped_early.tolist() == [True]
    assert result.best_step.tolist() == [500] and result.best_eval_return.tolist() == [50.0]
    assert result.total_steps == 3 * EVAL_EVERY < NAN_AFTER
    assert result.progress.evals_since_best == [2] and result.progress.active == [False]


@pytest.mark.parametrize(("window", "expected"), [(1, 4), (3, 6)])
def test_patience_compares_the_mean_of_the_last_window_evaluations(window, expected):
    """Returns 0, 10, 9, 9, 9, 9, 9, 9 with patience 3: each evaluation on its own has no new
    best after the second, so the seed stops after the fifth (index 4); the mean of the last
    three (0, 5, 6.3, 9.3, 9, 9, ...) has new bests up to the fourth and stops after the
    seventh (index 6). The reported best stays the best single evaluation."""
    config = LoopConfig(total_steps=8, patience=3, patience_window=window, eval_every=1)
    plan = ChunkPlan(1, 1, 8)
    book = TrainProgress(
        best_eval_return=[-math.inf],
        best_step=[0],
        evals_since_best=[0],
        active=[True],
        best_smoothed=[-math.inf],
    )
    totals = SimpleNamespace(
        episodes=np.array([1]), return_sum=np.array([0.0]), td_error_sq=np.array([0.0])
    )
    stopped_at = None
    for index, value in enumerate([0.0, 10.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]):
        book.steps_done += 1
        record_evaluation(book, config, plan, [0], totals, np.array([value]), 1.0, {})
        if not book.active[0] and stopped_at is None:
            stopped_at = index
    assert stopped_at == expected
    assert book.best_eval_return == [10.0] and book.best_step == [2]


def test_a_seed_stops_at_the_first_evaluation_that_reaches_the_target_return():
    """Returns 3, 7, 5, 9 with target 7: the seed stops at the second evaluation (a return
    equal to the target counts), its best is that one, and `reactivate` keeps it stopped
    under the same target but restarts it under a higher one or none."""
    config = LoopConfig(total_steps=4, eval_every=1, target_return=7.0)
    plan = ChunkPlan(1, 1, 4)
    book = TrainProgress(
        best_eval_return=[-math.inf, -math.inf],
        best_step=[0, 0],
        evals_since_best=[0, 0],
        active=[True, True],
        best_smoothed=[-math.inf, -math.inf],
    )
    totals = SimpleNamespace(
        episodes=np.array([1, 1]), return_sum=np.zeros(2), td_error_sq=np.zeros(2)
    )
    for values in [(3.0, 1.0), (7.0, 2.0), (5.0, 6.9), (9.0, 8.0)]:
        book.steps_done += 1
        record_evaluation(book, config, plan, [0, 1], totals, np.array(values), 1.0, {})
    assert book.active == [False, False]
    assert book.best_eval_return == [7.0, 8.0] and book.best_step == [2, 4]
    assert [r["step"] for r in book.rows if r["seed"] == 0] == [1, 2]
    assert reactivate(book, None, 7.0).active == [False, False]
    assert reactivate(book, None, 7.5).active == [True, False]
    assert reactivate(book, None, None).active == [True, True]


def test_the_loop_ends_when_every_seed_has_reached_the_target_return():
    """A constant return of 50 per evaluation and a target of 50: the only seed stops at the
    first evaluation, so the run ends there instead of running its budget."""
    result = _run(tiny_config(steps=10 * EVAL_EVERY, target_return=50.0), RewardTurnsNaN())
    np.testing.assert_array_equal(result.steps, [EVAL_EVERY])
    assert result.stopped_early.tolist() == [True] and result.total_steps == EVAL_EVERY
    with pytest.raises(ValueError, match="`target_return` must be a finite number"):
        LoopConfig(total_steps=1, target_return=math.nan)


def test_non_finite_training_raises_and_keeps_nothing_of_the_failing_chunk():
    """A NaN reward in the fourth chunk raises `NonFiniteError` naming the seed and the step;
    the last states handed out are those of the third chunk, all finite."""
    env = RewardTurnsNaN()
    config = tiny_config(steps=8 * EVAL_EVERY, patience=None)
    handed_out = []
    with pytest.raises(NonFiniteError) as error:
        _run(config, env, on_chunk=lambda s, p: handed_out.append((s, copy.deepcopy(p))))
    message = str(error.value)
    assert "non-finite" in message and "seed(s) [0]" in message
    assert f"step {4 * EVAL_EVERY}" in message
    assert [p.steps_done for _, p in handed_out] == [500, 1000, 1500]
    states, progress = handed_out[-1]
    assert progress.chunk == 3 and len(progress.rows) == 3
    assert all(np.all(np.isfinite(leaf)) for leaf in leaves(states.params))


def test_ctrl_c_during_bookkeeping_hands_out_the_last_completed_chunk(monkeypatch):
    """A KeyboardInterrupt raised while the second chunk's rows are being recorded: the
    interrupt handler gets the first chunk's states with the first chunk's bookkeeping
    (saving a mix of the two would break an exact resume)."""
    real_record = _early_stopping.record_evaluation
    calls = []

    def record_then_interrupt(book, *args):
        calls.append(book.chunk)
        real_record(book, *args)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(_early_stopping, "record_evaluation", record_then_interrupt)
    handed_out, interrupted = [], []
    with pytest.raises(KeyboardInterrupt):
        _run(
            tiny_config(steps=3 * EVAL_EVERY, patience=None),
            on_chunk=lambda s, p: handed_out.append((s, copy.deepcopy(p))),
            on_interrupt=lambda s, p: interrupted.append((s, p)),
        )
    assert len(handed_out) == 1 and len(interrupted) == 1
    states, progress = interrupted[0]
    assert (progress.chunk, progress.steps_done, len(progress.rows)) == (1, EVAL_EVERY, 1)
    assert progress.rows == handed_out[0][1].rows
    assert_trees_equal(states, handed_out[0][0])


def test_chunk_plan_rounds_chunks_to_whole_steps():
    """3 envs and an evaluation every 500 env steps: chunks of 166 steps = 498 env steps."""
    config = tiny_config(num_envs=3)
    env = build_env(config)
    algorithm = build_algorithm(config, env)(jax.random.key(0))
    plan = ChunkPlan.of(LoopConfig(total_steps=1000, num_envs=3, eval_every=500), algorithm)
    assert plan == ChunkPlan(steps_per_chunk=166, env_steps_per_chunk=498, num_chunks=3)
    assert plan.total_env_steps == 1494


def test_chunk_plan_does_not_depend_on_the_budget():
    """A budget below one evaluation period is one whole period (``run_training`` announces
    it): the chunk must stay the same when the run is resumed with a larger budget."""
    config = tiny_config(num_envs=3)
    algorithm = build_algorithm(config, build_env(config))(jax.random.key(0))
    short = ChunkPlan.of(LoopConfig(total_steps=300, num_envs=3, eval_every=500), algorithm)
    long = ChunkPlan.of(LoopConfig(total_steps=3000, num_envs=3, eval_every=500), algorithm)
    assert short == ChunkPlan(steps_per_chunk=166, env_steps_per_chunk=498, num_chunks=1)
    assert long.env_steps_per_chunk == short.env_steps_per_chunk
    assert short.total_env_steps == 498


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            dict(eval_every=2 * EVAL_EVERY),
            "the run did 1 chunks and 500 steps, but this LoopConfig",
        ),
        (dict(num_envs=2), "with num_seeds=1 and num_envs=2 makes"),
        (dict(num_seeds=2), "with num_seeds=2 and num_envs=1 makes"),
    ],
)
def test_resume_with_a_loop_config_that_does_not_fit_the_states_is_refused(change, message):
    """Only ``total_steps`` and ``patience`` may change on a resume: another chunk size would
    shift every later chunk's keys, and other sizes do not fit the states."""
    config = tiny_config(steps=EVAL_EVERY)
    env = build_env(config)
    algorithm = build_algorithm(config, env)
    first = train(algorithm, env, config.loop(), progress=False)
    loop = dataclasses.replace(config.loop(), total_steps=4 * EVAL_EVERY, **change)
    with pytest.raises(ValueError, match=re.escape(message)):
        train(algorithm, env, loop, progress=False, resume=(first.final_state, first.progress))
