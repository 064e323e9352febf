"""``RTRRL_RUNTIME_CHECKS=1``: jaxtyping + beartype checks of every rtrrl function, for users.

Set the variable before ``import rtrrl``: `rtrrl/__init__.py` calls `install` before it
imports its submodules, so jaxtyping's import hook decorates every function and dataclass
of every ``rtrrl.*`` module imported from then on with ``jaxtyping.jaxtyped(typechecker=
beartype.beartype)`` (the checks the project's test suite runs under). A call with a wrong
dtype, shape or type then raises at once, naming the argument, instead of computing
something (or failing later, far from the cause).

Under ``jax.jit`` the checks run while JAX traces, once per compilation, and add nothing to
the compiled program; called outside ``jit`` they run at every call.
"""

import os

ENV_VARIABLE = "RTRRL_RUNTIME_CHECKS"
_OFF = ("", "0", "false", "no", "off")


def requested() -> bool:
    """Whether ``RTRRL_RUNTIME_CHECKS`` asks for the checks (anything but empty/0/false/no/off)."""
    return os.environ.get(ENV_VARIABLE, "").strip().lower() not in _OFF


def install() -> None:
    """Install jaxtyping's import hook for ``rtrrl`` with beartype as the type checker.

    It stays installed for the life of the process, so submodules imported later
    (``rtrrl.testing``, ``rtrrl.app``) are checked too. Raises `ImportError` if beartype
    (``pip install 'rtrrl[checks]'``) is missing.
    """
    try:
        import beartype  # noqa: F401
    except ImportError:
        raise ImportError(
            f"{ENV_VARIABLE} is set, which checks rtrrl's types at runtime with beartype, but "
            "beartype is not installed. Install it with `pip install 'rtrrl[checks]'` (or "
            f"`pip install beartype`), or unset {ENV_VARIABLE}."
        ) from None
    import jaxtyping

    jaxtyping.install_import_hook(["rtrrl"], "beartype.beartype")
