"""Supervised online learning with any cell and gradient estimator (no RL involved).

`fit_sequence` learns to predict a target sequence from an input sequence one step at a time,
the way RTRRL learns: at every step the estimator advances with the cell, a linear readout
predicts the target, and the squared error updates readout and cell at once; there is no
replay and no unrolling (beyond what the estimator itself keeps). The whole sequence runs
under one `jax.lax.scan`, so it is one compiled call.

``python -m rtrrl.online`` trains a CTRNN with each estimator on a delayed-copy task and
prints how the loss falls.
"""

from typing import Generic, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._types import Array, Features, Float, PRNGKey, Real
from ..cells import AbstractCell
from ..estimators import AbstractGradientEstimator, key_argument

CellT = TypeVar("CellT", bound=AbstractCell)


class LinearReadout(eqx.Module):
    """``ŷ = W y + b``: the linear map from a cell's features to the targets.

    **Arguments:** ``feature_size``, ``target_size``; ``dtype`` of the (zero) initial weights,
    by default JAX's default float. Starting at zero keeps `fit_sequence` deterministic given
    the cell, and costs nothing: the readout's own gradient is exact from the first step.
    """

    weight: Float[Array, "targets features"]
    bias: Float[Array, " targets"]

    def __init__(self, feature_size: int, target_size: int, *, dtype: jnp.dtype | None = None):
        dtype = jnp.zeros(()).dtype if dtype is None else dtype
        self.weight = jnp.zeros((target_size, feature_size), dtype)
        self.bias = jnp.zeros((target_size,), dtype)

    def __call__(self, features: Features) -> Float[Array, " targets"]:
        return self.weight @ features + self.bias


class FitResult(eqx.Module, Generic[CellT]):
    """What `fit_sequence` returns: the trained modules and the online record.

    Generic over the cell's type: ``fit_sequence(CTRNN(...), ...).cell`` is a `CTRNN` to a
    type checker.

    ``losses[t]`` and ``predictions[t]`` are those made at step ``t`` *before* that step's
    update, i.e. the honest online (prequential) error.
    """

    cell: CellT
    readout: LinearReadout
    losses: Float[Array, " time"]
    predictions: Float[Array, "time targets"]


@eqx.filter_jit
def fit_sequence(
    cell: CellT,
    estimator: AbstractGradientEstimator,
    optimizer: optax.GradientTransformation,
    inputs: Float[Array, "time input"],
    targets: Real[Array, "time targets"],
    *,
    readout: LinearReadout | None = None,
    key: PRNGKey | None = None,
) -> FitResult[CellT]:
    r"""Learn ``targets[t] ≈ readout(cell.output(h_t))`` online, one update per step.

    Per step ``t`` (starting from ``h_0 = cell.init_hidden()``):

        h_t, s_t = estimator.step(cell, h_{t-1}, x_t, s_{t-1})
        ŷ_t = W y_t + b,   y_t = cell.output(h_t),   L_t = mean((ŷ_t - target_t)²)
        ∇_W = e yᵀ,  ∇_b = e,  ∇_θ = estimator.gradient(cell, s_t, Wᵀ e),  e = ∂L_t/∂ŷ_t
        (θ, W, b) ← optimizer update with those gradients.

    The cell's gradient is the estimator's estimate of ``∂L_t/∂θ`` (exact for RTRL with the
    parameters' history held fixed, approximate for RFLO / LocalMSE / short truncations).

    **Arguments:**

    - ``cell``, ``estimator``: any pair the estimator serves.
    - ``optimizer``: an optax transformation; it sees ``(cell parameters, readout)``.
    - ``inputs``, ``targets``: the sequences, shapes ``(T, I)`` and ``(T, K)``.
    - ``readout``: the initial readout (default: zeros).
    - ``key``: required by a stochastic estimator (``estimator.stochastic``, e.g. UORO): it is
      split into one key for ``init`` and one per step. Deterministic estimators ignore it.

    **Returns:** a `FitResult` with the trained cell and readout and the per-step losses and
    predictions.
    """
    if jnp.ndim(inputs) != 2 or jnp.ndim(targets) != 2 or len(inputs) != len(targets):
        raise ValueError(
            f"fit_sequence: `inputs` and `targets` must be (time, size) arrays of the same "
            f"length, got shapes {jnp.shape(inputs)} and {jnp.shape(targets)} (a single target "
            "channel is targets[:, None])."
        )
    if len(inputs) == 0:
        raise ValueError("fit_sequence: the sequences are empty (time = 0).")
    if estimator.stochastic and key is None:
        raise ValueError(
            f"fit_sequence: {type(estimator).__name__} draws random numbers: pass "
            "key=jax.random.key(...)."
        )
    # Integer targets (class labels, 0/1) are regressed as floats.
    dtype = targets.dtype if jnp.issubdtype(targets.dtype, jnp.floating) else jnp.zeros(()).dtype
    targets = targets.astype(dtype)
    if readout is None:
        readout = LinearReadout(cell.feature_size, targets.shape[1], dtype=dtype)
    if readout.weight.shape != (targets.shape[1], cell.feature_size):
        raise ValueError(
            f"fit_sequence: `readout` maps {readout.weight.shape[1]} features to "
            f"{readout.weight.shape[0]} targets, but the cell has {cell.feature_size} features "
            f"and `targets` has {targets.shape[1]} channels."
        )
    params, static = eqx.partition(cell, eqx.is_inexact_array)
    trainable = (params, readout)
    hidden = cell.init_hidden()
    with jax.numpy_dtype_promotion("standard"):
        # An equinox module is a PyTree; optax's `Params` alias does not name modules.
        opt_state = optimizer.init(trainable)  # pyright: ignore[reportArgumentType]
    if estimator.stochastic:
        assert key is not None  # refused above
        init_key, steps_key = jax.random.split(key)
        step_keys = jax.random.split(steps_key, len(inputs))
    else:  # no keys at all: the program of a deterministic estimator stays as it was
        init_key, step_keys = None, None
    first = estimator.init(cell, hidden, inputs[0], **key_argument(estimator, init_key))
    carry = (trainable, opt_state, hidden, first)

    def step(carry, data):
        trainable, opt_state, hidden, est_state = carry
        params, readout = trainable
        model = eqx.combine(params, static)
        x, target, step_key = data
        hidden, est_state = estimator.step(
            model, hidden, x, est_state, **key_argument(estimator, step_key)
        )
        features = model.output(hidden)
        prediction = readout(features)
        error = prediction - target
        d_prediction = 2.0 * error / error.size
        readout_grads = eqx.tree_at(
            lambda r: (r.weight, r.bias),
            readout,
            (jnp.outer(d_prediction, features), d_prediction),
        )
        cell_grads = estimator.gradient(model, est_state, readout.weight.T @ d_prediction)
        # optax (e.g. Adam's bias correction `decay**count`) mixes a weak float with an int32
        # count, which strict dtype promotion rejects; the scope is this call only.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update((cell_grads, readout_grads), opt_state, trainable)
        trainable = eqx.apply_updates(trainable, updates)
        return (trainable, opt_state, hidden, est_state), (jnp.mean(error**2), prediction)

    (trainable, *_), (losses, predictions) = jax.lax.scan(step, carry, (inputs, targets, step_keys))
    params, readout = trainable
    return FitResult(eqx.combine(params, static), readout, losses, predictions)


def delayed_copy(
    key: PRNGKey, length: int, delay: int, *, channels: int = 1
) -> tuple[Float[Array, "time channels"], Float[Array, "time channels"]]:
    """A memory task: white-noise inputs ``x_t ~ N(0, 1)``, targets ``x_{t - delay}`` (0 before).

    A predictor without memory scores the target variance (1); solving it needs the cell to
    hold the last `delay` inputs.
    """
    if delay < 0 or length <= delay:
        raise ValueError(f"delayed_copy: need 0 <= `delay` < `length`, got {delay}, {length}.")
    inputs = jax.random.normal(key, (length, channels))
    targets = jnp.concatenate(
        [jnp.zeros((delay, channels), inputs.dtype), inputs[: length - delay]]
    )
    return inputs, targets
