"""Test-wide settings, fixed before any test traces or JAX starts its CPU backend:
float64, strict dtype promotion, and one XLA:CPU thread.

The tests' steps are small, and small steps run faster on one thread than on a pool shared
across cores (`rtrrl/cpu_threads.py`; the learning checks take 2:00 instead of 2:24). A
``PJRT_NPROC`` already in the environment wins. Results do not depend on it.
"""

import os

os.environ.setdefault("PJRT_NPROC", "1")

import jax  # noqa: E402  (after PJRT_NPROC, which JAX reads when its backend starts)

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
