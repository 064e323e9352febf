"""Test-wide settings, fixed before any test traces or JAX starts its CPU backend:
float64, strict dtype promotion, and one XLA:CPU thread.

The tests' steps are small, and small steps run faster on one thread than on a pool shared
across cores (`rtrrl/app/cpu_threads.py`; the learning checks take 2:00 instead of 2:24). A
``PJRT_NPROC`` already in the environment wins. Results do not depend on it.
"""

import os

os.environ.setdefault("PJRT_NPROC", "1")

import jax  # noqa: E402  (after PJRT_NPROC, which JAX reads when its backend starts)
import jaxtyping  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

# The persistent compilation cache is off outside the test modules that switch it on for
# themselves (`_training_helpers.persistent_compilation_cache`). Two full runs crashed with a
# segmentation fault inside XLA's compiler in tests/estimators/test_testing.py, compiling with
# the cache on although no module of that folder enables it, and never when that folder ran
# alone: `_isolated_compilation_cache` below puts the setting back after every module.
_CACHE_SETTINGS = (
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)
_CACHE_DEFAULTS = {name: getattr(jax.config, name) for name in _CACHE_SETTINGS}


@pytest.fixture(autouse=True, scope="module")
def _isolated_compilation_cache(request):
    """After each test module: JAX's persistent-cache settings as the session began, and the
    cache's state reset; a module that left them changed is named in a warning."""
    from jax._src import compilation_cache

    yield
    changed = {
        name: getattr(jax.config, name)
        for name in _CACHE_SETTINGS
        if getattr(jax.config, name) != _CACHE_DEFAULTS[name]
    }
    if changed or compilation_cache._cache_used:
        import warnings

        warnings.warn(
            f"{request.module.__name__} left the compilation cache on ({changed}); reset.",
            stacklevel=1,
        )
    for name, value in _CACHE_DEFAULTS.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


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
