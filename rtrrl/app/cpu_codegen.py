"""``--fast-cpu-codegen``: an LLVM option for XLA:CPU's kernels, set before JAX starts.

XLA:CPU emits each elementwise kernel as nested loops and leaves the innermost one to LLVM.
LLVM fully unrolls an inner loop of up to a few dozen iterations *before* its loop
vectorizer runs, and its straight-line (SLP) vectorizer then fails on many of those unrolled
bodies: an inner dimension of 32 (the ``(envs, 32, 32)`` eligibility traces of a 32-unit
LRU readout) compiles to scalar code, 0.27 ns per element, against 0.075 ns for an inner
dimension of 40, which LLVM keeps as a loop and vectorizes 8 floats wide (``e ← 0.98 e +
s_b G`` over ``(64, 32, N)``, 2-core CPU). Capping full unrolling at 4 iterations (LLVM's
``-unroll-full-max-count=4``) hands such loops to the loop vectorizer instead.

Measured on the learners (µs per step, CartPole-v1, N = 32, one thread, one run each,
default / with it):

==========================  ===========  ===========
learner                     batch 1      batch 64
==========================  ===========  ===========
LRU with exact RTRL         12.3 / 10.1  243 / 184
CTRNN, RFLO                 5.3 / 5.2    66 / 62
CTRNN, LocalMSE             5.4 / 5.2    57 / 53
CTRNN, TBPTT(8)             14.0 / 14.4  290 / 267
CTRNN, exact RTRL           39.6 / 35.4  3267 / 3173
==========================  ===========  ===========

Since the LRU stores its input weights and readout with rows of ``2N`` (2026-12-06), its
traces no longer have rows of 32 and the option does little for it: two pairs of runs on a
slower host gave the LRU 11.9 / 12.0 and 11.2 / 11.0 µs at batch 1 and 170.7 / 167.7 and
158.4 / 151.5 at batch 64, against RFLO's 100.0 / 85.7 and 92.9 / 81.5 at batch 64.

It is off by default because it changes results by float rounding: an RFLO learner on
CartPole-v1 kept the default's bits for 2 steps and differed in the last bits of its weights
by the fifth; of the eleven runs of `tools/bit_identity.sh`, all saved other parameters and
ten logged TD errors that differ from the default's in the seventh digit. Returns then drift
apart as those of any two rounding-level variants do. So it is part of a run's
configuration, saved in ``config.json``.

XLA reads the option from the ``XLA_FLAGS`` environment variable once, when JAX starts its
backend; JAX's per-compilation options cannot set it. Where an accelerator plugin is
installed, or ``JAX_PLATFORMS`` names another platform first, nothing is set (the option
would also reach the GPU compiler's LLVM). An ``xla_backend_extra_options`` already in
``XLA_FLAGS`` is the user's own and is kept.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import warnings
from typing import TYPE_CHECKING

from .cpu_threads import _jax_started

if TYPE_CHECKING:
    from .config import TrainConfig

FLAGS_VAR = "XLA_FLAGS"
"""The environment variable XLA reads its flags from."""

LLVM_OPTIONS = "-unroll-full-max-count=4"
"""The LLVM option passed through ``--xla_backend_extra_options``."""

DEFAULT = "LLVM's defaults"
"""What `configure_cpu_codegen` reports when the option is not asked for."""

_ACCELERATOR_PLUGIN = re.compile(r"^(jax[-_](cuda|rocm)\d*[-_](plugin|pjrt)|libtpu.*)$")


def _accelerator_plugin_installed() -> bool:
    names = (dist.metadata["Name"] or "" for dist in importlib.metadata.distributions())
    return any(_ACCELERATOR_PLUGIN.match(name.lower()) for name in names)


def _cpu_only() -> bool:
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms:
        return platforms.split(",")[0].strip().lower() == "cpu"
    return not _accelerator_plugin_installed()


def configure_cpu_codegen(config: TrainConfig) -> str:
    """Add `LLVM_OPTIONS` to ``XLA_FLAGS`` if ``config.fast_cpu_codegen`` asks for it and it
    can apply; returns what was done and why.

    Warns (the run goes on, with LLVM's defaults) when JAX has already started its backend,
    since the flags are read then.
    """
    if not config.fast_cpu_codegen:
        return DEFAULT
    flags = os.environ.get(FLAGS_VAR, "")
    if "xla_backend_extra_options" in flags:
        return f"unchanged (xla_backend_extra_options from {FLAGS_VAR})"
    if not _cpu_only():
        return "unchanged (an accelerator platform may be used)"
    if _jax_started():
        warnings.warn(
            "`fast_cpu_codegen` (--fast-cpu-codegen) has no effect: JAX had already started "
            f"its backend in this process. Set {FLAGS_VAR}="
            f"--xla_backend_extra_options={LLVM_OPTIONS} in the environment before starting "
            "Python instead.",
            stacklevel=2,
        )
        return "unchanged (JAX had already started)"
    os.environ[FLAGS_VAR] = f"{flags} --xla_backend_extra_options={LLVM_OPTIONS}".strip()
    return LLVM_OPTIONS
