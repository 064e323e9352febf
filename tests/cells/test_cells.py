"""Cells and wirings: shapes, dtypes, invariants kept by construction, and argument checks."""

import math
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtrrl.cells import CTRNN, GRU, LRU, LSTM, NCP, AbstractCell, Dense, Identity, RandomSparse
from rtrrl.cells._lru import _computed_once

INPUT, HIDDEN = 3, 6
KEY = jax.random.key(0)

CELLS = {
    "ctrnn": lambda: CTRNN(INPUT, HIDDEN, key=KEY),
    "ctrnn-sparse": lambda: CTRNN(INPUT, HIDDEN, key=KEY, wiring=RandomSparse(0.4)),
    "ctrnn-ncp": lambda: CTRNN(INPUT, HIDDEN, key=KEY, wiring=NCP(2)),
    "lru": lambda: LRU(INPUT, HIDDEN, key=KEY, output_size=2),
    "identity": lambda: Identity(INPUT),
}


@pytest.fixture(params=list(CELLS))
def cell(request) -> AbstractCell:
    return CELLS[request.param]()


def test_shapes_and_dtypes(cell):
    hidden = cell.init_hidden()
    assert hidden.shape == (cell.hidden_size,)
    x = jnp.ones((cell.input_size,))
    next_hidden = cell(hidden, x)
    assert next_hidden.shape == hidden.shape and next_hidden.dtype == hidden.dtype
    features = cell.output(next_hidden)
    assert features.shape == (cell.feature_size,)
    assert features.dtype == jnp.float64  # real features, default float under x64


def test_jit_and_vmap_agree_with_single_calls(cell):
    xs = jax.random.normal(jax.random.key(1), (4, cell.input_size))
    hiddens = jax.vmap(lambda x: cell(cell.init_hidden(), x))(xs)
    batched = eqx.filter_jit(jax.vmap(cell))(hiddens, xs)
    for i in range(xs.shape[0]):
        np.testing.assert_allclose(batched[i], cell(hiddens[i], xs[i]), rtol=1e-12)


def test_parameters_are_real_and_masks_are_not_parameters(cell):
    params = jax.tree.leaves(eqx.filter(cell, eqx.is_inexact_array))
    assert all(p.dtype == jnp.float64 for p in params)
    if isinstance(cell, CTRNN):
        assert len(params) == 2  # weight and raw_tau; the mask is a bool array
    if isinstance(cell, Identity):
        assert params == []


@pytest.mark.parametrize("name", list(CELLS))
def test_default_float_dtype_follows_jax(name):
    """float32 without x64: nothing is hard-coded to float64 (or to float32)."""
    with jax.enable_x64(False):
        cell = CELLS[name]()
        hidden = cell(cell.init_hidden(), jnp.ones((cell.input_size,), jnp.float32))
        expected = jnp.complex64 if isinstance(cell, LRU) else jnp.float32
        assert hidden.dtype == expected
        assert cell.output(hidden).dtype == jnp.float32


def test_cells_can_be_built_per_seed_under_vmap():
    keys = jax.random.split(jax.random.key(3), 4)
    make = eqx.filter_jit(eqx.filter_vmap(lambda k: CTRNN(INPUT, HIDDEN, key=k, wiring=NCP(2))))
    ctrnns = make(keys)
    assert ctrnns.weight.shape == (4, HIDDEN, INPUT + HIDDEN + 1)
    assert ctrnns.mask.shape == (4, HIDDEN, INPUT + HIDDEN + 1)


# --- CTRNN -----------------------------------------------------------------------------------


def test_ctrnn_matches_murray_equation():
    cell = CTRNN(INPUT, HIDDEN, key=KEY, dt=0.5)
    h = jax.random.normal(jax.random.key(1), (HIDDEN,))
    x = jax.random.normal(jax.random.key(2), (INPUT,))
    xi = jnp.concatenate([x, h, jnp.ones(1)])
    expected = h + (0.5 / cell.tau) * (-h + jnp.tanh(cell.weight @ xi))
    np.testing.assert_allclose(cell(h, x), expected, rtol=1e-12)
    assert cell.output(h) is h


def test_ctrnn_tau_stays_above_one_for_any_raw_value():
    cell = CTRNN(INPUT, HIDDEN, key=KEY, tau_range=(2.0, 3.0))
    assert jnp.all((cell.tau >= 2.0 - 1e-12) & (cell.tau <= 3.0 + 1e-12))
    extreme = jnp.array([-1e3, -50.0, 0.0, 50.0, 1e3, -1e308])
    cell = eqx.tree_at(lambda c: c.raw_tau, cell, extreme)
    assert jnp.all(cell.tau >= 1.0) and jnp.all(jnp.isfinite(cell.tau))


def test_ctrnn_mask_is_applied_in_the_forward_pass_and_blocks_gradients():
    cell = CTRNN(INPUT, HIDDEN, key=KEY, wiring=RandomSparse(0.4))
    assert not jnp.all(cell.mask) and jnp.all(cell.mask[:, -1])
    assert jnp.all(jnp.where(cell.mask, True, cell.weight == 0.0))  # masked entries start at 0
    h = jax.random.normal(jax.random.key(1), (HIDDEN,))
    x = jax.random.normal(jax.random.key(2), (INPUT,))
    noisy = eqx.tree_at(lambda c: c.weight, cell, jnp.where(cell.mask, cell.weight, 5.0))
    np.testing.assert_array_equal(noisy(h, x), cell(h, x))
    grads = eqx.filter_grad(lambda c: jnp.sum(c(h, x) ** 2))(noisy)
    assert jnp.all(jnp.where(cell.mask, True, grads.weight == 0.0))


def test_ctrnn_accepts_a_custom_mask_and_dense_wiring():
    mask = jnp.ones((HIDDEN, INPUT + HIDDEN + 1), bool).at[0, 0].set(False)
    cell = CTRNN(INPUT, HIDDEN, key=KEY, wiring=mask)
    assert cell.weight[0, 0] == 0.0
    assert CTRNN(INPUT, HIDDEN, key=KEY, wiring=Dense()).mask is None


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"input_size": 0}, "input_size"),
        ({"hidden_size": -1}, "hidden_size"),
        ({"dt": 0.0}, "dt"),
        ({"dt": -1.0}, "dt"),
        ({"tau_range": (1.0, 2.0)}, "tau_range"),
        ({"tau_range": (3.0, 2.0)}, "tau_range"),
        ({"wiring": jnp.ones((HIDDEN, INPUT + HIDDEN), bool)}, "wiring"),
    ],
)
def test_ctrnn_rejects_invalid_arguments(kwargs, argument):
    args = {"input_size": INPUT, "hidden_size": HIDDEN, **kwargs}
    with pytest.raises(ValueError, match=argument):
        CTRNN(args.pop("input_size"), args.pop("hidden_size"), key=KEY, **args)


# --- wirings ---------------------------------------------------------------------------------


def test_dense_and_random_sparse_masks():
    assert Dense().mask(INPUT, HIDDEN, key=KEY).shape == (HIDDEN, INPUT + HIDDEN + 1)
    assert jnp.all(Dense().mask(INPUT, HIDDEN, key=KEY))
    mask = RandomSparse(0.3).mask(40, 60, key=KEY)
    assert mask.shape == (60, 101) and mask.dtype == jnp.bool_
    assert jnp.all(mask[:, -1])
    assert abs(float(jnp.mean(mask[:, :-1])) - 0.3) < 0.03
    assert not jnp.array_equal(mask, RandomSparse(0.3).mask(40, 60, key=jax.random.key(1)))


def test_ncp_layers_connect_only_as_specified():
    wiring = NCP(motor_neurons=3, density=0.5)
    n_in, n = 5, 20
    inter, command, motor = wiring.layer_sizes(n)
    assert (inter, command, motor) == (11, 6, 3)
    mask = np.asarray(wiring.mask(n_in, n, key=KEY))
    sensory, recurrent, bias = mask[:, :n_in], mask[:, n_in:-1], mask[:, -1]
    i_, c_, m_ = slice(0, inter), slice(inter, inter + command), slice(inter + command, n)
    assert bias.all()
    # Inputs reach inter neurons only, and every inter neuron gets at least one.
    assert not sensory[c_].any() and not sensory[m_].any() and sensory[i_].any(axis=1).all()
    # Inter neurons read no neuron; command neurons read inter and command; motor only command.
    assert not recurrent[i_].any()
    assert recurrent[c_, i_].any(axis=1).all() and not recurrent[c_, m_].any()
    assert recurrent[m_, c_].any(axis=1).all()
    assert not recurrent[m_, i_].any() and not recurrent[m_, m_].any()


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: RandomSparse(0.0), "density"),
        (lambda: RandomSparse(1.5), "density"),
        (lambda: NCP(0), "motor_neurons"),
        (lambda: NCP(1, density=0.0), "density"),
        (lambda: CTRNN(INPUT, 3, key=KEY, wiring=NCP(2)), "hidden_size"),
    ],
)
def test_wirings_reject_invalid_arguments(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


# --- LRU -------------------------------------------------------------------------------------


def test_lru_ring_initialisation():
    cell = LRU(INPUT, 200, key=KEY, r_min=0.5, r_max=0.9, max_phase=math.pi / 4)
    radius = jnp.abs(cell.lam)
    assert jnp.all((radius >= 0.5 - 1e-12) & (radius <= 0.9 + 1e-12))
    phase = jnp.angle(cell.lam)
    assert jnp.all((phase >= 0.0) & (phase <= math.pi / 4 + 1e-12))
    np.testing.assert_allclose(cell.gamma**2 + radius**2, 1.0, rtol=1e-12)


def test_lru_matches_its_equation_and_is_stable():
    cell = LRU(INPUT, HIDDEN, key=KEY, output_size=2)
    h = jax.lax.complex(*jax.random.normal(jax.random.key(1), (2, HIDDEN)))
    x = jax.random.normal(jax.random.key(2), (INPUT,))
    # Reference in numpy (no strict promotion there): the textbook complex formulas.
    p = {k: np.asarray(v) for k, v in vars(cell).items() if isinstance(v, jax.Array)}
    # The real parameters hold the complex B = (B[:, :N] + i B[:, N:])ᵀ and the readout of
    # (Re h, Im h), C = C[:, :N] - i C[:, N:].
    n = HIDDEN
    b = (p["B"][:, :n] + 1j * p["B"][:, n:]).T
    c = p["C"][:, :n] - 1j * p["C"][:, n:]
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    h_np, x_np = np.asarray(h), np.asarray(x)
    expected = lam * h_np + np.exp(p["gamma_log"]) * (b @ x_np)
    np.testing.assert_allclose(cell(h, x), expected, rtol=1e-12)
    np.testing.assert_allclose(cell.output(h), np.real(c @ h_np), rtol=1e-12)
    # |λ| < 1 for every parameter value: a long random drive stays bounded.
    xs = jax.random.normal(jax.random.key(3), (2000, INPUT))
    final, _ = jax.lax.scan(lambda h, x: (cell(h, x), None), cell.init_hidden(), xs)
    assert jnp.all(jnp.isfinite(final)) and jnp.max(jnp.abs(final)) < 20.0


def test_lru_lam_is_computed_once_with_its_values_unchanged():
    """`LRU.lam` passes through a scatter at its own indices (so XLA computes it once per step,
    in a kernel of its own, rather than inside every loop that reads it) that returns the
    values as they are, NaNs and signed zeros included, alone and under `vmap`; gradients flow
    through it."""
    z = jax.lax.complex(jnp.array([0.5, jnp.nan, -0.25]), jnp.array([-0.0, 1.0, jnp.inf]))
    for out in (jax.jit(_computed_once)(z), jax.vmap(_computed_once)(jnp.stack([z, z]))[1]):
        assert np.array_equal(np.asarray(out), np.asarray(z), equal_nan=True)
        assert np.array_equal(np.signbit(np.imag(np.asarray(out))), np.signbit(np.imag(z)))
    cell = LRU(INPUT, HIDDEN, key=KEY)
    # XLA keeps the scatter in the compiled program of a per-environment loop over λ.
    hidden = jnp.ones((4, HIDDEN), cell.lam.dtype)
    per_env = jax.jit(lambda c, hs: jax.vmap(lambda h: c.lam * h)(hs))
    assert "scatter" in per_env.lower(cell, hidden).compile().as_text()

    def formula(c):
        return jnp.exp(jax.lax.complex(-jnp.exp(c.nu_log), jnp.exp(c.theta_log)))

    np.testing.assert_allclose(cell.lam, formula(cell), rtol=1e-12)

    def loss(nu_log, lam_of):
        return jnp.sum(jnp.real(lam_of(eqx.tree_at(lambda c: c.nu_log, cell, nu_log))))

    np.testing.assert_allclose(
        jax.grad(loss)(cell.nu_log, lambda c: c.lam),
        jax.grad(loss)(cell.nu_log, formula),
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"input_size": 0}, "input_size"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"output_size": 0}, "output_size"),
        ({"r_min": 0.9, "r_max": 0.5}, "r_min"),
        ({"r_max": 1.5}, "r_max"),
        ({"r_min": -0.1}, "r_min"),
        ({"max_phase": 0.0}, "max_phase"),
    ],
)
def test_lru_rejects_invalid_arguments(kwargs, argument):
    args = {"input_size": INPUT, "hidden_size": HIDDEN, **kwargs}
    with pytest.raises(ValueError, match=argument):
        LRU(args.pop("input_size"), args.pop("hidden_size"), key=KEY, **args)


# --- Identity --------------------------------------------------------------------------------


def test_identity_passes_the_input_through():
    cell = Identity(INPUT)
    x = jnp.arange(INPUT, dtype=jnp.float64)
    np.testing.assert_array_equal(cell.output(cell(cell.init_hidden(), x)), x)
    assert cell.feature_size == cell.hidden_size == INPUT
    with pytest.raises(ValueError, match="size"):
        Identity(0)


@pytest.mark.parametrize(
    "make",
    [
        lambda key: CTRNN(3, 4, key=key),
        lambda key: LRU(3, 4, key=key),
        lambda key: LSTM(3, 4, key=key),
        lambda key: GRU(3, 4, key=key),
        lambda key: Identity(3),
    ],
    ids=["ctrnn", "lru", "lstm", "gru", "identity"],
)
def test_a_step_with_inputs_of_the_wrong_shape_names_the_cell_and_the_shape(
    make, without_runtime_type_checks
):
    """Not a broadcasting or ``dot_general`` error from deep inside JAX."""
    cell = make(jax.random.key(0))
    name = type(cell).__name__
    hidden = cell.init_hidden()
    with pytest.raises(ValueError, match=rf"{name}: the input `x` must have shape \(3,\).*\(5,\)"):
        cell(hidden, jnp.ones(5))
    with pytest.raises(
        ValueError, match=re.escape(f"{name}: `hidden` must have shape {hidden.shape}")
    ):
        cell(jnp.ones(9), jnp.ones(3))
    with pytest.raises(ValueError, match="batch with jax.vmap"):
        cell(hidden, jnp.ones((2, 3)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(input_size=3.0), "`input_size` must be a positive int, got 3.0"),
        (dict(hidden_size="4"), "`hidden_size` must be a positive int, got '4'"),
        (dict(dt=float("nan")), "`dt` must be a finite number > 0, got nan"),
        (dict(dt=0.0), "`dt` must be a finite number > 0, got 0.0"),
    ],
)
def test_ctrnn_refuses_sizes_that_are_not_ints_and_a_non_finite_dt(
    kwargs, message, without_runtime_type_checks
):
    arguments = dict(input_size=3, hidden_size=4) | kwargs
    with pytest.raises(ValueError, match=re.escape(message)):
        CTRNN(**arguments, key=jax.random.key(0))
