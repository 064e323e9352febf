"""Online supervised learning: the estimators learn a memory task with `fit_sequence`."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rtrrl.cells import CTRNN, LRU
from rtrrl.estimators import RFLO, RTRL, LocalMSE
from rtrrl.online import FitResult, LinearReadout, delayed_copy, fit_sequence

LENGTH, DELAY, HIDDEN = 5000, 2, 16


def first_and_last_tenth(losses) -> tuple[float, float]:
    tenth = losses.shape[0] // 10
    return float(losses[:tenth].mean()), float(losses[-tenth:].mean())


@functools.cache
def task():
    inputs, targets = delayed_copy(jax.random.key(0), LENGTH, DELAY)
    cell = CTRNN(1, HIDDEN, key=jax.random.key(1), tau_range=(1.5, 3.0))
    return cell, inputs, targets


def readout_only(learning_rate: float) -> optax.GradientTransformation:
    """Adam on the readout, the cell frozen: an echo-state baseline."""

    def labels(trainable):
        params, readout = trainable
        return (jax.tree.map(lambda _: "cell", params), jax.tree.map(lambda _: "readout", readout))

    return optax.multi_transform(
        {"cell": optax.set_to_zero(), "readout": optax.adam(learning_rate)}, labels
    )


@functools.cache
def frozen_cell_loss() -> float:
    cell, inputs, targets = task()
    return first_and_last_tenth(
        fit_sequence(cell, RTRL(), readout_only(3e-3), inputs, targets).losses
    )[1]


@pytest.mark.parametrize("estimator", [RTRL(), RFLO()], ids=["rtrl", "rflo"])
def test_estimator_learns_delayed_copy(estimator):
    cell, inputs, targets = task()
    result = fit_sequence(cell, estimator, optax.adam(3e-3), inputs, targets)
    first, last = first_and_last_tenth(result.losses)
    assert last < 0.3 * first, (first, last)
    # Better than a readout on the frozen random cell: the cell itself learned to remember.
    assert last < 0.5 * frozen_cell_loss(), (last, frozen_cell_loss())
    assert not np.allclose(result.cell.weight, cell.weight)


def test_fit_sequence_shapes_and_lru():
    inputs, targets = delayed_copy(jax.random.key(2), 50, 1, channels=2)
    cell = LRU(2, 4, key=jax.random.key(3), output_size=3)
    result = fit_sequence(cell, LocalMSE(), optax.sgd(1e-2), inputs, targets)
    assert isinstance(result, FitResult) and isinstance(result.cell, LRU)
    assert result.losses.shape == (50,) and result.predictions.shape == (50, 2)
    assert result.readout.weight.shape == (2, 3)
    # The first prediction is made by the zero readout, before any update.
    np.testing.assert_array_equal(result.predictions[0], jnp.zeros(2))
    np.testing.assert_allclose(result.losses[0], jnp.mean(targets[0] ** 2))


def test_linear_readout_and_delayed_copy():
    readout = LinearReadout(4, 2)
    assert readout(jnp.ones(4)).shape == (2,)
    inputs, targets = delayed_copy(jax.random.key(0), 10, 3)
    np.testing.assert_array_equal(targets[3:], inputs[:-3])
    np.testing.assert_array_equal(targets[:3], 0.0)
    with pytest.raises(ValueError, match="delay"):
        delayed_copy(jax.random.key(0), 3, 3)


def test_integer_targets_are_regressed_as_floats():
    """0/1 labels: the default readout is built in the default float dtype, not int32."""
    key = jax.random.key(0)
    inputs, targets = delayed_copy(key, 50, 2)
    labels = (targets > 0).astype(jnp.int32)
    result = fit_sequence(CTRNN(1, 4, key=key), RFLO(), optax.adam(1e-3), inputs, labels)
    assert result.readout.weight.dtype == jnp.zeros(()).dtype
    assert np.isfinite(np.asarray(result.losses)).all()


@pytest.mark.parametrize(
    ("inputs", "targets", "message"),
    [
        (jnp.ones((20, 1)), jnp.ones(20), "must be (time, size) arrays of the same length"),
        (jnp.ones((20, 1)), jnp.ones((15, 1)), "got shapes (20, 1) and (15, 1)"),
        (jnp.ones((0, 1)), jnp.ones((0, 1)), "the sequences are empty"),
    ],
)
def test_sequences_of_the_wrong_shape_are_refused(
    inputs, targets, message, without_runtime_type_checks
):
    cell = CTRNN(1, 4, key=jax.random.key(0))
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_sequence(cell, RFLO(), optax.adam(1e-3), inputs, targets)


def test_a_readout_of_the_wrong_size_is_refused():
    cell = CTRNN(1, 4, key=jax.random.key(0))
    readout = LinearReadout(5, 1)
    with pytest.raises(ValueError, match="`readout` maps 5 features to 1 targets, but the cell"):
        fit_sequence(
            cell, RFLO(), optax.adam(1e-3), jnp.ones((9, 1)), jnp.ones((9, 1)), readout=readout
        )
