"""The exact reference (BPTT of the unrolled sequence) and the online sum compared with it."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Float, Grads, Hidden, PRNGKey, Scalar
from ..cells import AbstractCell
from ..estimators import AbstractGradientEstimator, key_argument


def check_sequence(
    cell: AbstractCell, hidden0: Any, inputs: Any, cotangents: Any, *, caller: str
) -> None:
    """Raise a `ValueError` naming `caller` unless ``hidden0`` is shaped like
    ``cell.init_hidden()``, ``inputs`` is ``(T, input_size)`` and ``cotangents`` is
    ``(T, feature_size)`` with the same ``T``."""
    expected_hidden = jax.eval_shape(cell.init_hidden).shape
    if jnp.shape(hidden0) != expected_hidden:
        raise ValueError(
            f"{caller}: `hidden0` must have shape {expected_hidden} (that of "
            f"{type(cell).__name__}.init_hidden()), got {jnp.shape(hidden0)}."
        )
    if jnp.ndim(inputs) != 2 or jnp.shape(inputs)[1] != cell.input_size:
        raise ValueError(
            f"{caller}: `inputs` must have shape (T, {cell.input_size}) (one row per step), "
            f"got {jnp.shape(inputs)}."
        )
    expected_cotangents = (jnp.shape(inputs)[0], cell.feature_size)
    if jnp.shape(cotangents) != expected_cotangents:
        raise ValueError(
            f"{caller}: `cotangents` must have shape {expected_cotangents} (one row of the "
            f"cell's features per input), got {jnp.shape(cotangents)}."
        )


def sequence_loss(
    cell: AbstractCell,
    hidden0: Hidden,
    inputs: Float[Array, "time input"],
    cotangents: Float[Array, "time features"],
) -> tuple[Scalar, Hidden]:
    """``(L, h_T)`` with ``L(θ) = Σ_{t=1..T} c_tᵀ output_θ(h_t)`` and ``h_t = f_θ(h_{t-1}, x_t)``.

    The loss whose gradient every estimator's summed output is compared with: its gradient
    is ``Σ_t (d output(h_t)/dθ)ᵀ c_t``, the sum of what ``estimator.gradient`` returns at each
    step. ``hidden0`` is a constant (not a function of ``θ``).
    """
    check_sequence(cell, hidden0, inputs, cotangents, caller="sequence_loss")

    def body(hidden: Hidden, step: tuple[Array, Array]) -> tuple[Hidden, Scalar]:
        x, c = step
        hidden = cell(hidden, x)
        return hidden, cell.output(hidden) @ c

    hidden, terms = jax.lax.scan(body, hidden0, (inputs, cotangents))
    return terms.sum(), hidden


def bptt_gradient(
    cell: AbstractCell,
    hidden0: Hidden,
    inputs: Float[Array, "time input"],
    cotangents: Float[Array, "time features"],
) -> Grads:
    """The exact reference: ``∇_θ L`` with ``L(θ) = Σ_t c_tᵀ output_θ(h_t)`` (`sequence_loss`).

    Backpropagation through the whole unrolled sequence, by `jax.grad`. **Shapes:**
    ``hidden0`` like ``cell.init_hidden()``; ``inputs`` ``(T, input_size)``; ``cotangents``
    ``(T, feature_size)``. **Returns** a PyTree shaped like
    ``eqx.filter(cell, eqx.is_inexact_array)`` (the cell's trainable leaves; ``None``
    elsewhere). An estimator that is exact for fixed parameters (RTRL) must give this as
    ``Σ_t estimator.gradient(cell, state_t, c_t)``.
    """
    check_sequence(cell, hidden0, inputs, cotangents, caller="bptt_gradient")
    return eqx.filter_grad(lambda c: sequence_loss(c, hidden0, inputs, cotangents)[0])(cell)


def step_keys(key: PRNGKey, length: int) -> tuple[PRNGKey, Array]:
    """``(init_key, step_keys)``: one key for ``init`` and ``length`` for the steps, split as
    `rtrrl.fit_sequence` splits its key."""
    init_key, steps_key = jax.random.split(key)
    return init_key, jax.random.split(steps_key, length)


def online_steps(
    estimator: AbstractGradientEstimator,
    cell: AbstractCell,
    hidden0: Hidden,
    inputs: Array,
    cotangents: Array,
    key: PRNGKey | None,
) -> tuple[Hidden, Any, Grads]:
    """``(h_T, state_T, gradients)``: the estimator run over the sequence under `lax.scan`,
    with ``gradients`` stacked over time (leading axis ``T``)."""
    if estimator.stochastic and key is None:
        raise ValueError(
            f"{type(estimator).__name__} is stochastic (stochastic = True): pass a `key`."
        )
    init_key, keys = step_keys(key, len(inputs)) if key is not None else (None, None)
    state = estimator.init(cell, hidden0, inputs[0], **key_argument(estimator, init_key))

    def body(carry: tuple[Hidden, Any], step: tuple[Any, ...]) -> tuple[tuple[Hidden, Any], Grads]:
        hidden, state = carry
        x, c, k = step
        hidden, state = estimator.step(cell, hidden, x, state, **key_argument(estimator, k))
        return (hidden, state), estimator.gradient(cell, state, c)

    (hidden, state), grads = jax.lax.scan(body, (hidden0, state), (inputs, cotangents, keys))
    return hidden, state, grads


def online_gradient(
    estimator: AbstractGradientEstimator,
    cell: AbstractCell,
    hidden0: Hidden,
    inputs: Float[Array, "time input"],
    cotangents: Float[Array, "time features"],
    *,
    key: PRNGKey | None = None,
) -> tuple[Hidden, Grads]:
    """``(h_T, Σ_{t=1..T} estimator.gradient(cell, state_t, c_t))``, under one `lax.scan`.

    ``state_0 = estimator.init(cell, hidden0, x_1)``, then ``(h_t, state_t) =
    estimator.step(cell, h_{t-1}, x_t, state_{t-1})``: the online estimate of
    `bptt_gradient` (same arguments and result shape). A stochastic estimator needs ``key``,
    split into one key for ``init`` and one per step (as `rtrrl.fit_sequence` does); a
    deterministic one is called without a key and ``key`` is ignored. Jit it with
    `equinox.filter_jit`.
    """
    check_sequence(cell, hidden0, inputs, cotangents, caller="online_gradient")
    hidden, _, grads = online_steps(estimator, cell, hidden0, inputs, cotangents, key)
    return hidden, jax.tree.map(lambda g: g.sum(0), grads)


def data_dtype(cell: AbstractCell) -> Any:
    """The dtype of the random inputs and cotangents for `cell`: that of its first real
    floating parameter (float64 for a cell built with ``jax_enable_x64``), else JAX's default
    float (float32 without x64)."""
    for leaf in jax.tree.leaves(eqx.filter(cell, eqx.is_inexact_array)):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.dtype
    return jnp.zeros(()).dtype


def random_sequence(
    cell: AbstractCell, key: PRNGKey, length: int, batch: int
) -> tuple[Array, Array, Array]:
    """Standard-normal ``inputs (batch, T, input_size)`` and ``cotangents (batch, T,
    feature_size)`` in `data_dtype`, and one estimator key per sequence ``(batch,)``."""
    dtype = data_dtype(cell)
    kx, kc, ke = jax.random.split(key, 3)
    xs = jax.random.normal(kx, (batch, length, cell.input_size), dtype)
    cs = jax.random.normal(kc, (batch, length, cell.feature_size), dtype)
    return xs, cs, jax.random.split(ke, batch)
