"""`rtrrl.app.cpu_threads`: the automatic XLA:CPU thread count, and that no count changes a result."""

import collections
import json
import os

import jax
import pytest
from _training_helpers import (
    TINY_FLAGS,
    assert_trees_equal,
    load_run_checkpoint,
    read_rows,
    run_python_code,
    without_timing,
)

from rtrrl.app import cpu_threads
from rtrrl.app.config import TrainConfig
from rtrrl.app.runs import load_run_config


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (dict(), 1),  # the paper's setting: CTRNN-32, batch 1
        (dict(num_envs=64), 1),
        (dict(num_envs=128), 1),
        (dict(num_envs=256), None),
        (dict(num_envs=64, hidden_size=64), None),
        (dict(num_envs=32, seeds=8), None),  # seeds are vmapped: the same work as batch 256
        (dict(estimator="rtrl"), 1),
        (dict(estimator="rtrl", num_envs=8), None),  # exact RTRL: an N x N^2 trace per env
        (dict(cell="lru", estimator="rtrl", num_envs=8), 1),
        (dict(algo="ppo", num_envs=64), 1),
    ],
)
def test_small_steps_get_one_thread_and_large_steps_every_core(options, expected):
    """The rule reproduces the measurements of the module docstring (batch 128 and smaller at
    N = 32 ran faster on one thread; batch 256, N = 64 at batch 64 and RTRL at batch 8 on two)."""
    assert cpu_threads.automatic_cpu_threads(TrainConfig(**options)) == expected


def test_an_environment_setting_is_kept(monkeypatch):
    monkeypatch.setenv(cpu_threads.ENV_VAR, "3")
    assert cpu_threads.configure_cpu_threads(TrainConfig()) == "3 (PJRT_NPROC from the environment)"
    assert os.environ[cpu_threads.ENV_VAR] == "3"


def test_an_explicit_count_too_late_warns_and_changes_nothing(monkeypatch):
    """Once this process's JAX has started, a count cannot apply, and it says so."""
    jax.devices()  # starts the CPU backend, if no earlier test has
    monkeypatch.delenv(cpu_threads.ENV_VAR, raising=False)
    with pytest.warns(UserWarning, match=r"--cpu-threads\) = 2 has no effect.*PJRT_NPROC=2"):
        chosen = cpu_threads.configure_cpu_threads(TrainConfig(cpu_threads=2))
    assert chosen == "unchanged (JAX had already started)"
    assert cpu_threads.ENV_VAR not in os.environ


_TRAIN_AND_COUNT_POOL_THREADS = """
import os, sys
from rtrrl.app.cli import main

code = main(sys.argv[1:])
names = []
for task in os.listdir("/proc/self/task"):
    try:
        with open(f"/proc/self/task/{task}/comm") as file:
            names.append(file.read().strip())
    except FileNotFoundError:  # a thread that ended after the listing (not a pool thread)
        pass
print("XLA pool threads:", sum("XLAEigen" in name for name in names))
sys.exit(code)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
@pytest.mark.parametrize(
    "learner",
    [[], ["--algo", "ppo", "--cell", "lstm", "--num-envs", "4"]],
    ids=["rtrrl", "ppo-lstm"],
)
def test_runs_on_one_and_two_threads_are_identical(tmp_path, learner):
    """``rtrrl train --cpu-threads 1`` and ``2``, each in a fresh process: XLA's pool has that
    many threads, and metrics, checkpoints and summaries agree bit for bit, for RTRRL and for
    PPO (backpropagation through time over minibatches: other kernels than RTRRL's)."""
    env = {k: v for k, v in os.environ.items() if k != cpu_threads.ENV_VAR}
    env |= {"JAX_ENABLE_X64": "1", "JAX_NUMPY_DTYPE_PROMOTION": "strict", "JAX_PLATFORMS": "cpu"}
    runs, pools = {}, collections.Counter()
    for threads in (1, 2):
        runs[threads] = tmp_path / f"threads-{threads}"
        argv = ["train", *TINY_FLAGS, *learner, "--steps", "1500", "--cpu-threads", str(threads)]
        stdout = run_python_code(
            _TRAIN_AND_COUNT_POOL_THREADS,
            [*argv, "--out", str(runs[threads])],
            env=env,
            cwd=tmp_path,
        )
        pools[threads] = int(stdout.split("XLA pool threads:")[1])
        summary = json.loads((runs[threads] / "summary.json").read_text())
        assert summary["cpu_threads"] == f"{threads} (--cpu-threads)"
    assert pools == {1: 1, 2: 2}

    one, two = runs[1], runs[2]
    assert without_timing(read_rows(one)) == without_timing(read_rows(two))
    assert len(read_rows(one)) == 3
    states, progress = load_run_checkpoint(one, load_run_config(one))
    states_two, progress_two = load_run_checkpoint(two, load_run_config(two))
    assert_trees_equal(states, states_two)
    assert progress.best_eval_return == progress_two.best_eval_return
