"""`assert_unbiased`: a Monte-Carlo test that a stochastic estimator's mean is the exact gradient."""

import dataclasses
import math
import statistics
from typing import cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._types import Array, Grads, PRNGKey
from ..cells import AbstractCell
from ..estimators import AbstractGradientEstimator
from ._compare import assert_grads_close, component_name, default_rtol
from ._reference import bptt_gradient, data_dtype, online_gradient, random_sequence
from ._report import EstimatorCheckError

_CHUNK = 256  # samples per compiled call (one compilation when `samples` is a multiple)


@dataclasses.dataclass(frozen=True)
class UnbiasednessReport:
    """What `assert_unbiased` measured over ``samples`` independent runs of ``components``
    gradient entries, with ``m`` the sample mean, ``s`` its standard error and ``g`` BPTT's
    gradient:

    - ``max_abs_bias``: the largest ``|m_i - g_i|``;
    - ``max_z_score``: the largest ``(|m_i - g_i| - atol)⁺ / s_i`` over entries with noise
      (``s_i > 0``); the test fails when it exceeds ``z_threshold``, or when an entry without
      noise is off by more than ``atol``;
    - ``relative_bias``: ``‖m - g‖ / ‖g‖``.

    A deterministic estimator's report has ``samples = 1`` and ``z_threshold = 0``.
    """

    estimator: str
    cell: str
    samples: int
    components: int
    z_threshold: float
    atol: float
    max_abs_bias: float
    max_z_score: float
    relative_bias: float


@eqx.filter_jit
def _samples(estimator, cell, hidden0, xs, cs, keys) -> Array:
    """``(len(keys), P)``: the summed gradient of each key's run, flattened."""

    def one(key: PRNGKey) -> Array:
        grads = online_gradient(estimator, cell, hidden0, xs, cs, key=key)[1]
        leaves = [leaf.ravel() for leaf in jax.tree.leaves(grads)]
        return jnp.concatenate(leaves) if leaves else jnp.zeros(0, xs.dtype)

    return jax.vmap(one)(keys)


def _mean_and_stderr(chunks) -> tuple[np.ndarray, np.ndarray, int]:
    """Sample mean and standard error of the mean, merging chunks (Chan et al. 1979)."""
    n, mean, m2 = 0, 0.0, 0.0
    for chunk in chunks:
        x = np.asarray(chunk, np.float64)
        b, chunk_mean = len(x), x.mean(0)
        delta, total = chunk_mean - mean, n + len(x)
        m2 = m2 + ((x - chunk_mean) ** 2).sum(0) + delta**2 * n * b / total
        mean, n = mean + delta * b / total, total
    # Arrays after the first chunk (there is always one); 0.0 only types the start.
    return cast(np.ndarray, mean), np.sqrt(m2 / (n - 1) / n), n


def bonferroni_z(alpha: float, components: int) -> float:
    """``z = Φ⁻¹(1 - alpha / (2·components))``: two-sided tests of ``components`` means, each
    at level ``alpha / components``, so that by the union bound an unbiased estimator fails
    one of them with probability at most ``alpha`` (whatever their correlations)."""
    return statistics.NormalDist().inv_cdf(1.0 - alpha / (2 * max(components, 1)))


def _describe(reference: Grads, index: int, mean, exact, stderr) -> str:
    z = abs(mean[index] - exact[index]) / stderr[index] if stderr[index] > 0 else math.inf
    return (
        f"{component_name(reference, index)}: mean {mean[index]:.6g} ± {stderr[index]:.3g} "
        f"(stderr), exact {exact[index]:.6g}, |bias|/stderr = {z:.3g}"
    )


def assert_unbiased(
    estimator: AbstractGradientEstimator,
    cell: AbstractCell,
    *,
    key: PRNGKey,
    samples: int = 1024,
    length: int = 6,
    alpha: float = 1e-3,
    atol: float | None = None,
    rtol: float | None = None,
) -> UnbiasednessReport:
    r"""Assert that ``E[Σ_t estimator.gradient(cell, state_t, c_t)]`` is BPTT's gradient ``g``.

    One random sequence (inputs, cotangents) is drawn from `key`; the estimator runs over it
    ``samples`` times, each run with its own key (split into one key per ``init`` and per
    ``step``), batched with `jax.vmap` in chunks of 256. For each of the ``P`` entries ``i``
    of the flattened gradient, with sample mean ``m_i`` and standard error
    ``s_i = std_i / √samples``, it fails if

        |m_i - g_i| > z · s_i + atol,      z = Φ⁻¹(1 - alpha / (2P))      (Bonferroni),

    so an unbiased estimator fails with probability at most ``alpha`` (the sample mean is
    close to normal at these sample sizes; the union bound needs no independence between
    entries). ``atol`` (default ``1e-8 · max|g|``, ``1e-4 · max|g|`` in float32) absorbs
    rounding in entries without noise. A bias ``b_i`` is found reliably once
    ``|b_i| > (z + 2) · std_i / √samples``: raise ``samples`` for a noisy estimator. With
    fixed keys the test is deterministic.

    A deterministic estimator (``stochastic = False``) has no variance: its summed gradient is
    compared with ``g`` directly, within ``rtol`` as in `assert_matches_bptt`.

    **Returns** an `UnbiasednessReport`; **raises** `EstimatorCheckError` (an
    `AssertionError`, the report attached) naming the most biased entries.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ValueError(f"assert_unbiased: `samples` must be an int >= 2, got {samples!r}.")
    xs, cs, _ = random_sequence(cell, key, length, 1)
    xs, cs, hidden0 = xs[0], cs[0], cell.init_hidden()
    exact_tree = eqx.filter_jit(bptt_gradient)(cell, hidden0, xs, cs)
    exact = _flat(exact_tree)
    small = default_rtol(data_dtype(cell))
    atol = small * float(np.max(np.abs(exact), initial=0.0)) if atol is None else atol
    if not estimator.stochastic:
        estimate = eqx.filter_jit(online_gradient)(estimator, cell, hidden0, xs, cs)[1]
        return _deterministic(
            estimator, cell, estimate, exact_tree, small if rtol is None else rtol
        )
    keys = jax.random.split(jax.random.fold_in(key, 1), samples)
    chunks = (
        _samples(estimator, cell, hidden0, xs, cs, keys[i : i + _CHUNK])
        for i in range(0, samples, _CHUNK)
    )
    mean, stderr, _ = _mean_and_stderr(chunks)
    z = bonferroni_z(alpha, exact.size)
    bias = np.abs(mean - exact)
    noisy = stderr > 0
    report = _report(estimator, cell, samples, z, atol, mean, exact)
    excess = np.maximum(bias - atol, 0.0)
    report = dataclasses.replace(
        report, max_z_score=float((excess[noisy] / stderr[noisy]).max(initial=0.0))
    )
    failed = np.flatnonzero(bias > z * stderr + atol)
    if failed.size:
        order = failed[np.argsort(-(bias[failed] - atol) / np.maximum(stderr[failed], 1e-300))]
        worst = "\n  ".join(_describe(exact_tree, int(i), mean, exact, stderr) for i in order[:5])
        raise EstimatorCheckError(
            f"assert_unbiased: {report.estimator} on {report.cell}: the mean of {samples} "
            f"samples differs from BPTT's gradient in {failed.size} of {exact.size} entries by "
            f"more than z·stderr + atol (z = {z:.3g}, Bonferroni at alpha = {alpha:g}; "
            f"atol = {atol:.3g}):\n  {worst}",
            report,
        )
    return report


def _flat(tree: Grads) -> np.ndarray:
    return np.concatenate([np.ravel(g) for g in jax.tree.leaves(tree)] or [np.zeros(0)])


def _report(estimator, cell, samples, z, atol, mean, exact) -> UnbiasednessReport:
    """The report of a mean against the exact gradient (``max_z_score`` left at 0)."""
    norm = float(np.linalg.norm(exact))
    return UnbiasednessReport(
        estimator=type(estimator).__name__,
        cell=type(cell).__name__,
        samples=samples,
        components=exact.size,
        z_threshold=z,
        atol=atol,
        max_abs_bias=float(np.abs(mean - exact).max(initial=0.0)),
        max_z_score=0.0,
        relative_bias=float(np.linalg.norm(mean - exact)) / norm if norm > 0 else 0.0,
    )


def _deterministic(estimator, cell, estimate, exact_tree, rtol: float) -> UnbiasednessReport:
    """No variance: the one estimate must equal BPTT's gradient (`assert_grads_close`)."""
    report = _report(estimator, cell, 1, 0.0, 0.0, _flat(estimate), _flat(exact_tree))
    try:
        assert_grads_close(estimate, exact_tree, rtol=rtol)
    except AssertionError as error:
        raise EstimatorCheckError(
            f"assert_unbiased: {report.estimator} on {report.cell} is deterministic (no "
            f"variance), so it must equal BPTT's gradient: {str(error).strip()}",
            report,
        ) from None
    return report
