"""The structural checks of `check_estimator` that need no compiled run: the state's PyTree is
stable across steps, the gradient is shaped like the parameters, wrong shapes are refused.

Each check returns ``None`` when it passes and a message saying what is wrong otherwise. They
trace with `equinox.filter_eval_shape`, so nothing is computed.
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Hidden, PRNGKey
from ..cells import AbstractCell
from ..estimators import AbstractGradientEstimator, key_argument
from ._compare import leaf_names

STABILITY_STEPS = 3


def _layout(tree: Any) -> list[tuple[str, tuple[int, ...], Any]]:
    """``(path, shape, dtype)`` of each leaf (a Python value's type name stands for its dtype)."""
    leaves = jax.tree.leaves(tree)
    return [
        (name, tuple(jnp.shape(x)), getattr(x, "dtype", type(x).__name__))
        for name, x in zip(leaf_names(tree), leaves, strict=True)
    ]


def _difference(reference: Any, other: Any, what: str, other_name: str) -> str | None:
    """How the PyTree `other` differs from `reference` (structure, then leaf shapes/dtypes)."""
    if jax.tree.structure(reference) != jax.tree.structure(other):
        return (
            f"{what} changed its PyTree structure: {jax.tree.structure(reference)} became "
            f"{jax.tree.structure(other)} {other_name}"
        )
    for (name, shape, dtype), (_, shape2, dtype2) in zip(
        _layout(reference), _layout(other), strict=True
    ):
        if (shape, dtype) != (shape2, dtype2):
            return (
                f"{what}{name or ''} changed from shape {shape} {dtype} to {shape2} {dtype2} "
                f"{other_name}"
            )
    return None


def state_stability(
    estimator: AbstractGradientEstimator,
    cell: AbstractCell,
    hidden0: Hidden,
    xs: Array,
    keys: tuple[PRNGKey | None, Array | None],
) -> str | None:
    """The state from ``init`` and after each of `STABILITY_STEPS` steps has one PyTree
    structure, shapes and dtypes (as `lax.scan` and episode resets with `jnp.where` need), and
    ``step``'s next hidden state is shaped like the cell's."""
    init_key, step_keys = keys

    def run() -> tuple[Any, list[Any], list[Hidden], list[Hidden]]:
        state = estimator.init(cell, hidden0, xs[0], **key_argument(estimator, init_key))
        states, hiddens, expected = [state], [], []
        hidden = hidden0
        for t in range(min(STABILITY_STEPS, len(xs))):
            k = None if step_keys is None else step_keys[t]
            expected.append(cell(hidden, xs[t]))
            hidden, state = estimator.step(cell, hidden, xs[t], state, **key_argument(estimator, k))
            states.append(state)
            hiddens.append(hidden)
        return states[0], states[1:], hiddens, expected

    fresh, stepped, hiddens, expected = eqx.filter_eval_shape(run)
    for t, (state, hidden, cell_hidden) in enumerate(
        zip(stepped, hiddens, expected, strict=True), 1
    ):
        problem = _difference(
            fresh, state, "the state", f"after step {t} (init's is the reference)"
        )
        problem = problem or _difference(
            cell_hidden, hidden, "the hidden state returned by step", f"from the cell's at step {t}"
        )
        if problem:
            return problem
    return None


def gradient_layout(
    estimator: AbstractGradientEstimator, cell: AbstractCell, state: Any, cotangent: Array
) -> str | None:
    """``gradient`` is shaped like ``eqx.filter(cell, eqx.is_inexact_array)`` (structure,
    shapes, dtypes) and ``gradient_norm_squared`` is a real scalar."""
    params = eqx.filter(cell, eqx.is_inexact_array)
    grads, norm_sq = eqx.filter_eval_shape(
        lambda s: (
            estimator.gradient(cell, s, cotangent),
            estimator.gradient_norm_squared(cell, s, cotangent),
        ),
        state,
    )
    problem = _difference(
        params, grads, "the gradient", "(the cell's parameters are the reference)"
    )
    if problem:
        return problem.replace("changed", "differs from the parameters:", 1)
    dtype = getattr(norm_sq, "dtype", None)
    if jnp.shape(norm_sq) != () or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        return f"gradient_norm_squared must return a real scalar array, got {norm_sq!r}"
    return None


def _wrong_shapes(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """One entry too many, and a leading batch axis of 2 (forgetting `jax.vmap`)."""
    return [(*shape[:-1], shape[-1] + 1), (2, *shape)]


def shape_errors(
    estimator: AbstractGradientEstimator,
    cell: AbstractCell,
    hidden0: Hidden,
    x: Array,
    cotangent: Array,
    key: PRNGKey | None,
) -> str | None:
    """``init``/``step`` refuse a wrongly shaped ``x``, ``step`` a wrongly shaped ``hidden``,
    ``gradient``/``gradient_norm_squared`` a wrongly shaped ``cotangent``, each with a
    `ValueError` or `TypeError` (raised while tracing, so free per step)."""
    name = type(estimator).__name__
    kw = key_argument(estimator, key)
    state = eqx.filter_eval_shape(lambda: estimator.init(cell, hidden0, x, **kw))
    calls: list[tuple[str, Callable[[Any], Any], str, tuple[int, ...]]] = []
    for shape in _wrong_shapes(x.shape):
        bad = jnp.zeros(shape, x.dtype)
        calls.append(("init", lambda s, b=bad: estimator.init(cell, hidden0, b, **kw), "x", shape))
        calls.append(
            ("step", lambda s, b=bad: estimator.step(cell, hidden0, b, s, **kw), "x", shape)
        )
    for shape in _wrong_shapes(hidden0.shape):
        bad = jnp.zeros(shape, hidden0.dtype)
        calls.append(
            ("step", lambda s, b=bad: estimator.step(cell, b, x, s, **kw), "hidden", shape)
        )
    for shape in _wrong_shapes(cotangent.shape):
        bad = jnp.zeros(shape, cotangent.dtype)
        for method in ("gradient", "gradient_norm_squared"):
            call = lambda s, b=bad, m=method: getattr(estimator, m)(cell, s, b)  # noqa: E731
            calls.append((method, call, "cotangent", shape))
    problems = []
    for method, call, argument, shape in calls:
        try:
            eqx.filter_eval_shape(call, state)
        except (ValueError, TypeError):
            continue
        except Exception as error:  # noqa: BLE001 (reported, not swallowed)
            problems.append(
                f"{name}.{method} raised {type(error).__name__} (not ValueError/TypeError) for "
                f"`{argument}` of shape {shape}: {error}"
            )
            continue
        problems.append(f"{name}.{method} accepted `{argument}` of shape {shape}")
    if problems:
        expected = f"x {x.shape}, hidden {hidden0.shape}, cotangent {cotangent.shape}"
        return "; ".join(problems) + f" (expected shapes: {expected})"
    return None
