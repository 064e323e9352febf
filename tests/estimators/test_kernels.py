"""The kernel registry: estimators find a cell's structured form through the cell's type.

A diagonal linear cell defined here, ``h_t = a ⊙ h_{t-1} + W x_t`` with ``y_t = h_t``, gets an
exact RTRL kernel (per-neuron traces, O(N·I)) and its SnAp-0 form, registered by a fixture
and removed after the test. `RTRL` and `LocalMSE` must pick them up (and the kernel must agree
with `jax.grad` in float64); the unregistered parent class gets the dense fallback from `RTRL`
and `LocalMSE` and the clear refusal from `RFLO`.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtrrl.cells import CTRNN, LRU, AbstractCell
from rtrrl.estimators import (
    RFLO,
    RTRL,
    CTRNNRTRLState,
    IncompatibleCellError,
    Kernel,
    LocalMSE,
    LocalMSEState,
    LRURTRLState,
    RFLOState,
    RTRLState,
    TruncatedBPTT,
    find_kernel,
    register_kernel,
    unregister_kernel,
)

INPUT, HIDDEN, T = 2, 3, 5


class _Diagonal(AbstractCell):
    """``h_t = a ⊙ h_{t-1} + W x_t``, ``y_t = h_t``: a cell no kernel is registered for."""

    a: jax.Array
    weight: jax.Array
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)

    def __init__(self, input_size: int, hidden_size: int, *, key: jax.Array):
        k_a, k_w = jax.random.split(key)
        self.a = jax.random.uniform(k_a, (hidden_size,), minval=0.3, maxval=0.9)
        self.weight = jax.random.normal(k_w, (hidden_size, input_size))
        self.input_size, self.hidden_size = input_size, hidden_size

    @property
    def feature_size(self) -> int:
        return self.hidden_size

    def init_hidden(self):
        return jnp.zeros((self.hidden_size,), self.a.dtype)

    def __call__(self, hidden, x):
        return self.a * hidden + self.weight @ x

    def output(self, hidden):
        return hidden


class _StructuredDiagonal(_Diagonal):
    """The same cell; the fixture `diagonal_kernels` registers kernels for this type."""


class _DiagonalState(eqx.Module):
    """``a[i] = ∂h_{t,i}/∂a_i`` and ``weight[i, j] = ∂h_{t,i}/∂W_ij`` (the rest is zero)."""

    a: jax.Array
    weight: jax.Array


def _init(cell, hidden, x):
    return _DiagonalState(jnp.zeros_like(cell.a), jnp.zeros_like(cell.weight))


def _step(cell, hidden, x, state, *, carry):
    """``T^a_t = a T^a_{t-1} + h_{t-1}``, ``T^W_t = a T^W_{t-1} + 1 x_tᵀ`` (carry dropped: SnAp-0)."""
    keep = cell.a if carry else jnp.zeros_like(cell.a)
    immediate_w = jnp.broadcast_to(x[None, :], cell.weight.shape)
    traces = _DiagonalState(keep * state.a + hidden, keep[:, None] * state.weight + immediate_w)
    return cell(hidden, x), traces


def _gradient(cell, state, cotangent):
    values = (cotangent * state.a, cotangent[:, None] * state.weight)
    return eqx.tree_at(lambda p: (p.a, p.weight), eqx.filter(cell, eqx.is_inexact_array), values)


def _norm_squared(cell, state, cotangent):
    return jnp.sum(cotangent**2 * (state.a**2 + jnp.sum(state.weight**2, axis=1)))


RTRL_KERNEL = Kernel(
    _DiagonalState, _init, functools.partial(_step, carry=True), _gradient, _norm_squared
)
SNAP0_KERNEL = Kernel(_DiagonalState, _init, functools.partial(_step, carry=False), _gradient)


@pytest.fixture
def diagonal_kernels():
    register_kernel("rtrl", _StructuredDiagonal, RTRL_KERNEL)
    register_kernel("local-mse", _StructuredDiagonal, SNAP0_KERNEL)
    try:
        yield
    finally:
        unregister_kernel("rtrl", _StructuredDiagonal)
        unregister_kernel("local-mse", _StructuredDiagonal)


def make(cell_type: type[_Diagonal]) -> _Diagonal:
    return cell_type(INPUT, HIDDEN, key=jax.random.key(4))


def data(cell: AbstractCell):
    kx, kc = jax.random.split(jax.random.key(9))
    return jax.random.normal(kx, (T, cell.input_size)), jax.random.normal(kc, (T, HIDDEN))


def summed_gradient(estimator, cell, xs, cs):
    """``Σ_t estimator.gradient(cell, state_t, c_t)`` over the sequence (eager, no jit cache)."""
    hidden = cell.init_hidden()
    state = estimator.init(cell, hidden, xs[0])
    total = None
    for x, c in zip(xs, cs, strict=True):
        hidden, state = estimator.step(cell, hidden, x, state)
        grads = estimator.gradient(cell, state, c)
        total = grads if total is None else jax.tree.map(jnp.add, total, grads)
    return total


def bptt(cell, xs, cs):
    def loss(cell):
        def body(hidden, step):
            x, c = step
            hidden = cell(hidden, x)
            return hidden, cell.output(hidden) @ c

        return jax.lax.scan(body, cell.init_hidden(), (xs, cs))[1].sum()

    return eqx.filter_grad(loss)(cell)


def assert_trees_close(actual, expected, rtol=1e-10):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * float(jnp.max(jnp.abs(e))))


# --- a registered kernel is found ------------------------------------------------------------


def test_rtrl_uses_a_registered_kernel_and_it_equals_bptt(diagonal_kernels):
    cell = make(_StructuredDiagonal)
    xs, cs = data(cell)
    assert find_kernel("rtrl", cell) is RTRL_KERNEL
    assert type(RTRL().init(cell, cell.init_hidden(), xs[0])) is _DiagonalState
    reference = bptt(cell, xs, cs)
    assert_trees_close(summed_gradient(RTRL(), cell, xs, cs), reference)
    # The generic form is still there, and agrees.
    assert type(RTRL(structured=False).init(cell, cell.init_hidden(), xs[0])) is RTRLState
    assert_trees_close(summed_gradient(RTRL(structured=False), cell, xs, cs), reference)


def test_local_mse_uses_a_registered_kernel_and_equals_tbptt_window_1(diagonal_kernels):
    cell = make(_StructuredDiagonal)
    xs, cs = data(cell)
    assert type(LocalMSE().init(cell, cell.init_hidden(), xs[0])) is _DiagonalState
    expected = summed_gradient(TruncatedBPTT(1), cell, xs, cs)
    assert_trees_close(summed_gradient(LocalMSE(), cell, xs, cs), expected)


def test_a_kernels_gradient_norm_squared_is_used_and_optional(diagonal_kernels):
    cell = make(_StructuredDiagonal)
    xs, cs = data(cell)
    for estimator in (RTRL(), LocalMSE()):  # with and without a kernel norm
        hidden, state = estimator.step(
            cell, cell.init_hidden(), xs[0], estimator.init(cell, cell.init_hidden(), xs[0])
        )
        _, state = estimator.step(cell, hidden, xs[1], state)
        grads = estimator.gradient(cell, state, cs[1])
        expected = sum(jnp.sum(g**2) for g in jax.tree.leaves(grads))
        got = estimator.gradient_norm_squared(cell, state, cs[1])
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_subclasses_inherit_kernels_through_the_mro(diagonal_kernels):
    class Sub(_StructuredDiagonal):
        pass

    class SubCTRNN(CTRNN):
        pass

    assert find_kernel("rtrl", Sub) is RTRL_KERNEL
    assert find_kernel("rtrl", _Diagonal) is None  # the parent does not get its child's kernel
    ctrnn = SubCTRNN(INPUT, HIDDEN, key=jax.random.key(0))
    assert type(RFLO().init(ctrnn, ctrnn.init_hidden(), jnp.zeros(INPUT))) is RFLOState
    assert type(LocalMSE().init(ctrnn, ctrnn.init_hidden(), jnp.zeros(INPUT))) is LocalMSEState


def test_built_in_kernels_are_registered_per_cell():
    assert find_kernel("rflo", CTRNN) is not None and find_kernel("rflo", LRU) is None
    assert find_kernel("local-mse", CTRNN).state_type is LocalMSEState
    assert find_kernel("local-mse", LRU).state_type is LRURTRLState
    assert find_kernel("rtrl", LRU).state_type is LRURTRLState
    assert find_kernel("rtrl", CTRNN).state_type is CTRNNRTRLState


# --- no kernel: the generic form or the clear error ------------------------------------------


def test_an_unregistered_cell_gets_the_generic_form():
    cell = make(_Diagonal)
    xs, cs = data(cell)
    for estimator in (RTRL(), LocalMSE()):
        assert type(estimator.init(cell, cell.init_hidden(), xs[0])) is RTRLState
    assert_trees_close(summed_gradient(RTRL(), cell, xs, cs), bptt(cell, xs, cs))


def test_rflo_refuses_an_unregistered_cell_naming_both():
    cell = make(_Diagonal)
    message = (
        r"RFLO cannot serve _Diagonal: RFLO's leaky per-neuron trace \(Murray 2019\) is defined "
        r"for CTRNN cells only. Use RTRL\(\) \(exact, any cell\) or LocalMSE\(\)"
    )
    with pytest.raises(IncompatibleCellError, match=message):
        RFLO().init(cell, cell.init_hidden(), jnp.zeros(INPUT))


def test_a_state_of_another_form_is_refused_naming_the_method():
    cell = LRU(INPUT, HIDDEN, key=jax.random.key(0))
    x, c = jnp.ones(INPUT), jnp.ones(HIDDEN)
    dense = RTRL(structured=False).init(cell, cell.init_hidden(), x)
    with pytest.raises(TypeError, match=r"RTRL\.step: RTRL serves LRU with a LRURTRLState, got"):
        RTRL().step(cell, cell.init_hidden(), x, dense)
    with pytest.raises(TypeError, match=r"RTRL\.gradient: .* got a RTRLState"):
        RTRL().gradient(cell, dense, c)


# --- the registry's own checks ---------------------------------------------------------------


def test_registering_twice_is_refused_unless_replacing(diagonal_kernels):
    with pytest.raises(ValueError, match="'rtrl' kernel is already registered for _Structured"):
        register_kernel("rtrl", _StructuredDiagonal, SNAP0_KERNEL)
    register_kernel("rtrl", _StructuredDiagonal, SNAP0_KERNEL, replace=True)
    assert find_kernel("rtrl", _StructuredDiagonal) is SNAP0_KERNEL


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: register_kernel("bptt", _Diagonal, RTRL_KERNEL), ValueError, "`kind` must be"),
        (lambda: find_kernel("RTRL", CTRNN), ValueError, "`kind` must be one of"),
        (lambda: register_kernel("rtrl", int, RTRL_KERNEL), TypeError, "subclass of AbstractCell"),
        (lambda: register_kernel("rtrl", _Diagonal, _step), TypeError, "must be a Kernel"),
        (lambda: unregister_kernel("rflo", _Diagonal), KeyError, "no 'rflo' kernel"),
    ],
    ids=["unknown-kind", "kind-is-lower-case", "not-a-cell", "not-a-kernel", "unregister-none"],
)
def test_registry_rejects_bad_arguments(call, error, match, without_runtime_type_checks):
    with pytest.raises(error, match=match):
        call()
