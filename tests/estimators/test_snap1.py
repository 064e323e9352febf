r"""SnAp-1 (Menick et al. 2021) against `jax.grad` of BPTT, RTRL and RFLO, in float64.

SnAp-1 carries the influence entries in the pattern of ``∂f/∂θ`` through the diagonal of the
recurrent Jacobian ``J``. What that implies, and what is checked here:

- ``J`` diagonal ⇒ SnAp-1 is exact: the `LRU` (``J = diag(λ)``), a `CTRNN` whose recurrent
  block is diagonal, and a diagonal tanh cell served by the generic form;
- on a `CTRNN`, ``J_ii = (1 - r_i) + r_i (1 - a_i²) W̃_ii`` where RFLO carries ``1 - r_i``
  with the same immediate terms, so SnAp-1 equals RFLO when ``diag(W̃_rec) = 0`` (proof in
  ``ctrnn_snap1_step``), and differs otherwise;
- the CTRNN kernel equals the generic dense form (every wiring), and on random CTRNNs the mean
  relative error to BPTT orders RTRL ≤ SnAp-1 ≤ RFLO;
- SnAp-1 runs inside `RTRRL` (from the CLI name ``snap1``) and `fit_sequence`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _test_cells import ComplexParams

from rtrrl import fit_sequence
from rtrrl.app.config import TrainConfig, build_algorithm, build_env
from rtrrl.cells import CTRNN, GRU, LRU, LSTM, NCP, AbstractCell, Identity, RandomSparse
from rtrrl.estimators import (
    RFLO,
    RTRL,
    IncompatibleCellError,
    LRURTRLState,
    RFLOState,
    RTRLState,
    SnAp1,
)
from rtrrl.testing import bptt_gradient

INPUT, HIDDEN, T = 2, 4, 6
SNAP1 = {"snap1": SnAp1(), "snap1-generic": SnAp1(structured=False)}


def make_ctrnn(wiring: str = "dense", seed: int = 7) -> CTRNN:
    key = jax.random.key(seed)
    wirings = {"dense": None, "sparse": RandomSparse(0.6), "ncp": NCP(1)}
    cell = CTRNN(INPUT, HIDDEN, key=key, wiring=wirings[wiring], tau_range=(1.5, 3.0))
    # Non-zero biases and strong self-connections make every term of the carry matter.
    weight = cell.masked_weight.at[:, -1].set(0.3)
    diagonal = jnp.arange(HIDDEN), INPUT + jnp.arange(HIDDEN)
    weight = weight.at[diagonal].set(jnp.array([0.9, -0.7, 1.2, 0.5]))
    return eqx.tree_at(lambda c: c.weight, cell, weight)


def recurrent_block(cell: CTRNN, keep: str) -> CTRNN:
    """The cell with only the diagonal (``keep="diagonal"``) or only the off-diagonal
    (``keep="off-diagonal"``) part of its recurrent block."""
    block = slice(cell.input_size, cell.input_size + cell.hidden_size)
    recurrent = cell.weight[:, block]
    eye = jnp.eye(cell.hidden_size, dtype=bool)
    kept = jnp.where(eye if keep == "diagonal" else ~eye, recurrent, 0.0)
    return eqx.tree_at(lambda c: c.weight, cell, cell.weight.at[:, block].set(kept))


class _DiagonalTanh(AbstractCell):
    """``h_t = tanh(a ⊙ h_{t-1} + W x_t + b)``: a nonlinear cell with a diagonal Jacobian and
    no registered kernel (the generic form serves it)."""

    a: jax.Array
    weight: jax.Array
    bias: jax.Array
    input_size: int = eqx.field(static=True, default=INPUT)
    hidden_size: int = eqx.field(static=True, default=HIDDEN)

    @property
    def feature_size(self) -> int:
        return self.hidden_size

    def init_hidden(self):
        return jnp.zeros((self.hidden_size,), self.a.dtype)

    def __call__(self, hidden, x):
        return jnp.tanh(self.a * hidden + self.weight @ x + self.bias)

    def output(self, hidden):
        return hidden


def diagonal_tanh() -> _DiagonalTanh:
    k_a, k_w = jax.random.split(jax.random.key(2))
    return _DiagonalTanh(
        jax.random.uniform(k_a, (HIDDEN,), minval=-1.5, maxval=1.5),
        jax.random.normal(k_w, (HIDDEN, INPUT)),
        jnp.full((HIDDEN,), 0.2),
    )


def data(cell: AbstractCell, seed: int = 0, steps: int = T):
    kx, kc = jax.random.split(jax.random.key(seed))
    return (
        jax.random.normal(kx, (steps, cell.input_size)),
        jax.random.normal(kc, (steps, cell.feature_size)),
    )


def flat(tree) -> jax.Array:
    return jnp.concatenate([leaf.ravel() for leaf in jax.tree.leaves(tree)])


@eqx.filter_jit
def bptt(cell: AbstractCell, xs, cs) -> jax.Array:
    """The reference, `rtrrl.testing.bptt_gradient` (``jax.grad`` of ``Σ_t c_tᵀ output(h_t)``
    over the unrolled sequence), flattened."""
    return flat(bptt_gradient(cell, cell.init_hidden(), xs, cs))


@eqx.filter_jit
def summed(estimator, cell: AbstractCell, xs, cs) -> jax.Array:
    """``Σ_t estimator.gradient(cell, state_t, c_t)``, flattened."""
    hidden = cell.init_hidden()

    def step_fn(carry, step):
        hidden, state = carry
        hidden, state = estimator.step(cell, hidden, step[0], state)
        return (hidden, state), flat(estimator.gradient(cell, state, step[1]))

    state = estimator.init(cell, hidden, xs[0])
    return jax.lax.scan(step_fn, (hidden, state), (xs, cs))[1].sum(0)


def assert_close(actual, expected, rtol=1e-10):
    scale = float(jnp.max(jnp.abs(expected)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def relative_error(actual, expected) -> float:
    return float(jnp.linalg.norm(actual - expected) / jnp.linalg.norm(expected))


# --- exactness on diagonal recurrences -------------------------------------------------------


@pytest.mark.parametrize("name", list(SNAP1))
@pytest.mark.parametrize(
    "make",
    [
        lambda: LRU(INPUT, HIDDEN, key=jax.random.key(1), output_size=3, r_min=0.5),
        lambda: recurrent_block(make_ctrnn("dense"), "diagonal"),
        lambda: recurrent_block(make_ctrnn("sparse"), "diagonal"),
        diagonal_tanh,
    ],
    ids=["lru", "ctrnn-diagonal", "ctrnn-sparse-diagonal", "diagonal-tanh"],
)
def test_snap1_equals_bptt_when_the_recurrent_jacobian_is_diagonal(name, make):
    cell = make()
    xs, cs = data(cell)
    expected = bptt(cell, xs, cs)
    assert_close(summed(SNAP1[name], cell, xs, cs), expected)
    assert_close(summed(RTRL(), cell, xs, cs), expected)


# --- relation to RFLO ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SNAP1))
@pytest.mark.parametrize("wiring", ["dense", "sparse", "ncp"])
def test_snap1_equals_rflo_when_the_self_connections_are_zero(name, wiring):
    cell = recurrent_block(make_ctrnn(wiring), "off-diagonal")
    xs, cs = data(cell)
    rflo = summed(RFLO(), cell, xs, cs)
    assert_close(summed(SNAP1[name], cell, xs, cs), rflo)
    # ... and neither is exact: the off-diagonal recurrence they both drop matters.
    assert relative_error(rflo, bptt(cell, xs, cs)) > 1e-3


@pytest.mark.parametrize("wiring", ["dense", "sparse", "ncp"])
def test_ctrnn_kernel_equals_the_generic_form_and_differs_from_rflo(wiring):
    cell = make_ctrnn(wiring)
    xs, cs = data(cell)
    structured = summed(SnAp1(), cell, xs, cs)
    assert_close(structured, summed(SnAp1(structured=False), cell, xs, cs))
    assert relative_error(structured, summed(RFLO(), cell, xs, cs)) > 1e-3


def test_mean_error_lies_between_rtrl_and_rflo_on_random_ctrnns():
    """Mean over 8 random CTRNNs (default initialisation) of ‖ĝ - g‖ / ‖g‖, g from BPTT."""
    errors = {"rtrl": [], "snap1": [], "rflo": []}
    estimators = {"rtrl": RTRL(), "snap1": SnAp1(), "rflo": RFLO()}
    for seed in range(8):
        cell = CTRNN(INPUT, HIDDEN, key=jax.random.key(seed), tau_range=(1.5, 3.0))
        cell = eqx.tree_at(lambda c: c.weight, cell, cell.weight.at[:, -1].set(0.3))
        xs, cs = data(cell, seed=100 + seed, steps=8)
        expected = bptt(cell, xs, cs)
        for name, estimator in estimators.items():
            errors[name].append(relative_error(summed(estimator, cell, xs, cs), expected))
    means = {name: float(np.mean(values)) for name, values in errors.items()}
    assert means["rtrl"] < 1e-12
    assert means["rtrl"] <= means["snap1"] <= means["rflo"], means
    assert means["snap1"] > 1e-3  # a real approximation, not RTRL in disguise


# --- any cell, state, errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "state_type"),
    [
        (lambda: make_ctrnn("ncp"), RFLOState),
        (lambda: LRU(INPUT, HIDDEN, key=jax.random.key(1)), LRURTRLState),
        (lambda: LSTM(INPUT, 2, key=jax.random.key(1)), RTRLState),
        (lambda: GRU(INPUT, 3, key=jax.random.key(1)), RTRLState),
        (lambda: Identity(INPUT), RTRLState),
    ],
    ids=["ctrnn-ncp", "lru", "lstm", "gru", "identity"],
)
def test_state_is_constant_in_structure_and_the_norm_matches(make, state_type):
    cell = make()
    xs, cs = data(cell)

    @eqx.filter_jit
    def run(cell):
        hidden = cell.init_hidden()
        fresh = SnAp1().init(cell, hidden, xs[0])
        state = fresh
        for t in range(3):
            hidden, state = SnAp1().step(cell, hidden, xs[t], state)
        grads = SnAp1().gradient(cell, state, cs[2])
        return fresh, state, grads, SnAp1().gradient_norm_squared(cell, state, cs[2])

    fresh, stepped, grads, norm_squared = run(cell)
    assert type(fresh) is state_type
    assert jax.tree.structure(fresh) == jax.tree.structure(stepped)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), fresh) == jax.tree.map(
        lambda a: (a.shape, a.dtype), stepped
    )
    params = eqx.filter(cell, eqx.is_inexact_array)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    expected = sum(jnp.sum(g**2) for g in jax.tree.leaves(grads))
    np.testing.assert_allclose(norm_squared, expected, rtol=1e-12)


def test_errors_name_the_estimator(without_runtime_type_checks):
    cell = ComplexParams(jnp.ones((1,), jnp.complex128))
    with pytest.raises(IncompatibleCellError, match=r"SnAp1 cannot serve ComplexParams"):
        SnAp1().init(cell, cell.init_hidden(), jnp.zeros(1))
    with pytest.raises(ValueError, match="`structured` must be True or False, got 'yes'"):
        SnAp1(structured="yes")
    ctrnn = make_ctrnn()
    state = RTRL().init(ctrnn, ctrnn.init_hidden(), jnp.zeros(INPUT))
    with pytest.raises(TypeError, match=r"SnAp1\.step: SnAp1 serves CTRNN with a RFLOState"):
        SnAp1().step(ctrnn, ctrnn.init_hidden(), jnp.zeros(INPUT), state)


# --- inside the learners ---------------------------------------------------------------------


def test_cli_name_builds_and_one_rtrrl_step_is_finite():
    config = TrainConfig(env="CartPole-v1", estimator="snap1", hidden_size=4)
    env = build_env(config)
    alg = build_algorithm(config, env)(jax.random.key(0))
    assert isinstance(alg.estimator, SnAp1)
    state = eqx.filter_jit(lambda k: alg.init(k, env, num_envs=2))(jax.random.key(1))
    state, metrics = eqx.filter_jit(lambda s, k: alg.step(s, env, k))(state, jax.random.key(2))
    assert bool(metrics.all_finite)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state.envs.estimator))


def test_fit_sequence_on_an_lru_learns_exactly_as_rtrl():
    cell = LRU(1, 3, key=jax.random.key(0), r_min=0.5)
    inputs = jax.random.normal(jax.random.key(1), (30, 1))
    targets = jnp.roll(inputs, 1, axis=0)
    snap1 = fit_sequence(cell, SnAp1(), optax.sgd(0.05), inputs, targets)
    rtrl = fit_sequence(cell, RTRL(), optax.sgd(0.05), inputs, targets)
    assert bool(jnp.all(jnp.isfinite(snap1.losses)))
    np.testing.assert_allclose(snap1.losses, rtrl.losses, rtol=1e-10, atol=1e-14)
