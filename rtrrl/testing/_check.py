"""`check_estimator`: an estimator's contract, and its accuracy against BPTT, in one call."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._types import Array, Grads, Hidden, PRNGKey
from ..cells import AbstractCell
from ..estimators import AbstractGradientEstimator, key_argument
from ._compare import (
    assert_grads_close,
    consistency_rtol,
    cosine_similarity,
    default_rtol,
    max_relative_error,
    relative_error,
    worst_component,
)
from ._reference import (
    bptt_gradient,
    data_dtype,
    online_steps,
    random_sequence,
    sequence_loss,
    step_keys,
)
from ._report import Checks, EstimatorCheckError, EstimatorReport
from ._structure import gradient_layout, shape_errors, state_stability


def _run(
    estimator: AbstractGradientEstimator,
    cell: AbstractCell,
    hidden0: Hidden,
    xs: Array,
    cs: Array,
    key: PRNGKey | None,
) -> tuple[Hidden, Grads, Array]:
    """``(h_T, per-step gradients, gradient_norm_squared at the last step)``."""
    hidden, state, grads = online_steps(estimator, cell, hidden0, xs, cs, key)
    return hidden, grads, estimator.gradient_norm_squared(cell, state, cs[-1])


_run_jit = eqx.filter_jit(_run)


@eqx.filter_jit
def _run_batch(estimator, cell, hidden0, xs, cs, keys):
    return jax.vmap(lambda x, c, k: _run(estimator, cell, hidden0, x, c, k))(xs, cs, keys)


@eqx.filter_jit
def _reference(cell: AbstractCell, hidden0: Hidden, xs: Array, cs: Array) -> tuple[Hidden, Grads]:
    return sequence_loss(cell, hidden0, xs, cs)[1], bptt_gradient(cell, hidden0, xs, cs)


def _eager_first_step(estimator, cell, hidden0, xs, cs, key) -> Grads:
    """The gradient at step 1 without `jax.jit`, for comparison with the compiled run."""
    init_key, keys = step_keys(key, len(xs)) if key is not None else (None, None)
    state = estimator.init(cell, hidden0, xs[0], **key_argument(estimator, init_key))
    k = None if keys is None else keys[0]
    _, state = estimator.step(cell, hidden0, xs[0], state, **key_argument(estimator, k))
    return estimator.gradient(cell, state, cs[0])


def _close(actual: Any, expected: Any, rtol: float, what: str) -> str | None:
    try:
        assert_grads_close(actual, expected, rtol=rtol, err_msg=f"{what}: ")
    except AssertionError as error:
        return str(error).strip()
    return None


def _matches(estimate: Grads, reference: Grads, rtol: float, errors: tuple) -> str | None:
    """`assert_grads_close`'s verdict on the summed estimate, with the measures up front."""
    problem = _close(estimate, reference, rtol, "Σ_t ĝ_t vs BPTT")
    if problem is None:
        return None
    relative, largest, cosine, worst = errors
    return (
        f"Σ_t ĝ_t differs from BPTT's gradient beyond rtol={rtol:g}: max relative error "
        f"{largest:.3g} at {worst} (estimate vs BPTT), relative error {relative:.3g}, cosine "
        f"similarity {cosine:.6f}. {problem}"
    )


def _total(grads: Grads) -> Grads:
    return jax.tree.map(lambda g: g.sum(0), grads)


def _static_checks(checks, estimator, cell, hidden0, xs, cs, key, shapes: bool) -> None:
    """The checks that trace without computing: state stability, gradient layout, shapes."""
    keys = step_keys(key, len(xs)) if key is not None else (None, None)
    checks.run("state_structure", lambda: state_stability(estimator, cell, hidden0, xs, keys))

    def layout() -> str | None:
        kw_init = key_argument(estimator, keys[0])
        kw_step = key_argument(estimator, None if keys[1] is None else keys[1][0])
        state = eqx.filter_eval_shape(
            lambda: estimator.step(
                cell, hidden0, xs[0], estimator.init(cell, hidden0, xs[0], **kw_init), **kw_step
            )[1]
        )
        return gradient_layout(estimator, cell, state, cs[0])

    checks.run("gradient_structure", layout)
    if shapes:
        checks.run(
            "shape_errors", lambda: shape_errors(estimator, cell, hidden0, xs[0], cs[0], key)
        )


def _compiled_checks(checks, estimator, cell, hidden0, xs, cs, keys, ref_hidden) -> Grads | None:
    """jit + scan, vmap, eager agreement, gradient_norm_squared; the first sequence's sum."""
    tight = consistency_rtol(xs.dtype)
    key_of = (lambda b: keys[b]) if estimator.stochastic else (lambda b: None)
    runs: list[Any] = []
    checks.run(
        "scan",
        lambda: runs.extend(
            _run_jit(estimator, cell, hidden0, xs[b], cs[b], key_of(b)) for b in range(len(xs))
        ),
        needs=("state_structure",),
    )
    if not checks.results["scan"]:
        for name in ("hidden", "jit", "vmap", "gradient_norm_squared"):
            checks.run(name, lambda: None, needs=("scan",))
        return None
    hidden, grads, norm_sq = runs[0]
    checks.run(
        "hidden",
        lambda: _close(hidden, ref_hidden, tight, "h_T returned by step vs the cell's own unroll"),
    )

    def eager() -> str | None:
        g1 = _eager_first_step(estimator, cell, hidden0, xs[0], cs[0], key_of(0))
        first = jax.tree.map(lambda g: g[0], grads)
        return _close(g1, first, tight, "gradient at step 1 without jit vs under jit and scan")

    checks.run("jit", eager)

    def batched() -> str | None:
        batch_keys = keys if estimator.stochastic else None
        out = _run_batch(estimator, cell, hidden0, xs, cs, batch_keys)
        for b, run in enumerate(runs):
            problem = _close(
                jax.tree.map(lambda o, b=b: o[b], out),
                run,
                tight,
                f"vmap over {len(xs)} sequences, sequence {b}, vs that sequence alone",
            )
            if problem:
                return problem
        return None

    checks.run("vmap", batched)
    expected_sq = sum((jnp.sum(jnp.abs(g[-1]) ** 2) for g in jax.tree.leaves(grads)), 0.0)
    checks.run(
        "gradient_norm_squared",
        lambda: _close(
            norm_sq,
            jnp.asarray(expected_sq, norm_sq.dtype),
            tight,
            "gradient_norm_squared vs ‖gradient‖² at the last step",
        ),
    )
    return _total(grads)


def _validate(estimator: AbstractGradientEstimator, exact: Any, length: Any, batch: Any) -> None:
    if exact and estimator.stochastic:
        raise ValueError(
            f"check_estimator: exact=True needs a deterministic estimator, but "
            f"{type(estimator).__name__} is stochastic: use assert_unbiased."
        )
    for name, value, least in (("length", length, 1), ("batch", batch, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"check_estimator: `{name}` must be an int >= {least}, got {value!r}.")


def _measures(estimate: Grads | None, reference: Grads) -> tuple[float, float, float, str]:
    """relative error, max relative error, cosine similarity, worst entry (nan: not run)."""
    if estimate is None:
        return float("nan"), float("nan"), float("nan"), "not run"
    return (
        relative_error(estimate, reference),
        max_relative_error(estimate, reference),
        cosine_similarity(estimate, reference),
        worst_component(estimate, reference),
    )


def check_estimator(
    estimator: AbstractGradientEstimator,
    cell: AbstractCell,
    *,
    key: PRNGKey,
    length: int = 8,
    batch: int = 2,
    exact: bool | None = None,
    rtol: float | None = None,
    check_shape_errors: bool = True,
    raise_on_failure: bool = True,
) -> EstimatorReport:
    r"""Check that `estimator` keeps the estimator contract on `cell`, and measure its accuracy.

    From `key`: ``batch`` random sequences of ``length`` standard-normal inputs ``x_t`` and
    cotangents ``c_t`` (in `data_dtype`: float64 for a cell built with ``jax_enable_x64``,
    else float32 with looser default tolerances), starting at ``cell.init_hidden()``, and for a
    stochastic estimator (``stochastic = True``) one fresh key per ``init`` and per ``step``.
    The first sequence's online sum ``ĝ = Σ_t estimator.gradient(cell, state_t, c_t)`` is
    compared with `bptt_gradient`'s ``g = ∇_θ Σ_t c_tᵀ output(h_t)``.

    **Checks** (the names in ``report.checks``):

    - ``state_structure``: the state after ``init`` and after each of the first steps has one
      PyTree structure, shapes and dtypes, and ``step``'s hidden state is shaped like the
      cell's (what `lax.scan` and episode resets with `jnp.where` need);
    - ``gradient_structure``: ``gradient`` is shaped like ``eqx.filter(cell,
      eqx.is_inexact_array)`` and ``gradient_norm_squared`` is a real scalar;
    - ``shape_errors``: ``x`` (``init``, ``step``), ``hidden`` (``step``) and ``cotangent``
      (``gradient``, ``gradient_norm_squared``) with one entry too many or a leading batch
      axis raise `ValueError` or `TypeError` (``check_shape_errors=False`` skips it);
    - ``scan``: every sequence runs under `jax.jit` and `jax.lax.scan`;
    - ``hidden``: the ``h_T`` that ``step`` returns is the cell's own unroll;
    - ``jit``: the first step's gradient is the same without `jax.jit`;
    - ``vmap``: `jax.vmap` over the batch of sequences gives each sequence's own result;
    - ``gradient_norm_squared``: equals ``‖gradient‖²`` at the last step;
    - ``matches_bptt`` (only with ``exact=True``): ``|ĝ - g| <= rtol·|g| + rtol·max|g_leaf|``
      for every entry (``rtol`` defaults to 1e-8 in float64, 1e-4 in float32).

    The run-to-run checks (``hidden``, ``jit``, ``vmap``, ``gradient_norm_squared``) allow
    1e-10 (float64) or 1e-4 (float32) for XLA's reordering. With ``exact=None`` (the default)
    or ``False`` the error against BPTT is only reported: an approximate estimator (RFLO,
    truncated BPTT, one sample of a stochastic one) is judged by the numbers, and a stochastic
    one by `assert_unbiased`. ``exact=True`` needs a deterministic estimator.

    **Returns** an `EstimatorReport`. **Raises** `EstimatorCheckError` (an `AssertionError`
    whose message lists every failed check, with the report attached as ``.report``) when a
    check fails, unless ``raise_on_failure=False``.
    """
    _validate(estimator, exact, length, batch)
    dtype = data_dtype(cell)
    rtol = default_rtol(dtype) if rtol is None else rtol
    xs, cs, keys = random_sequence(cell, key, length, batch)
    hidden0 = cell.init_hidden()
    first_key = keys[0] if estimator.stochastic else None
    checks = Checks()
    _static_checks(checks, estimator, cell, hidden0, xs[0], cs[0], first_key, check_shape_errors)
    ref_hidden, reference = _reference(cell, hidden0, xs[0], cs[0])
    estimate = _compiled_checks(checks, estimator, cell, hidden0, xs, cs, keys, ref_hidden)
    errors = _measures(estimate, reference)
    if exact:
        needs = () if estimate is not None else ("scan",)
        checks.run("matches_bptt", lambda: _matches(estimate, reference, rtol, errors), needs=needs)
    report = EstimatorReport(
        type(estimator).__name__,
        type(cell).__name__,
        length,
        str(np.dtype(dtype)),
        *errors,
        checks=checks.results,
        messages=checks.messages,
    )
    if raise_on_failure and not report.passed:
        raise EstimatorCheckError(str(report), report)
    return report


def assert_matches_bptt(
    estimator: AbstractGradientEstimator,
    cell: AbstractCell,
    *,
    key: PRNGKey,
    rtol: float | None = None,
    length: int = 8,
    batch: int = 2,
    check_shape_errors: bool = True,
) -> EstimatorReport:
    """Assert that a deterministic, exact estimator's summed gradient equals BPTT's.

    `check_estimator` with ``exact=True``: every structural check, and
    ``|Σ_t ĝ_t - g| <= rtol·|g| + rtol·max|g_leaf|`` for each entry of each leaf against
    `bptt_gradient`'s ``g`` (``rtol``: 1e-8 in float64, 1e-4 in float32). For `RTRL` and for
    `TruncatedBPTT` with ``window >= length``. Raises `EstimatorCheckError` (an
    `AssertionError`) naming the worst entry; returns the `EstimatorReport`.
    """
    return check_estimator(
        estimator,
        cell,
        key=key,
        length=length,
        batch=batch,
        exact=True,
        rtol=rtol,
        check_shape_errors=check_shape_errors,
    )
