"""Test-wide settings, fixed before any test traces or JAX starts its CPU backend:
float64, strict dtype promotion, one XLA:CPU thread, and compilation with most of XLA's
optimisations off except for the tests marked `optimized` (`_fast_compile`).

The tests' steps are small, and small steps run faster on one thread than on a pool shared
across cores (`rtrrl/app/cpu_threads.py`; the learning checks take 2:00 instead of 2:24). A
``PJRT_NPROC`` already in the environment wins. Results do not depend on it.
"""

import os

from _fast_compile import as_users_compile_here, switch_on

os.environ.setdefault("PJRT_NPROC", "1")
# Compile fast, with most of XLA's optimisations off, except for the tests marked `optimized`
# (`_fast_compile`): the suite checks what programs compute, and spends most of its time
# compiling them.
switch_on(os.environ)

import jax  # noqa: E402  (after PJRT_NPROC, which JAX reads when its backend starts)
import jaxtyping  # noqa: E402
import pytest  # noqa: E402
from _compile_report import pytest_addoption, pytest_configure  # noqa: E402, F401  (hooks)

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test module, drop JAX's in-memory caches of traced and compiled programs.

    Three full runs of the suite (one process, ~900 tests, thousands of XLA:CPU compilations)
    died with a segmentation fault inside XLA's compiler (`backend_compile_and_load`), each
    time at the same test of tests/estimators/test_testing.py, which passes when its folder
    runs alone; the previous session saw the same kind of crash late in full runs. Releasing
    the executables of finished modules keeps the process's compiled code from piling up.
    Modules that share programs across files use the persistent cache on disk instead.
    """
    yield
    jax.clear_caches()


@pytest.fixture(autouse=True, scope="module")
def _optimized_module(request):
    """A module marked `optimized` (``pytestmark``) compiles as users do (`_fast_compile`),
    its module-scoped fixtures included (they are built after this one)."""
    marks = getattr(request.module, "pytestmark", [])
    if not any(
        mark.name == "optimized" for mark in (marks if isinstance(marks, list) else [marks])
    ):
        yield
        return
    with pytest.MonkeyPatch.context() as monkeypatch, as_users_compile_here(monkeypatch):
        yield


@pytest.fixture(autouse=True)
def _optimized_compilation(request, monkeypatch):
    """A test marked `optimized` compiles as users do (`_fast_compile`)."""
    if request.node.get_closest_marker("optimized") is None:
        yield
    else:
        with as_users_compile_here(monkeypatch):
            yield


@pytest.fixture
def without_runtime_type_checks():
    """Switch off the suite's jaxtyping/beartype checks (``--jaxtyping-packages``) for one test.

    Users run without them, so the library's own messages for a value of the wrong type or
    shape are what they see. Under the suite's hook, beartype would reject such a value first
    (with its own message); tests of the library's messages use this fixture.
    """
    before = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", before)
