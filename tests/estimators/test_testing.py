"""`rtrrl.testing` against estimators whose verdict is known.

The built-in exact estimators pass; estimators written here with one deliberate defect each
(RTRL without the recurrence term, a state that changes between steps, a step that does not
advance the cell, no shape checks, a biased noise) fail the check that should catch that
defect. Fixed keys
make every verdict deterministic.
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from jax.flatten_util import ravel_pytree

from rtrrl.cells import CTRNN, LRU, AbstractCell
from rtrrl.estimators import (
    RFLO,
    RTRL,
    UORO,
    AbstractGradientEstimator,
    Frozen,
    LocalMSE,
    SnAp1,
    TruncatedBPTT,
)
from rtrrl.testing import (
    EstimatorCheckError,
    assert_grads_close,
    assert_matches_bptt,
    assert_unbiased,
    bonferroni_z,
    bptt_gradient,
    check_estimator,
    cosine_similarity,
    max_relative_error,
    relative_error,
)

LENGTH = 6
KEY = jax.random.key(11)


def make_cell(name: str) -> AbstractCell:
    key = jax.random.key(7)
    if name == "lru":
        return LRU(2, 4, key=key, output_size=3)
    cell = CTRNN(2, 4, key=key)
    # A faster time scale, so that the recurrence term carries a large part of the gradient.
    return eqx.tree_at(lambda c: c.raw_tau, cell, cell.raw_tau - 3.0)


# --- estimators written for these tests --------------------------------------------------------


class _DenseState(eqx.Module):
    hidden: jax.Array
    influence: jax.Array  # M_t = dh_t/dθ, (N, P)


class _DenseRTRL(AbstractGradientEstimator[_DenseState]):
    """RTRL for a cell with a real state, from its definition:
    ``M_t = (∂f/∂h) M_{t-1} + ∂f/∂θ``, ``gradient(c) = (∂y/∂θ)ᵀ c + M_tᵀ (∂y/∂h)ᵀ c``.

    ``recurrence=False`` drops ``(∂f/∂h) M_{t-1}`` (the defect `check_estimator` must see);
    ``validate=False`` skips the shape checks (``init`` then accepts any ``x``).
    """

    recurrence: bool = True
    validate: bool = True

    def _check(self, cell, method, hidden, x):
        if self.validate:
            cell.check_step_inputs(hidden, x, caller=f"_DenseRTRL.{method}")

    def init(self, cell, hidden, x, *, key=None):
        self._check(cell, "init", hidden, x)
        flat, _ = ravel_pytree(eqx.filter(cell, eqx.is_inexact_array))
        return _DenseState(hidden, jnp.zeros((hidden.shape[0], flat.shape[0]), hidden.dtype))

    def step(self, cell, hidden, x, state, *, key=None):
        self._check(cell, "step", hidden, x)
        params, static = eqx.partition(cell, eqx.is_inexact_array)
        flat, unravel = ravel_pytree(params)
        f = lambda p, h: eqx.combine(unravel(p), static)(h, x)  # noqa: E731
        influence = jax.jacfwd(f)(flat, hidden)
        if self.recurrence:
            influence = influence + jax.jacfwd(f, argnums=1)(flat, hidden) @ state.influence
        next_hidden = cell(hidden, x)
        return next_hidden, _DenseState(next_hidden, influence)

    def gradient(self, cell, state, cotangent):
        if self.validate:
            cell.check_features(cotangent, name="cotangent", caller="_DenseRTRL.gradient")
        params, static = eqx.partition(cell, eqx.is_inexact_array)
        flat, unravel = ravel_pytree(params)
        y = lambda p, h: eqx.combine(unravel(p), static).output(h)  # noqa: E731
        _, vjp = jax.vjp(y, flat, state.hidden)
        g_params, g_hidden = vjp(cotangent)
        return unravel(g_params + g_hidden @ state.influence)


class _Unstable(_DenseRTRL):
    """Exact gradients, but a state that changes between steps: a history tuple that grows
    (``"structure"``), or a hidden state stored in float32 after the first step (``"dtype"``)."""

    defect: str = "structure"

    def init(self, cell, hidden, x, *, key=None):
        return super().init(cell, hidden, x), ()

    def step(self, cell, hidden, x, state, *, key=None):
        inner, history = state
        next_hidden, inner = super().step(cell, hidden, x, inner)
        if self.defect == "structure":
            return next_hidden, (inner, (*history, hidden))
        return next_hidden, (
            eqx.tree_at(lambda s: s.hidden, inner, inner.hidden.astype(jnp.float32)),
            history,
        )

    def gradient(self, cell, state, cotangent):
        return super().gradient(cell, state[0], cotangent)


class _StaleHidden(_DenseRTRL):
    """``step`` hands back the hidden state it was given instead of the cell's next one."""

    def step(self, cell, hidden, x, state, *, key=None):
        return hidden, super().step(cell, hidden, x, state)[1]


class _NoisyState(eqx.Module):
    inner: Any
    noise: jax.Array  # (P,), this step's noise


class _NoisyRTRL(AbstractGradientEstimator[_NoisyState]):
    """A toy stochastic estimator: RTRL's exact gradient plus ``ε_t + bias`` in every entry,
    with ``ε_t ∈ {-1, +1}^P`` Rademacher signs drawn with the step's key. Unbiased if and
    only if ``bias == 0``."""

    stochastic: ClassVar[bool] = True
    bias: float = 0.0

    def init(self, cell, hidden, x, *, key):
        flat, _ = ravel_pytree(eqx.filter(cell, eqx.is_inexact_array))
        return _NoisyState(RTRL().init(cell, hidden, x), jnp.zeros_like(flat))

    def step(self, cell, hidden, x, state, *, key):
        hidden, inner = RTRL().step(cell, hidden, x, state.inner)
        signs = jax.random.rademacher(key, state.noise.shape, state.noise.dtype)
        return hidden, _NoisyState(inner, signs + self.bias)

    def gradient(self, cell, state, cotangent):
        flat, unravel = ravel_pytree(RTRL().gradient(cell, state.inner, cotangent))
        return unravel(flat + state.noise)


# --- (a) exact estimators pass ------------------------------------------------------------------

EXACT = {
    "rtrl-ctrnn": (RTRL(), "ctrnn"),
    "rtrl-lru": (RTRL(), "lru"),
    "tbptt-full-ctrnn": (TruncatedBPTT(LENGTH), "ctrnn"),
    "tbptt-full-lru": (TruncatedBPTT(LENGTH), "lru"),
    "snap1-lru": (SnAp1(), "lru"),  # a diagonal recurrence: SnAp-1 is RTRL there
    "dense-rtrl-written-here": (_DenseRTRL(), "ctrnn"),
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_estimators_pass_assert_matches_bptt(name, without_runtime_type_checks):
    """Without the suite's type checks, so the shape checks see the library's own errors."""
    estimator, cell_name = EXACT[name]
    report = assert_matches_bptt(estimator, make_cell(cell_name), key=KEY, length=LENGTH)
    assert report.passed and all(report.checks.values())
    assert set(report.checks) >= {"state_structure", "shape_errors", "jit", "vmap", "scan"}
    assert report.checks["matches_bptt"] is True
    assert report.max_relative_error < 1e-10
    assert report.cosine_similarity > 1 - 1e-12


@pytest.mark.parametrize(
    ("estimator", "cell_name"),
    [(RFLO(), "ctrnn"), (LocalMSE(), "lru"), (TruncatedBPTT(2), "ctrnn")],
    ids=["rflo", "local-mse", "tbptt-2"],
)
def test_approximations_keep_the_contract_and_report_their_error(estimator, cell_name):
    cell = make_cell(cell_name)
    report = check_estimator(estimator, cell, key=KEY, length=LENGTH)
    assert report.passed and "matches_bptt" not in report.checks
    assert 1e-3 < report.relative_error < 1.0 and 0.0 < report.cosine_similarity < 1 - 1e-6
    with pytest.raises(EstimatorCheckError, match="FAILED matches_bptt"):
        assert_matches_bptt(estimator, cell, key=KEY, length=LENGTH)


def test_frozen_keeps_the_contract_with_a_zero_gradient(without_runtime_type_checks):
    """The echo-state estimator: shapes are checked like every other estimator's, and its
    gradient is zero (relative error 1 against any non-zero reference)."""
    report = check_estimator(Frozen(), make_cell("ctrnn"), key=KEY, length=LENGTH)
    assert report.passed and report.relative_error == pytest.approx(1.0)


# --- (b) deliberate defects fail the check that should catch them -------------------------------


def test_dropped_recurrence_fails_assert_matches_bptt():
    with pytest.raises(AssertionError, match=r"FAILED matches_bptt: .*vs BPTT") as info:
        assert_matches_bptt(_DenseRTRL(recurrence=False), make_cell("ctrnn"), key=KEY)
    report = info.value.report
    assert report.failures.keys() == {"matches_bptt"}  # every structural check passes
    assert report.relative_error > 0.3 and report.cosine_similarity < 0.9


def test_check_estimator_reports_the_dropped_recurrence():
    cell = make_cell("ctrnn")
    wrong = check_estimator(_DenseRTRL(recurrence=False), cell, key=KEY)
    right = check_estimator(_DenseRTRL(), cell, key=KEY)
    assert wrong.passed  # not asked to be exact: the error is reported, not asserted
    assert wrong.relative_error > 0.3 and wrong.max_relative_error > 0.3
    assert wrong.cosine_similarity < 0.9
    assert right.relative_error < 1e-12 and right.cosine_similarity > 1 - 1e-12
    with pytest.raises(AssertionError, match="must equal BPTT"):
        assert_unbiased(_DenseRTRL(recurrence=False), cell, key=KEY)


@pytest.mark.parametrize("defect", ["structure", "dtype"])
def test_a_state_that_changes_between_steps_fails_the_stability_check(defect):
    with pytest.raises(AssertionError, match="FAILED state_structure: the state") as info:
        check_estimator(_Unstable(defect=defect), make_cell("ctrnn"), key=KEY)
    checks = info.value.report.checks
    assert checks["state_structure"] is False
    assert checks["scan"] is None and checks["vmap"] is None  # skipped: they need a stable state
    assert "after step 1" in str(info.value)


def test_a_step_that_does_not_advance_the_cell_fails_the_hidden_check():
    with pytest.raises(AssertionError, match="FAILED hidden: h_T returned by step") as info:
        check_estimator(_StaleHidden(), make_cell("ctrnn"), key=KEY)
    assert info.value.report.failures.keys() == {"hidden"}


def test_an_estimator_without_shape_checks_fails_the_shape_check():
    with pytest.raises(
        AssertionError, match=r"_DenseRTRL\.init accepted `x` of shape \(3,\)"
    ) as info:
        check_estimator(_DenseRTRL(validate=False), make_cell("ctrnn"), key=KEY)
    assert info.value.report.failures.keys() == {"shape_errors"}
    report = check_estimator(
        _DenseRTRL(validate=False), make_cell("ctrnn"), key=KEY, check_shape_errors=False
    )
    assert report.passed and "shape_errors" not in report.checks


# --- (c) unbiasedness -----------------------------------------------------------------------------


def test_unbiased_noise_passes_assert_unbiased():
    cell = make_cell("ctrnn")
    report = assert_unbiased(_NoisyRTRL(), cell, key=KEY, length=LENGTH)
    assert report.samples == 1024 and report.components == 32
    assert 0.0 < report.max_z_score <= report.z_threshold
    contract = check_estimator(_NoisyRTRL(), cell, key=KEY, length=LENGTH)
    assert contract.passed and contract.cosine_similarity < 0.99  # one sample is noisy


def test_biased_noise_fails_assert_unbiased():
    with pytest.raises(AssertionError, match="differs from BPTT's gradient") as info:
        assert_unbiased(_NoisyRTRL(bias=0.1), make_cell("ctrnn"), key=KEY, length=LENGTH)
    assert info.value.report.max_z_score > info.value.report.z_threshold


@pytest.mark.parametrize("cell_name", ["ctrnn", "lru"])
def test_uoro_keeps_the_contract_and_is_unbiased(cell_name):
    """The built-in stochastic estimator, through the same checks as a user's."""
    cell = make_cell(cell_name)
    assert check_estimator(UORO(), cell, key=KEY, length=LENGTH).passed
    report = assert_unbiased(UORO(), cell, key=KEY, length=LENGTH, samples=2048)
    assert report.max_z_score <= report.z_threshold


def test_deterministic_exact_estimators_pass_assert_unbiased():
    for cell_name in ("ctrnn", "lru"):
        report = assert_unbiased(RTRL(), make_cell(cell_name), key=KEY)
        assert report.samples == 1 and report.relative_bias < 1e-12


def test_exact_needs_a_deterministic_estimator():
    with pytest.raises(ValueError, match="stochastic: use assert_unbiased"):
        check_estimator(_NoisyRTRL(), make_cell("ctrnn"), key=KEY, exact=True)


# --- the building blocks ---------------------------------------------------------------------------


def test_measures_on_known_trees():
    e = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([4.0])}
    a = {"a": jnp.array([3.0, 1.0]), "b": jnp.array([4.0])}
    assert relative_error(a, e) == pytest.approx(0.2)
    assert max_relative_error(a, e) == pytest.approx(1 / 3)
    assert cosine_similarity(a, e) == pytest.approx(5 / 26**0.5)
    assert cosine_similarity(e, e) == pytest.approx(1.0)
    assert bonferroni_z(0.05, 1) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(AssertionError, match=r"leaf \['a'\]"):
        assert_grads_close(a, e, rtol=1e-3)
    with pytest.raises(AssertionError, match="structures differ"):
        assert_grads_close({"a": e["a"]}, e, rtol=1e-3)


def test_bptt_gradient_refuses_wrong_shapes(without_runtime_type_checks):
    cell = make_cell("ctrnn")
    xs, cs = jnp.zeros((LENGTH, 2)), jnp.zeros((LENGTH, 4))
    with pytest.raises(ValueError, match=r"`inputs` must have shape \(T, 2\)"):
        bptt_gradient(cell, cell.init_hidden(), xs[:, :1], cs)
    with pytest.raises(ValueError, match=r"`cotangents` must have shape \(6, 4\)"):
        bptt_gradient(cell, cell.init_hidden(), xs, cs[1:])
    with pytest.raises(ValueError, match=r"`hidden0` must have shape \(4,\)"):
        bptt_gradient(cell, jnp.zeros(5), xs, cs)


# --- (d) no test-runner dependency ------------------------------------------------------------------


def test_import_without_pytest():
    """`rtrrl.testing` imports in a process where importing pytest fails."""
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "import rtrrl.testing\n"
        "assert '_pytest' not in sys.modules, 'pytest internals were imported'\n"
        "print(rtrrl.testing.__file__)"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(root / "rtrrl" / "testing")
