"""Every online gradient estimator against an independent reference: `jax.grad` of BPTT.

The loss is ``L(θ) = Σ_t c_tᵀ output(h_t)`` over a random sequence with random cotangents
``c_t``; summing ``estimator.gradient(cell, state_t, c_t)`` over the sequence must give
``∇L`` exactly (RTRL, TruncatedBPTT with a window covering the sequence), or a documented
approximation of it (RFLO, LocalMSE). The reference, the online sum and the comparisons are
`rtrrl.testing`'s (`bptt_gradient`, `online_gradient`, `assert_grads_close`), the ones users
test their own estimators with. Float64 (see conftest), tiny sizes, every sequence unrolled
under one jitted `lax.scan`; results are cached so each (cell, estimator, data) run compiles
once per session.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _test_cells import ComplexParams

from rtrrl.cells import CTRNN, LRU, NCP, AbstractCell, Identity, RandomSparse
from rtrrl.estimators import (
    RFLO,
    RTRL,
    CTRNNRTRLState,
    LocalMSE,
    LocalMSEState,
    LRURTRLState,
    RFLOState,
    RTRLState,
    TruncatedBPTT,
    TruncatedBPTTState,
)
from rtrrl.testing import (
    assert_grads_close,
    bptt_gradient,
    online_gradient,
    relative_error,
    sequence_loss,
)

INPUT, HIDDEN, FEATURES, T = 2, 4, 3, 6
RTOL = 1e-8


def make_cell(name: str) -> AbstractCell:
    key = jax.random.key(7)
    cells = {
        "ctrnn": lambda: CTRNN(INPUT, HIDDEN, key=key),
        "ctrnn-sparse": lambda: CTRNN(INPUT, HIDDEN, key=key, wiring=RandomSparse(0.5)),
        "ctrnn-ncp": lambda: CTRNN(INPUT, HIDDEN, key=key, wiring=NCP(1)),
        "lru": lambda: LRU(INPUT, HIDDEN, key=key, output_size=FEATURES),
        "identity": lambda: Identity(INPUT),
    }
    cell = cells[name]()
    if isinstance(cell, CTRNN):
        # Non-zero biases and a faster time scale make every term of the gradient matter.
        cell = eqx.tree_at(lambda c: c.weight, cell, cell.masked_weight.at[:, -1].set(0.3))
        cell = eqx.tree_at(lambda c: c.raw_tau, cell, cell.raw_tau - 3.0)
    return cell


def without_recurrence(cell: CTRNN) -> CTRNN:
    """The same cell with the recurrent block of `weight` set to zero."""
    block = slice(cell.input_size, cell.input_size + cell.hidden_size)
    return eqx.tree_at(lambda c: c.weight, cell, cell.weight.at[:, block].set(0.0))


CELLS = ["ctrnn", "ctrnn-sparse", "ctrnn-ncp", "lru", "identity"]
CTRNNS = ["ctrnn", "ctrnn-sparse", "ctrnn-ncp"]
ESTIMATORS = {
    "rtrl": RTRL(),
    "rtrl-generic": RTRL(structured=False),
    "rflo": RFLO(),
    "local-mse": LocalMSE(),
    "tbptt-1": TruncatedBPTT(1),
    "tbptt-3": TruncatedBPTT(3),
    "tbptt-T": TruncatedBPTT(T),
    "tbptt-T+3": TruncatedBPTT(T + 3),
}


def data(cell: AbstractCell, seed: int = 0, batch: tuple[int, ...] = ()):
    kx, kc = jax.random.split(jax.random.key(seed))
    xs = jax.random.normal(kx, (*batch, T, cell.input_size))
    cs = jax.random.normal(kc, (*batch, T, cell.feature_size))
    return xs, cs


@eqx.filter_jit
def run_sequence(estimator, cell, xs, cs):
    """Final hidden state and ``Σ_t estimator.gradient(state_t, c_t)``."""
    return online_gradient(estimator, cell, cell.init_hidden(), xs, cs)


@eqx.filter_jit
def run_batch(estimator, cell, xs, cs):
    return jax.vmap(lambda x, c: online_gradient(estimator, cell, cell.init_hidden(), x, c))(xs, cs)


def loss(cell: AbstractCell, xs, cs):
    """``(Σ_t c_tᵀ output(h_t), h_T)`` from the cell's initial state."""
    return sequence_loss(cell, cell.init_hidden(), xs, cs)


@eqx.filter_jit
def bptt(cell: AbstractCell, xs, cs):
    """The reference: `jax.grad` of the unrolled loss, and the final hidden state."""
    hidden0 = cell.init_hidden()
    return loss(cell, xs, cs)[1], bptt_gradient(cell, hidden0, xs, cs)


@functools.cache
def estimate(estimator_name: str, cell_name: str, zero_recurrence: bool = False):
    cell = make_cell(cell_name)
    if zero_recurrence:
        cell = without_recurrence(cell)
    return run_sequence(ESTIMATORS[estimator_name], cell, *data(cell))


@functools.cache
def reference(cell_name: str):
    cell = make_cell(cell_name)
    return bptt(cell, *data(cell))


# --- exact estimators ------------------------------------------------------------------------


@pytest.mark.parametrize("cell_name", CELLS)
@pytest.mark.parametrize("estimator_name", ["rtrl", "tbptt-T", "tbptt-T+3"])
def test_exact_estimators_equal_bptt(estimator_name, cell_name):
    hidden, grads = estimate(estimator_name, cell_name)
    ref_hidden, ref_grads = reference(cell_name)
    np.testing.assert_allclose(hidden, ref_hidden, rtol=1e-12)
    assert_grads_close(grads, ref_grads, rtol=RTOL)
    expected_structure = jax.tree.structure(eqx.filter(make_cell(cell_name), eqx.is_inexact_array))
    assert jax.tree.structure(grads) == expected_structure


def test_generic_rtrl_equals_bptt_on_complex_lru():
    """The dense forward-mode path handles a complex hidden state (not only the LRU shortcut)."""
    _, grads = estimate("rtrl-generic", "lru")
    assert_grads_close(grads, reference("lru")[1], rtol=RTOL)


def test_rtrl_equals_finite_differences():
    """Independent of autodiff: central differences of the loss on a few parameters."""
    cell = make_cell("ctrnn-sparse")
    xs, cs = data(cell)
    _, grads = estimate("rtrl", "ctrnn-sparse")
    loss_of = jax.jit(lambda c: loss(c, xs, cs)[0])
    eps = 1e-6
    entries = [("weight", (0, 0)), ("weight", (2, INPUT + 1)), ("weight", (3, -1)), ("raw_tau", 1)]
    for field, index in entries:

        def shifted(delta, field=field, index=index):
            where = lambda c: getattr(c, field)  # noqa: E731
            return eqx.tree_at(where, cell, getattr(cell, field).at[index].add(delta))

        fd = (loss_of(shifted(eps)) - loss_of(shifted(-eps))) / (2 * eps)
        masked = field == "weight" and not cell.mask[index]
        expected = 0.0 if masked else fd
        np.testing.assert_allclose(getattr(grads, field)[index], expected, rtol=1e-6, atol=1e-9)


# --- approximations --------------------------------------------------------------------------


@pytest.mark.parametrize("cell_name", CELLS)
def test_local_mse_equals_tbptt_window_1(cell_name):
    _, local = estimate("local-mse", cell_name)
    _, tbptt = estimate("tbptt-1", cell_name)
    assert_grads_close(local, tbptt, rtol=RTOL)


@pytest.mark.parametrize("cell_name", CTRNNS)
def test_rflo_equals_rtrl_without_recurrent_weights(cell_name):
    _, rflo = estimate("rflo", cell_name, zero_recurrence=True)
    _, rtrl = estimate("rtrl", cell_name, zero_recurrence=True)
    assert_grads_close(rflo, rtrl, rtol=RTOL)


@pytest.mark.parametrize("cell_name", CTRNNS)
def test_rflo_differs_from_rtrl_with_recurrent_weights(cell_name):
    _, rflo = estimate("rflo", cell_name)
    _, rtrl = estimate("rtrl", cell_name)
    assert relative_error(rflo, rtrl) > 1e-3


def test_truncation_is_an_approximation():
    """A window shorter than the sequence really truncates (the window logic is not a no-op)."""
    _, short = estimate("tbptt-3", "ctrnn")
    _, full = estimate("tbptt-T", "ctrnn")
    assert relative_error(short, full) > 1e-3


# --- batching, resets, consistency -----------------------------------------------------------


@pytest.mark.parametrize(
    ("estimator_name", "cell_name"),
    [
        ("rtrl", "ctrnn-sparse"),
        ("rtrl", "lru"),
        ("rflo", "ctrnn-ncp"),
        ("local-mse", "lru"),
        ("tbptt-3", "ctrnn-sparse"),
    ],
)
def test_vmap_of_gradient_equals_per_example_loop(estimator_name, cell_name):
    estimator, cell = ESTIMATORS[estimator_name], make_cell(cell_name)
    xs, cs = data(cell, seed=3, batch=(3,))
    hidden, grads = run_batch(estimator, cell, xs, cs)
    for i in range(xs.shape[0]):
        hidden_i, grads_i = run_sequence(estimator, cell, xs[i], cs[i])
        np.testing.assert_allclose(hidden[i], hidden_i, rtol=1e-12)
        assert_grads_close(jax.tree.map(lambda g, i=i: g[i], grads), grads_i, rtol=1e-12)


SUPPORTED = [
    (e, c)
    for e in ["rtrl", "rtrl-generic", "rflo", "local-mse", "tbptt-3"]
    for c in CELLS
    if e != "rflo" or c in CTRNNS
]


@pytest.mark.parametrize(("estimator_name", "cell_name"), SUPPORTED)
def test_fresh_state_is_selectable_after_steps(estimator_name, cell_name):
    """Episode resets: `init`'s state has the stepped state's structure, shapes and dtypes."""
    estimator, cell = ESTIMATORS[estimator_name], make_cell(cell_name)
    xs, _ = data(cell)
    hidden = cell.init_hidden()

    def fresh_and_stepped():
        fresh = estimator.init(cell, hidden, xs[0])
        next_hidden, stepped = estimator.step(cell, hidden, xs[0], fresh)
        return fresh, stepped, next_hidden, cell(hidden, xs[0])

    fresh, stepped, next_hidden, cell_next = jax.eval_shape(fresh_and_stepped)
    assert jax.tree.structure(fresh) == jax.tree.structure(stepped)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), fresh) == jax.tree.map(
        lambda a: (a.shape, a.dtype), stepped
    )
    assert (next_hidden.shape, next_hidden.dtype) == (cell_next.shape, cell_next.dtype)
    expected_state = {
        "rtrl": {"lru": LRURTRLState, "identity": RTRLState}.get(cell_name, CTRNNRTRLState),
        "rtrl-generic": RTRLState,
        "rflo": RFLOState,
        "local-mse": {"lru": LRURTRLState, "identity": RTRLState}.get(cell_name, LocalMSEState),
        "tbptt-3": TruncatedBPTTState,
    }[estimator_name]
    assert type(fresh) is expected_state


@pytest.mark.parametrize(("estimator_name", "cell_name"), SUPPORTED)
def test_gradient_norm_squared_is_the_gradients_norm(estimator_name, cell_name):
    """``gradient_norm_squared`` (RFLO's and LocalMSE's from the trace rows, the LRU's from its
    traces and ``h``, the others' from the formed gradient) equals ``‖gradient‖²`` after a few
    steps."""
    estimator, cell = ESTIMATORS[estimator_name], make_cell(cell_name)
    xs, cs = data(cell, seed=5)

    @jax.jit
    def both():
        hidden = cell.init_hidden()
        state = estimator.init(cell, hidden, xs[0])
        for t in range(3):
            hidden, state = estimator.step(cell, hidden, xs[t], state)
        grads = estimator.gradient(cell, state, cs[2])
        expected = sum(jnp.sum(jnp.abs(g) ** 2) for g in jax.tree.leaves(grads))
        return estimator.gradient_norm_squared(cell, state, cs[2]), expected

    got, expected = both()
    assert got.shape == () and got.dtype == cs.dtype
    assert float(expected) > 0.0 or cell_name == "identity"  # Identity has no parameters
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize(("estimator_name", "cell_name"), [("tbptt-3", "ctrnn"), ("rflo", "ctrnn")])
def test_gradients_equal_stacked_gradient_calls(
    estimator_name, cell_name, without_runtime_type_checks
):
    """``gradients`` on ``(K, features)`` cotangents is `gradient` row by row, stacked: TBPTT's
    shared pass (two valid steps in a window of three), RFLO's default per-row loop."""
    estimator, cell = ESTIMATORS[estimator_name], make_cell(cell_name)
    xs, cs = data(cell, seed=3)
    hidden = cell.init_hidden()
    state = estimator.init(cell, hidden, xs[0])
    for t in range(2):
        hidden, state = estimator.step(cell, hidden, xs[t], state)

    @jax.jit
    def both(state, cotangents):
        rows = [estimator.gradient(cell, state, c) for c in cotangents]
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *rows)
        return estimator.gradients(cell, state, cotangents), stacked

    assert estimator.shares_cotangent_work == estimator_name.startswith("tbptt")
    got, expected = both(state, cs[:2])
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert g.shape == e.shape and g.shape[0] == 2
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match=r"gradients: `cotangents` must have shape \(K, 4\)"):
        estimator.gradients(cell, state, cs[0])


@pytest.mark.parametrize(
    ("estimator_name", "cell_name"),
    [
        ("local-mse", "ctrnn"),
        ("local-mse", "ctrnn-sparse"),
        ("local-mse", "ctrnn-ncp"),
        ("local-mse", "lru"),
        ("rflo", "ctrnn"),
        ("rtrl", "lru"),
        ("rtrl-generic", "lru"),
        ("tbptt-3", "ctrnn"),
    ],
)
def test_mean_gradient_is_the_batch_mean_of_gradient(
    estimator_name, cell_name, without_runtime_type_checks
):
    """``mean_gradient`` over a batch of three states equals the mean of `gradient` row by
    row: LocalMSE's GEMM on the CTRNNs (masks included), the LRU kernels' GEMMs for the
    readout, the vmapped default elsewhere; and only the estimators with a cheaper batch mean
    say so (`batches_gradient_mean`)."""
    estimator, cell = ESTIMATORS[estimator_name], make_cell(cell_name)
    xs, cs = data(cell, seed=4, batch=(3,))

    @jax.jit
    def both(xs, cotangents):
        def states_of(x):
            hidden = cell.init_hidden()
            state = estimator.init(cell, hidden, x[0])
            for t in range(3):
                hidden, state = estimator.step(cell, hidden, x[t], state)
            return state

        states = jax.vmap(states_of)(xs)
        rows = [
            estimator.gradient(cell, jax.tree.map(lambda s, b=b: s[b], states), cotangents[b])
            for b in range(3)
        ]
        expected = jax.tree.map(lambda *leaves: sum(leaves) / 3, *rows)
        return estimator.mean_gradient(cell, states, cotangents), expected, states

    got, expected, states = both(xs, cs[:, 2])
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert g.shape == e.shape and float(jnp.max(jnp.abs(e))) > 0.0
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-15)
    cheaper = (estimator_name, cell_name[:5]) in {("local-mse", "ctrnn"), ("local-mse", "lru")}
    cheaper |= (estimator_name, cell_name) == ("rtrl", "lru")
    assert estimator.batches_gradient_mean(cell) == cheaper
    with pytest.raises(ValueError, match=r"mean_gradient: `cotangents` must have shape \(K, "):
        estimator.mean_gradient(cell, states, cs[0, 2])


def test_reset_mid_sequence_equals_a_fresh_start():
    """`jnp.where` between a fresh and a stepped state restarts the estimator cleanly."""
    estimator, cell = TruncatedBPTT(3), make_cell("ctrnn")
    xs, cs = data(cell)
    h0 = cell.init_hidden()

    @jax.jit
    def restarted_gradient():
        hidden, state = h0, estimator.init(cell, h0, xs[0])
        for t in range(4):  # an episode of 4 steps, then a reset
            hidden, state = estimator.step(cell, hidden, xs[t], state)
        done = jnp.array(True)
        fresh = estimator.init(cell, h0, xs[4])
        state = jax.tree.map(lambda f, s: jnp.where(done, f, s), fresh, state)
        hidden = jnp.where(done, h0, hidden)
        hidden, state = estimator.step(cell, hidden, xs[4], state)
        return estimator.gradient(cell, state, cs[0])

    @jax.jit
    def fresh_gradient():
        state = estimator.init(cell, h0, xs[4])
        _, state = estimator.step(cell, h0, xs[4], state)
        return estimator.gradient(cell, state, cs[0])

    assert_grads_close(restarted_gradient(), fresh_gradient(), rtol=1e-12)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell_name", ["lru", "identity"])
def test_rflo_refuses_other_cells_naming_both(cell_name):
    cell = make_cell(cell_name)
    with pytest.raises(ValueError, match=rf"RFLO cannot serve {type(cell).__name__}.*RTRL\(\)"):
        RFLO().init(cell, cell.init_hidden(), jnp.zeros(cell.input_size))


@pytest.mark.parametrize("estimator", [RTRL(), LocalMSE()], ids=["rtrl", "local-mse"])
def test_generic_estimators_refuse_complex_parameters_naming_both(estimator):
    cell = ComplexParams(jnp.ones((1,), jnp.complex128))
    name = type(estimator).__name__
    with pytest.raises(ValueError, match=rf"{name} cannot serve ComplexParams"):
        estimator.init(cell, cell.init_hidden(), jnp.zeros(1))


@pytest.mark.parametrize("window", [0, -2, True])
def test_truncated_bptt_rejects_invalid_window(window):
    with pytest.raises(ValueError, match="window"):
        TruncatedBPTT(window)


@pytest.mark.parametrize(
    ("make_cell", "estimator"),
    [
        (lambda key: CTRNN(3, 4, key=key), RFLO()),
        (lambda key: CTRNN(3, 4, key=key), RTRL()),
        (lambda key: LRU(3, 4, key=key), RTRL()),
        (lambda key: CTRNN(3, 4, key=key), LocalMSE()),
        (lambda key: CTRNN(3, 4, key=key), TruncatedBPTT(2)),
    ],
    ids=["rflo", "rtrl-ctrnn", "rtrl-lru", "local-mse", "tbptt"],
)
def test_wrong_shapes_are_refused_with_the_estimator_method_named(
    make_cell, estimator, without_runtime_type_checks
):
    cell = make_cell(jax.random.key(0))
    name = type(estimator).__name__
    hidden, x = cell.init_hidden(), jnp.ones(3)
    state = estimator.init(cell, hidden, x)
    _, state = estimator.step(cell, hidden, x, state)
    with pytest.raises(ValueError, match=rf"{name}\.init: the input `x` must have shape \(3,\)"):
        estimator.init(cell, hidden, jnp.ones(5))
    with pytest.raises(ValueError, match=rf"{name}\.step: `hidden` must have shape \(4,\)"):
        estimator.step(cell, jnp.ones(9), x, state)
    for method in ("gradient", "gradient_norm_squared"):
        with pytest.raises(ValueError, match=r"`cotangent` must have the shape of the cell's"):
            getattr(estimator, method)(cell, state, jnp.ones(5))


def test_rtrl_structured_must_be_a_bool(without_runtime_type_checks):
    with pytest.raises(ValueError, match="`structured` must be True or False, got 'yes'"):
        RTRL(structured="yes")
