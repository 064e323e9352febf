"""Continuous-time RNN in Murray's (2019) discretised form."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Bool, Features, Float, Hidden, Input, PRNGKey
from ._abstract import AbstractCell
from ._wiring import AbstractWiring, Dense


@eqx.filter_jit
def _draw_parameters(
    key: PRNGKey,
    input_size: int,
    hidden_size: int,
    tau_range: tuple[float, float],
    mask: Bool[Array, "hidden columns"] | None,
) -> tuple[Float[Array, "hidden columns"], Float[Array, " hidden"]]:
    """Initial ``(weight, raw_tau)``; compiled once per size instead of op by op."""
    k_in, k_rec, k_tau = jax.random.split(key, 3)
    w_in = jax.random.normal(k_in, (hidden_size, input_size)) / input_size**0.5
    w_rec = jax.random.normal(k_rec, (hidden_size, hidden_size)) / hidden_size**0.5
    weight = jnp.concatenate([w_in, w_rec, jnp.zeros((hidden_size, 1), w_in.dtype)], axis=1)
    if mask is not None:
        weight = jnp.where(mask, weight, 0.0)
    tau = jax.random.uniform(k_tau, (hidden_size,), weight.dtype, *tau_range)
    raw_tau = jnp.log(jnp.expm1(tau - 1.0))  # the inverse of τ = 1 + softplus(raw_tau)
    return weight, raw_tau


class CTRNN(AbstractCell):
    r"""Leaky tanh RNN with learned per-neuron time constants (Murray 2019).

    With ``ξ_t = [x_t, h_{t-1}, 1] ∈ R^{I+N+1}`` and the masked weight ``W̃ = m ⊙ W``,

        h_t = h_{t-1} + (dt / τ) ⊙ (-h_{t-1} + tanh(W̃ ξ_t)),      y_t = output(h_t) = h_t.

    **Time constants.** ``τ ≥ 1`` is kept by construction: the trainable leaf is ``raw_tau``
    and ``τ = 1 + softplus(raw_tau)`` (a property), so no optimiser step can leave the valid
    range and nothing is clipped by hand (the reference code clipped ``τ`` after each update,
    which biases Adam). Gradients are therefore reported for ``raw_tau``.

    **Wiring.** An optional fixed boolean ``mask`` (see `rtrrl.cells.RandomSparse`, `NCP`)
    multiplies ``W`` in the forward pass. It is a bool array, so it is not a trainable leaf;
    gradients of masked-out entries of ``weight`` are exactly zero. `forward_terms` is the one
    place the masked forward computation lives; the CTRNN's estimator kernels (RFLO, LocalMSE:
    ``rtrrl/estimators/_kernels/_ctrnn.py``) call it so that their traces see exactly what the
    forward pass computes (a pitfall of the paper's code).

    **Arguments:**

    - ``input_size`` ``I`` and ``hidden_size`` ``N`` (both >= 1).
    - ``key``: draws the weights, the time constants and a random wiring.
    - ``dt``: Euler step (> 0); the paper uses 1.
    - ``wiring``: `None` or `Dense()` for a dense cell, another `AbstractWiring`, or a boolean
      mask of shape ``(N, I + N + 1)``.
    - ``tau_range``: ``τ`` is initialised uniformly in this interval (each bound > 1).

    Weights start as ``N(0, 1/I)`` for the input block, ``N(0, 1/N)`` for the recurrent block
    and 0 for the bias, with masked-out entries set to 0.
    """

    weight: Float[Array, "hidden columns"]
    raw_tau: Float[Array, " hidden"]
    mask: Bool[Array, "hidden columns"] | None
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        key: PRNGKey,
        dt: float = 1.0,
        wiring: AbstractWiring | Bool[Array, "hidden columns"] | None = None,
        tau_range: tuple[float, float] = (4.0, 9.0),
    ):
        # Checked before any array is drawn, so that the error names the argument; the
        # invariants of the finished cell (dt, shapes, mask) are checked in `__check_init__`.
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CTRNN: `{name}` must be a positive int, got {value!r}.")
        lo, hi = tau_range
        if not 1.0 < lo <= hi:
            raise ValueError(f"CTRNN: `tau_range` must satisfy 1 < low <= high, got {tau_range}.")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.dt = dt
        k_params, k_wiring = jax.random.split(key)
        if wiring is None or isinstance(wiring, Dense):
            self.mask = None
        elif isinstance(wiring, AbstractWiring):
            self.mask = wiring.mask(input_size, hidden_size, key=k_wiring)
        else:
            self.mask = wiring
        # A mask of the wrong shape is not applied here: `__check_init__` reports it by name.
        columns = input_size + hidden_size + 1
        fits = self.mask is not None and self.mask.shape == (hidden_size, columns)
        self.weight, self.raw_tau = _draw_parameters(
            k_params, input_size, hidden_size, (float(lo), float(hi)), self.mask if fits else None
        )

    def __check_init__(self) -> None:
        columns = self.input_size + self.hidden_size + 1
        if not (isinstance(self.dt, int | float) and math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"CTRNN: `dt` must be a finite number > 0, got {self.dt!r}.")
        if self.weight.shape != (self.hidden_size, columns):
            raise ValueError(
                f"CTRNN: `weight` must have shape (hidden, input + hidden + 1) = "
                f"({self.hidden_size}, {columns}), got {self.weight.shape}."
            )
        if self.raw_tau.shape != (self.hidden_size,):
            raise ValueError(
                f"CTRNN: `raw_tau` must have shape ({self.hidden_size},), got {self.raw_tau.shape}."
            )
        if self.mask is not None and (
            self.mask.shape != (self.hidden_size, columns) or self.mask.dtype != jnp.bool_
        ):
            raise ValueError(
                f"CTRNN: `wiring` mask must be a bool array of shape ({self.hidden_size}, "
                f"{columns}), got {self.mask.dtype} {self.mask.shape}."
            )

    @property
    def feature_size(self) -> int:
        return self.hidden_size

    @property
    def tau(self) -> Float[Array, " hidden"]:
        """Time constants ``τ = 1 + softplus(raw_tau) > 1``."""
        return 1.0 + jax.nn.softplus(self.raw_tau)

    @property
    def masked_weight(self) -> Float[Array, "hidden columns"]:
        """``W̃ = m ⊙ W``, the weight the forward pass uses."""
        if self.mask is None:
            return self.weight
        return jnp.where(self.mask, self.weight, 0.0)

    def init_hidden(self) -> Float[Array, " hidden"]:
        return jnp.zeros((self.hidden_size,), self.weight.dtype)

    def forward_terms(
        self, hidden: Float[Array, " hidden"], x: Input
    ) -> tuple[Float[Array, " columns"], Float[Array, " hidden"], Float[Array, " hidden"]]:
        """The pieces of one step: ``(ξ, a = tanh(W̃ ξ), r = dt / τ)``; ``h' = h + r (a - h)``."""
        self.check_step_inputs(hidden, x)
        xi = jnp.concatenate([x, hidden, jnp.ones((1,), hidden.dtype)])
        activation = jnp.tanh(self.masked_weight @ xi)
        return xi, activation, self.dt / self.tau

    def __call__(self, hidden: Hidden, x: Input) -> Float[Array, " hidden"]:
        _, activation, rate = self.forward_terms(hidden, x)
        return hidden + rate * (activation - hidden)

    def output(self, hidden: Hidden) -> Features:
        return hidden
