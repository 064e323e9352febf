"""Lazy imports of the optional environment libraries and the numerics they expect.

gymnax and brax are imported only when an environment of theirs is built, so that
``import rtrrl`` stays fast and works without the ``envs`` extra.
"""

import contextlib
import importlib
import io
import types
import warnings
from collections.abc import Iterator

import jax


def require(module: str, *, purpose: str) -> types.ModuleType:
    """Import `module`, or raise an `ImportError` telling the user how to install it.

    Arguments:
        module: the module to import, e.g. ``"gymnax"`` or ``"brax.envs"``.
        purpose: what needs it, for the message (e.g. ``"the gymnax environment 'CartPole-v1'"``).
    """
    try:
        # MuJoCo prints a notice about its optional `warp` GPU backend while brax imports it;
        # it concerns no environment here, so it is kept off the user's stdout.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # brax imports jaxopt, which announces its own deprecation on import.
            warnings.filterwarnings("ignore", message="JAXopt is no longer maintained")
            return importlib.import_module(module)
    except ImportError as error:
        root = module.split(".")[0]
        raise ImportError(
            f"{purpose} needs the `{root}` package, which is not installed. Install the "
            "environment extra: `pip install rtrrl[envs]`."
        ) from error


@contextlib.contextmanager
def library_numerics() -> Iterator[None]:
    """Run third-party environment code in the numerics it was written for.

    gymnax and brax assume JAX's defaults: 32-bit types and standard dtype promotion. Under
    ``jax_enable_x64`` or ``jax_numpy_dtype_promotion="strict"`` (which our tests and some
    users set) many of their environments fail to trace (int32/int64 and float32/float64
    mixes). Everything they compute, including the constants they build at construction,
    is therefore computed inside this context; the adapters cast the results to the caller's
    default float dtype afterwards.
    """
    with jax.enable_x64(False), jax.numpy_dtype_promotion("standard"):
        yield
