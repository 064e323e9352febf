"""How the test suite compiles: with most of XLA's optimisations off (see ``conftest.py``).

Most of the suite's time is XLA:CPU compiling small programs that then run for milliseconds.
The tests check what the programs compute, not how fast they run, so by default they compile
with

- ``JAX_DISABLE_MOST_OPTIMIZATIONS=1`` (JAX's switch: XLA's backend, LLVM included, at its
  lowest optimisation level), and
- ``XLA_FLAGS=--xla_cpu_use_fusion_emitters=false`` (XLA:CPU's older loop emitters for
  fused kernels, which compile faster than the MLIR-based ones),

about half the compile time of the defaults (tests/estimators/test_uoro.py and
test_snap1.py, one process: 94 s of CPU with JAX's defaults, 49 s with both, about 80 s
with either alone). Both are set in the environment before JAX starts, so `rtrrl`
subprocesses that tests start inherit them, and a test comparing a subprocess's numbers
with its own bit for bit compares programs compiled alike. Unoptimised code runs about 5x
slower, so the tests that train for long (marker ``optimized``: the learning checks, and the
tests that compare two different programs bit for bit) compile with JAX's defaults. Numbers
differ from the defaults' by float rounding only; ``tools/bit_identity.sh`` compares training
runs compiled as users compile them.
"""

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

import pytest

DISABLE_VARIABLE = "JAX_DISABLE_MOST_OPTIMIZATIONS"
EMITTER_FLAG = "--xla_cpu_use_fusion_emitters=false"


def switch_on(environ: MutableMapping[str, str]) -> None:
    """Set both in `environ`, unless it already says otherwise (a value of its own for
    ``JAX_DISABLE_MOST_OPTIMIZATIONS``, a fusion-emitter flag of its own in ``XLA_FLAGS``)."""
    environ.setdefault(DISABLE_VARIABLE, "1")
    flags = environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_fusion_emitters" not in flags:
        environ["XLA_FLAGS"] = f"{flags} {EMITTER_FLAG}".strip()


@contextmanager
def as_users_compile_here(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While the block runs, compile with JAX's defaults, here and in subprocesses started
    from this process's environment (the fusion emitters stay off: they change compile
    time, not run time)."""
    import jax

    monkeypatch.setenv(DISABLE_VARIABLE, "0")
    before = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", before)
