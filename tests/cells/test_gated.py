"""`LSTM` and `GRU`: the wrapped Equinox cells, and the generic estimators serving them."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtrrl.algorithms import RTRRL
from rtrrl.cells import GRU, LSTM
from rtrrl.estimators import RFLO, RTRL

INPUT, HIDDEN, T = 2, 3, 5


def make(name: str):
    return {"lstm": LSTM, "gru": GRU}[name](INPUT, HIDDEN, key=jax.random.key(1))


def test_lstm_state_is_h_then_c_and_features_are_h():
    cell = make("lstm")
    rng = np.random.default_rng(0)
    h, c, x = (jnp.asarray(rng.normal(size=n)) for n in (HIDDEN, HIDDEN, INPUT))
    expected_h, expected_c = cell.lstm(x, (h, c))
    state = cell(jnp.concatenate([h, c]), x)
    np.testing.assert_array_equal(state, jnp.concatenate([expected_h, expected_c]))
    np.testing.assert_array_equal(cell.output(state), expected_h)
    assert cell.init_hidden().shape == (2 * HIDDEN,) == (cell.state_size,)
    assert cell.feature_size == HIDDEN


def test_gru_wraps_equinox():
    cell = make("gru")
    rng = np.random.default_rng(0)
    h, x = jnp.asarray(rng.normal(size=HIDDEN)), jnp.asarray(rng.normal(size=INPUT))
    np.testing.assert_array_equal(cell(h, x), cell.gru(x, h))
    assert cell.output(h) is h
    assert cell.init_hidden().shape == (HIDDEN,) == (cell.state_size,)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_sizes_are_validated(name):
    cls = {"lstm": LSTM, "gru": GRU}[name]
    with pytest.raises(ValueError, match="hidden_size.*0"):
        cls(2, 0, key=jax.random.key(0))


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_rtrl_equals_bptt(name):
    """Summed over a sequence, RTRL's dense path equals `jax.grad` of the unrolled loss."""
    cell = make(name)
    rng = np.random.default_rng(2)
    xs = jnp.asarray(rng.normal(size=(T, INPUT)))
    cs = jnp.asarray(rng.normal(size=(T, HIDDEN)))
    estimator = RTRL()

    @eqx.filter_jit
    def online(cell):
        hidden = cell.init_hidden()
        state = estimator.init(cell, hidden, xs[0])

        def body(carry, step):
            hidden, state = carry
            x, c = step
            hidden, state = estimator.step(cell, hidden, x, state)
            return (hidden, state), estimator.gradient(cell, state, c)

        _, grads = jax.lax.scan(body, (hidden, state), (xs, cs))
        return jax.tree.map(lambda g: g.sum(0), grads)

    @eqx.filter_jit
    @eqx.filter_grad
    def bptt(cell):
        def body(hidden, step):
            x, c = step
            hidden = cell(hidden, x)
            return hidden, cell.output(hidden) @ c

        return jax.lax.scan(body, cell.init_hidden(), (xs, cs))[1].sum()

    for ours, reference in zip(
        jax.tree.leaves(online(cell)), jax.tree.leaves(bptt(cell)), strict=True
    ):
        np.testing.assert_allclose(ours, reference, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_rflo_refuses_and_rtrrl_accepts_rtrl(name):
    cell = make(name)
    with pytest.raises(ValueError, match=f"RFLO cannot serve {type(cell).__name__}"):
        RTRRL(cell=cell, estimator=RFLO())
    RTRRL(cell=cell, estimator=RTRL())  # its __check_init__ runs `RTRL().init` on the cell
