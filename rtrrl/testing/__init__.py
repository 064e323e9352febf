"""Test your own gradient estimator against exact backpropagation through time.

An estimator (`rtrrl.estimators.AbstractGradientEstimator`) returns, at every step ``t``, an
estimate ``ĝ_t`` of ``(d output(h_t)/dθ)ᵀ c_t`` for a cotangent ``c_t``. Summed over a
sequence, an exact estimator gives the gradient of

    L(θ) = Σ_{t=1..T} c_tᵀ output_θ(h_t),        h_t = f_θ(h_{t-1}, x_t),

which `bptt_gradient` computes with `jax.grad` through the unrolled sequence. This module
holds that reference and the checks built on it; the project's own estimator tests use it.

- `check_estimator`: the contract (a state whose PyTree is stable across steps, a gradient
  shaped like the parameters, clear errors for wrongly shaped ``x``, ``hidden`` and
  ``cotangent``, the same results under `jax.jit`, `jax.vmap` and `jax.lax.scan`), and the
  error, cosine similarity and worst entry against BPTT, in an `EstimatorReport`;
- `assert_matches_bptt`: the same, and the sum must equal BPTT (`RTRL`, `TruncatedBPTT`
  with a window covering the sequence);
- `assert_unbiased`: for a stochastic estimator, a Monte-Carlo test that its mean is BPTT's
  gradient (Bonferroni-corrected over the entries);
- building blocks: `sequence_loss`, `bptt_gradient`, `online_gradient`, `assert_grads_close`,
  `relative_error`, `max_relative_error`, `cosine_similarity`.

It needs only the library's own dependencies (no pytest): failures raise `AssertionError`,
which every test runner reports. Enable float64 before building the cell (a ``conftest.py``
with ``jax.config.update("jax_enable_x64", True)``), so that exact estimators are held to
1e-8; in float32 the default tolerances are 1e-4. A test file of your own::

    # tests/test_my_estimator.py  (conftest.py enables jax_enable_x64)
    import jax
    import pytest
    from rtrrl.cells import CTRNN, LRU
    from rtrrl.testing import assert_matches_bptt, assert_unbiased, check_estimator

    from mypkg.estimators import MyRTRL, MyUORO   # yours: MyUORO sets stochastic = True

    CELLS = {"ctrnn": lambda k: CTRNN(2, 4, key=k), "lru": lambda k: LRU(2, 4, key=k)}

    @pytest.mark.parametrize("cell", sorted(CELLS))
    def test_my_rtrl_equals_bptt(cell):
        assert_matches_bptt(MyRTRL(), CELLS[cell](jax.random.key(0)), key=jax.random.key(1))

    @pytest.mark.parametrize("cell", sorted(CELLS))
    def test_my_uoro(cell):
        uoro, model = MyUORO(), CELLS[cell](jax.random.key(0))
        report = check_estimator(uoro, model, key=jax.random.key(2))  # raises on a broken contract
        print(report)                   # error and cosine similarity of one (noisy) sample
        assert_unbiased(uoro, model, key=jax.random.key(3), samples=4096)

`rtrrl.testing` is not imported by ``import rtrrl``: import it in your tests.
"""

from ._check import (
    assert_matches_bptt as assert_matches_bptt,
    check_estimator as check_estimator,
)
from ._compare import (
    assert_grads_close as assert_grads_close,
    cosine_similarity as cosine_similarity,
    max_relative_error as max_relative_error,
    relative_error as relative_error,
)
from ._reference import (
    bptt_gradient as bptt_gradient,
    online_gradient as online_gradient,
    sequence_loss as sequence_loss,
)
from ._report import (
    EstimatorCheckError as EstimatorCheckError,
    EstimatorReport as EstimatorReport,
)
from ._unbiased import (
    UnbiasednessReport as UnbiasednessReport,
    assert_unbiased as assert_unbiased,
    bonferroni_z as bonferroni_z,
)
