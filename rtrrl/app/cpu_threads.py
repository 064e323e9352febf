"""How many threads XLA:CPU gives a training run (``--cpu-threads``).

XLA's CPU client keeps a pool of intra-op threads, one per core unless the ``PJRT_NPROC``
environment variable says otherwise. It reads the variable once, when JAX starts its CPU
backend, so the count is fixed for the life of the process. The executor hands independent
kernels of a compiled step to pool threads. A small online step is about 100 kernels of a
few hundred nanoseconds each. Handing those between cores costs more than it saves, and
their operands move between the cores' caches.

Measured on the 2-core CI machine (µs per step, 1 thread / 2 threads, float32, CartPole-v1):

======================  ==========  ===========
learner                 batch        1 / 2 thr.
======================  ==========  ===========
RFLO CTRNN-32           1            6.9 / 8.7
RFLO CTRNN-32           64            79 / 100
RFLO CTRNN-32           128          187 / 215
RFLO CTRNN-32           256          514 / 419
RFLO CTRNN-32           1024        2350 / 1600
RFLO CTRNN-64           64           360 / 311
RTRL CTRNN-32           1             93 / 115
RTRL CTRNN-32           8           1350 / 905
LRU-32 (RTRL)           1             17 / 22
======================  ==========  ===========

So one thread is faster while a step's work is small, and every core once it is large. The
automatic choice estimates the work from the config as
``seeds × num_envs × N² (× N for exact RTRL on a CTRNN, whose trace is N × N²)`` and uses one
thread up to `SMALL_STEP_WORK`. The one measured miss: LocalMSE CTRNN-32 at batch 64 gets one
thread and runs 4 % slower than on two (156 against 150 µs). The thread count never changes
results: each kernel computes the same values on any thread (`tests/app/test_cpu_threads.py`
checks two runs bit for bit).
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from jax._src import xla_bridge

if TYPE_CHECKING:
    from .config import TrainConfig

ENV_VAR = "PJRT_NPROC"
"""The environment variable XLA's CPU client reads for its thread-pool size."""

SMALL_STEP_WORK = 2**17
"""Largest estimated step work (see the module docstring) that runs on one thread."""


def _jax_started() -> bool:
    # JAX has no public query for this; without it, assume not started (at worst the
    # variable is set too late and the count stays JAX's default: slower, never wrong).
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if started is not None else False


def step_work(config: TrainConfig) -> int:
    """``seeds × num_envs × N²``, times ``N`` for exact RTRL on a CTRNN (its N × N² trace)."""
    per_env = config.hidden_size**2
    if config.algo == "rtrrl" and config.cell == "ctrnn" and config.estimator == "rtrl":
        per_env *= config.hidden_size
    return config.seeds * config.num_envs * per_env


def automatic_cpu_threads(config: TrainConfig) -> int | None:
    """1 when `step_work` is at most `SMALL_STEP_WORK`, else ``None`` (XLA's default: all cores)."""
    return 1 if step_work(config) <= SMALL_STEP_WORK else None


def configure_cpu_threads(config: TrainConfig) -> str:
    """Size XLA:CPU's thread pool for `config`, if JAX has not started its CPU backend yet.

    ``config.cpu_threads`` wins; else a ``PJRT_NPROC`` already in the environment; else
    `automatic_cpu_threads`. Returns what was chosen and why, for the log and the summary.
    Warns (never fails: results do not depend on it) when an explicit count comes too late.
    """
    if config.cpu_threads is None and ENV_VAR in os.environ:
        return f"{os.environ[ENV_VAR]} ({ENV_VAR} from the environment)"
    threads = config.cpu_threads or automatic_cpu_threads(config)
    reason = "--cpu-threads" if config.cpu_threads else "automatic"
    if _jax_started():
        if config.cpu_threads is not None:
            warnings.warn(
                f"`cpu_threads` (--cpu-threads) = {config.cpu_threads} has no effect: JAX had "
                f"already started its CPU backend in this process. Set {ENV_VAR}="
                f"{config.cpu_threads} in the environment before starting Python instead.",
                stacklevel=2,
            )
        return "unchanged (JAX had already started)"
    if threads is None:
        return f"all cores ({reason}: large steps)"
    os.environ[ENV_VAR] = str(threads)
    return f"{threads} ({reason})"
