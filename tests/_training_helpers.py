"""Shared pieces of the training-product tests (loop, checkpoints, resume, validation, CLI).

Every test of these files trains with the same tiny settings, so the compiled chunk programs
coincide and the persistent compilation cache (switched on per test module by
`persistent_compilation_cache`) compiles each of them once per session.
"""

import contextlib
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.compilation_cache import compilation_cache

import rtrrl
from rtrrl.app.checkpoint import load_checkpoint
from rtrrl.app.config import TrainConfig, build_algorithm, build_env
from rtrrl.envs import AbstractEpisodicEnvironment, Discrete
from rtrrl.training import METRIC_COLUMNS, init_states

# Tiny CartPole runs: 4 neurons, an evaluation every 500 steps on 2 envs of at most 50 steps.
EVAL_EVERY = 500
TINY_FLAGS = ["--hidden-size", "4", "--eval-every", "500", "--eval-envs", "2", "--eval-steps", "50"]
TINY = dict(hidden_size=4, eval_every=EVAL_EVERY, eval_envs=2, eval_steps=50)

# Wall-clock columns: the only ones allowed to differ between equal runs.
TIMING_COLUMNS = ("steps_per_second",)

NAN_ENV_ID = "test-RewardTurnsNaN-v0"
# The reward of `RewardTurnsNaN` becomes NaN after this many steps of one environment: in the
# fourth chunk of a run that evaluates every 500 steps.
NAN_AFTER = 1750


@contextlib.contextmanager
def persistent_compilation_cache(path: Path):
    """Cache compiled programs under `path` while the block runs; restore JAX's settings after.

    Runs with equal settings build equal programs; the cache turns the second compilation of
    one into a load. It changes no numbers (the same executable runs) and no trace counts.
    """
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    old = {name: getattr(jax.config, name) for name in names}
    compilation_cache.reset_cache()
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    try:
        yield
    finally:
        for name, value in old.items():
            jax.config.update(name, value)
        compilation_cache.reset_cache()


def subprocess_env(cache_dir: Path | None) -> dict[str, str]:
    """The environment of an ``rtrrl`` subprocess whose results are compared bit for bit with
    this test process: float64 with strict promotion (as `conftest.py` sets here), CPU, the
    package under test first on the path, and a persistent compilation cache in `cache_dir`
    (none if None).

    JAX writes cache entries in place, so a process that may be killed must get a folder of
    its own: a truncated entry crashes whoever reads it next.
    """
    source = str(Path(rtrrl.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "JAX_ENABLE_X64": "1",
        "JAX_NUMPY_DTYPE_PROMOTION": "strict",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE"):
        env.pop(name, None)
    if cache_dir is None:
        env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    else:
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    return env


def run_python_code(
    code: str, argv: list[str], *, env: dict[str, str], cwd: Path | None = None, timeout: int = 600
) -> str:
    """``python -c code *argv`` in a fresh process: its stdout, after asserting that it exited
    with 0 (the failure message is the process's stdout and stderr)."""
    process = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return process.stdout


# ``python -c CLI_WITH_STOP_SIGNALS train ...`` is ``rtrrl train ...`` with Ctrl-C, SIGTERM and
# SIGHUP turned on. A process started in the background by a non-interactive shell (CI,
# `nohup`, `cmd &`) ignores SIGINT (and under `nohup` SIGHUP), its children inherit that, and
# rtrrl then leaves them ignored: the test would send a signal nobody receives.
CLI_WITH_STOP_SIGNALS = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "signal.signal(signal.SIGHUP, signal.SIG_DFL); signal.signal(signal.SIGTERM, signal.SIG_DFL); "
    "runpy.run_module('rtrrl.app.cli', run_name='__main__')"
)


def wait_for(path: Path, process, timeout: float) -> bool:
    """Wait until `path` exists; False if `process` ended first or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class RewardTurnsNaN(AbstractEpisodicEnvironment):
    """An endless episode paying 1 per step until step `after`, then NaN (forces divergence).

    The episode never ends, so an environment's step count runs on across chunks and the
    failure lands in a known chunk; a fresh evaluation environment of fewer than `after`
    steps returns exactly its number of steps.
    """

    after: int = eqx.field(static=True, default=NAN_AFTER)

    @property
    def name(self) -> str:
        return NAN_ENV_ID

    @property
    def observation_size(self) -> int:
        return 2

    @property
    def action_space(self) -> Discrete:
        return Discrete(2)

    def reset_episode(self, key):
        return jax.random.normal(key, (2,)), jnp.zeros((), jnp.int32)

    def step_episode(self, key, inner, action):
        count = inner + 1
        reward = jnp.where(count > self.after, jnp.nan, 1.0)
        no = jnp.zeros((), bool)
        return jax.random.normal(key, (2,)), count, reward, no, no


def tiny_config(**overrides) -> TrainConfig:
    """A `TrainConfig` with the `TINY` settings (what ``rtrrl train`` + `TINY_FLAGS` gives)."""
    return TrainConfig(**{**TINY, **overrides})


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a run's ``metrics.csv`` as strings (exact: floats are written by repr)."""
    path = path / "metrics.csv" if path.is_dir() else path
    with path.open() as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames is not None
        assert set(METRIC_COLUMNS) <= set(reader.fieldnames)
        return list(reader)


def without_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def load_run_checkpoint(run_dir: Path, config: TrainConfig):
    """``(states, progress)`` of a run folder's checkpoint, read into fresh states of `config`."""
    env = build_env(config)
    like = init_states(build_algorithm(config, env), env, config.loop())
    states, progress, _ = load_checkpoint(run_dir, like, config.fingerprint())
    return states, progress


def leaves(tree) -> list[np.ndarray]:
    """The array leaves of `tree` as NumPy arrays (PRNG keys as their raw data)."""
    out = []
    for leaf in jax.tree.leaves(eqx.filter(tree, eqx.is_array)):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        out.append(np.asarray(leaf))
    return out


def assert_trees_equal(a, b) -> None:
    """Bit-for-bit equality of two state PyTrees (same structure, shapes, dtypes, values)."""
    assert jax.tree.structure(eqx.filter(a, eqx.is_array)) == jax.tree.structure(
        eqx.filter(b, eqx.is_array)
    )
    for x, y in zip(leaves(a), leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y, equal_nan=True)
