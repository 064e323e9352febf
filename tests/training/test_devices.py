"""Seeds, and each seed's environments, split over devices and processes
(`LoopConfig.devices`, `LoopConfig.env_devices`, `initialize_distributed`).

JAX fixes its device count at start-up, so the runs happen in subprocesses
(``_devices_worker.py``), each with virtual CPU devices (``jax_num_cpu_devices``): one
process with 4 devices, and two processes with 2 each that join through gloo on 127.0.0.1.
Both start together, so the test costs about one subprocess's start-up and compilation.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from _training_helpers import TINY_FLAGS, persistent_compilation_cache, tiny_config
from jax.sharding import Mesh

from rtrrl.algorithms import AbstractAlgorithm
from rtrrl.app.cli import main
from rtrrl.app.runs import run_training
from rtrrl.training import LoopConfig
from rtrrl.training._devices import make_mesh
from rtrrl.training._loop import _state_specs

# Compares two different programs (batched and unbatched, traced and constant, ...) bit for bit
# or to 1e-12: XLA's unoptimised float64 kernels, which the rest of the suite compiles with,
# differ between such programs by ~1e-8 (tests/_fast_compile.py).
pytestmark = pytest.mark.optimized

WORKER = Path(__file__).with_name("_devices_worker.py")
ROOT = Path(__file__).parents[2]  # the subprocesses import this tree's rtrrl
CURVES = ("eval_returns", "train_returns", "td_errors")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``(one process, two processes)``: the saved runs of 8 seeds on 4 devices, of seeds 6-7
    on one device (the block of the last device), of seeds 6-7 on 4 devices with their 2
    environments split over 2 devices each, and of the last two with LocalMSE, whose batch
    mean of the entropy term gathers every environment's estimator state."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    address = f"127.0.0.1:{_free_port()}"
    local_mse = ["none,2,6,1,2,local-mse", "4,2,6,2,2,local-mse"]
    commands = [[str(one), "4", "4,8,0", "none,2,6", "4,2,6,2", *local_mse]] + [
        [str(two), "2", "all,8,0", "--join", str(i), "2", address] for i in range(2)
    ]
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    }
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *c], stderr=subprocess.PIPE, text=True, env=env
        )
        for c in commands
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
    load = lambda folder, i: dict(np.load(folder / f"run{i}.npz"))  # noqa: E731
    return tuple(load(one, i) for i in range(5)), load(two, 0)


def test_two_processes_of_two_devices_equal_one_process_of_four_bit_for_bit(runs):
    (four, *_), two_processes = runs
    assert four.keys() == two_processes.keys()
    for name in four:
        np.testing.assert_array_equal(two_processes[name], four[name], err_msg=name)


def test_each_device_block_equals_its_single_device_run(runs):
    """Device 3 runs seeds 6 and 7 as a one-device run of those seeds does. The returns
    agree exactly; parameters and TD errors to rounding (the partitioned program is compiled
    apart from the one-device program: measured ≤ 4e-15 in float64)."""
    (four, block, *_), _ = runs
    for name in CURVES:
        got = four[name][:, 6:8]
        if name == "td_errors":
            np.testing.assert_allclose(got, block[name], rtol=1e-12, atol=1e-14)
        else:
            np.testing.assert_array_equal(got, block[name], err_msg=name)
    leaves = [name for name in four if name not in CURVES]
    assert leaves
    for name in leaves:
        np.testing.assert_allclose(four[name][6:8], block[name], rtol=1e-12, atol=1e-14)
    # ...and the seeds really differ from each other.
    assert not np.array_equal(four["eval_returns"][:, 0], four["eval_returns"][:, 6])


@pytest.mark.parametrize("estimator", ["rflo", "local-mse"])
def test_environments_split_over_devices_equal_the_one_device_run(runs, estimator):
    """2 seeds × 2 environment blocks on 4 devices (environment e of seed s on device
    ``(s, e)``) run as one device runs both seeds: every environment's keys, actions and
    episodes are its one-device ones, so the returns agree exactly, and parameters and TD
    errors to rounding (measured ≤ 3.6e-15 in float64, as for seeds alone: the programs are
    compiled apart, with batches of 1 environment instead of 2). With the default RFLO and
    with LocalMSE, whose batch mean of the cell's entropy term is formed from every
    environment's gathered state (`AbstractGradientEstimator.mean_gradient`)."""
    (_, block, split, local_block, local_split), _ = runs
    if estimator == "local-mse":
        block, split = local_block, local_split
        assert not np.array_equal(split["td_errors"], runs[0][2]["td_errors"])
    assert split.keys() == block.keys()
    for name in CURVES:
        if name == "td_errors":
            np.testing.assert_allclose(split[name], block[name], rtol=1e-12, atol=1e-14)
        else:
            np.testing.assert_array_equal(split[name], block[name], err_msg=name)
    for name in split:
        if name not in CURVES:
            np.testing.assert_allclose(split[name], block[name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"devices": 0}, "`devices` must be an integer >= 1 or 'all'"),
        ({"devices": 3, "num_seeds": 4}, r"`num_seeds` \(--seeds\) = 4 is not a multiple of"),
        ({"devices": 4, "env_devices": 0}, "`env_devices` must be an integer >= 1"),
        (
            {"devices": 3, "env_devices": 2, "num_envs": 2},
            r"`devices` \(--devices\) = 3 is not a multiple of `env_devices`",
        ),
        (
            {"devices": 4, "env_devices": 2, "num_envs": 3, "num_seeds": 2},
            r"`num_envs` \(--num-envs\) = 3 is not a multiple of `env_devices`",
        ),
        (
            {"devices": 4, "env_devices": 2, "num_envs": 2, "num_seeds": 3},
            r"`num_seeds` \(--seeds\) = 3 is not a multiple of the 2 seed blocks",
        ),
        ({"env_devices": 2, "num_envs": 2}, r"`env_devices` \(--env-devices\) = 2 needs"),
    ],
)
def test_loop_config_refuses_bad_device_counts(changes, message):
    with pytest.raises(ValueError, match=message):
        LoopConfig(total_steps=10, **changes)


def test_cli_refuses_device_counts_in_one_error_line(tmp_path, capsys):
    flags = ["--steps", "500", "--out", str(tmp_path), "--devices", "3", "--seeds", "4"]
    status = main(["train", *TINY_FLAGS, *flags])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "`num_seeds` (--seeds) = 4 is not a multiple of the 3 devices" in err


def test_cli_refuses_env_devices_for_ppo_in_one_error_line(tmp_path, capsys):
    flags = ["--algo", "ppo", "--devices", "2", "--env-devices", "2", "--num-envs", "2"]
    status = main(["train", *TINY_FLAGS, "--steps", "500", "--out", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "`env_devices` (--env-devices) > 1 splits a seed's environments" in err


class _OneDeviceLearner(AbstractAlgorithm):
    """A learner that keeps the default `AbstractAlgorithm.env_leaves`, as PPO does."""

    def init(self, key, env, *, num_envs=1):
        raise NotImplementedError

    def step(self, state, env, key):
        raise NotImplementedError

    def evaluate(self, state, env, key, *, num_envs, num_steps, greedy=False):
        raise NotImplementedError


def test_a_learner_without_env_leaves_refuses_an_env_split_mesh():
    """What `train` raises for such a learner on a ``("seeds", "envs")`` mesh (here of one
    device)."""
    mesh = Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("seeds", "envs"))
    with pytest.raises(ValueError, match=r"_OneDeviceLearner cannot split a seed's env"):
        _state_specs(_OneDeviceLearner(), None, mesh)


def test_more_devices_than_jax_sees_are_refused():
    with pytest.raises(ValueError, match=r"`devices` \(--devices\) = 2, but JAX sees 1 device"):
        make_mesh(2, 2)


def test_only_process_zero_writes_the_run_folder(tmp_path_factory, monkeypatch):
    """A process other than 0 of a multi-process run trains along but writes nothing. (The
    session's compilation cache: `test_training.py` compiles the same one-seed program.)"""
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    out = tmp_path_factory.mktemp("run")
    with persistent_compilation_cache(tmp_path_factory.getbasetemp() / "jax-compilation-cache"):
        config = tiny_config(seeds=1, seed=2, steps=2000, patience=None, out=out)
        result = run_training(config, progress=False, log=print)
    assert result.total_steps == 2000 and list(out.iterdir()) == []
