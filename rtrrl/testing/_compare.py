"""Comparing gradient PyTrees: assertions with named leaves, error measures, tolerances."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.testing

from .._types import Grads


def default_rtol(dtype: Any) -> float:
    """The tolerance of an exact comparison in `dtype`: ``1e-8`` in float64, ``1e-4`` below.

    An exact estimator and BPTT sum the same terms in another order: in float64 they agree to
    ~1e-13 over a short sequence, in float32 to ~1e-6.
    """
    return 1e-8 if jnp.finfo(dtype).bits >= 64 else 1e-4


def consistency_rtol(dtype: Any) -> float:
    """The tolerance between two runs of the same computation (jit against eager, vmap against
    one sequence at a time): ``1e-10`` in float64, ``1e-4`` below. XLA may fuse or batch the
    operations differently, so bit equality is not required."""
    return 1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-4


def leaf_names(tree: Any) -> list[str]:
    """The path of each array leaf of `tree`, as `jax.tree_util.keystr` writes it (``.weight``)."""
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _flat(tree: Any) -> np.ndarray:
    leaves = [np.asarray(leaf).ravel() for leaf in jax.tree.leaves(tree)]
    return np.concatenate(leaves) if leaves else np.zeros(0)


def assert_grads_close(actual: Grads, expected: Grads, *, rtol: float, err_msg: str = "") -> None:
    """Raise `AssertionError` unless the two PyTrees have one structure and every leaf agrees:

        |a - e| <= rtol · |e| + rtol · max|e_leaf|      elementwise, for each leaf,

    i.e. `numpy.testing.assert_allclose` with ``atol = rtol · max|e|`` of that leaf, so
    entries near zero are compared at the scale of their leaf. The message names the leaf.
    """
    if jax.tree.structure(actual) != jax.tree.structure(expected):
        raise AssertionError(
            f"{err_msg}gradient structures differ:\n  got      {jax.tree.structure(actual)}\n"
            f"  expected {jax.tree.structure(expected)}"
        )
    leaves = zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True)
    for name, (a, e) in zip(leaf_names(expected), leaves, strict=True):
        scale = float(jnp.max(jnp.abs(e))) if e.size else 0.0
        try:
            numpy.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale)
        except AssertionError as error:
            where = f"leaf {name}: " if name else ""
            raise AssertionError(f"{err_msg}{where}{str(error).strip()}") from None


def relative_error(actual: Grads, expected: Grads) -> float:
    """``‖a - e‖₂ / ‖e‖₂`` over all leaves together (0 when both are zero, inf when only ``e``
    is)."""
    a, e = _flat(actual), _flat(expected)
    diff, norm = float(np.linalg.norm(a - e)), float(np.linalg.norm(e))
    if norm > 0.0:
        return diff / norm
    return 0.0 if diff == 0.0 else float("inf")


def max_relative_error(actual: Grads, expected: Grads) -> float:
    """``max over leaves of max|a - e| / max|e|``: the largest error of any entry at the scale
    of its leaf (0 for identical trees; inf if a leaf of ``e`` is zero and that of ``a`` is
    not). `assert_grads_close` passes whenever this is at most ``rtol``."""
    worst = 0.0
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a), np.asarray(e)
        if e.size == 0:
            continue
        diff, scale = float(np.max(np.abs(a - e))), float(np.max(np.abs(e)))
        ratio = diff / scale if scale > 0.0 else (0.0 if diff == 0.0 else float("inf"))
        worst = max(worst, ratio)
    return worst


def cosine_similarity(actual: Grads, expected: Grads) -> float:
    """``⟨a, e⟩ / (‖a‖ ‖e‖)`` over all leaves together (1 when both are zero, 0 when one is)."""
    a, e = _flat(actual), _flat(expected)
    na, ne = float(np.linalg.norm(a)), float(np.linalg.norm(e))
    if na == 0.0 or ne == 0.0:
        return 1.0 if na == ne else 0.0
    return float(np.real(np.vdot(e, a))) / (na * ne)


def component_name(tree: Any, index: int) -> str:
    """The leaf path and entry of component `index` of the flattened `tree` (``.weight[1, 3]``)."""
    for name, leaf in zip(leaf_names(tree), jax.tree.leaves(tree), strict=True):
        size = int(np.size(leaf))
        if index < size:
            entry = np.unravel_index(index, np.shape(leaf))
            return f"{name}[{', '.join(str(int(i)) for i in entry)}]"
        index -= size
    raise IndexError(f"component {index} is past the end of the tree")


def worst_component(actual: Grads, expected: Grads) -> str:
    """``name: a vs e`` for the entry with the largest error at the scale of its leaf."""
    worst: tuple[float, int, Any, Any] | None = None  # (scaled error, index, a, e)
    offset = 0
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a).ravel(), np.asarray(e).ravel()
        if e.size:
            scale = float(np.max(np.abs(e))) or 1.0
            i = int(np.argmax(np.abs(a - e)))
            error = float(np.abs(a[i] - e[i])) / scale
            if worst is None or error > worst[0]:
                worst = (error, offset + i, a[i], e[i])
        offset += e.size
    if worst is None:
        return "no parameters"
    _, index, a_i, e_i = worst
    return f"{component_name(expected, index)}: {a_i:.6g} vs {e_i:.6g}"
