"""Linear Recurrent Unit (Orvieto et al. 2023), one step at a time."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Complex

from .._types import Array, Features, Float, Hidden, Input, PRNGKey
from ._abstract import AbstractCell


def _computed_once(z: Complex[Array, "*batch hidden"]) -> Complex[Array, "*batch hidden"]:
    """`z`, exactly, through an operation that XLA does not fuse into the loops reading it.

    XLA:CPU fuses the complex exponential of `LRU.lam` (an ``exp``, a ``sin`` and a ``cos``
    per neuron) into every per-environment loop that reads ``λ``, so a learner stepping ``B``
    environments recomputed it ``B`` times in each of those loops: a quarter of the LRU
    learner's step at batch 64. A scatter is a kernel of its own; writing ``z`` at its own
    indices into zeros copies it, bit for bit (NaNs and signed zeros included), so ``λ`` is
    computed once per step, into the scatter.

    (Tried for the same purpose: a sort by index, as fast at batch 64 and ~2 µs slower per
    step at batch 1, since the sort calls a comparator; a `lax.cond` whose branches both
    return ``z``, which `jax.vmap` turns into a fused select, and the training loop vmaps
    its seeds; `lax.optimization_barrier`, which XLA removes before fusion.)
    """
    index = jnp.arange(z.shape[-1])
    return jnp.zeros_like(z).at[..., index].set(z, indices_are_sorted=True, unique_indices=True)


@eqx.filter_jit
def _draw_parameters(
    key: PRNGKey,
    input_size: int,
    hidden_size: int,
    output_size: int,
    r_min: float,
    r_max: float,
    max_phase: float,
) -> tuple[Float[Array, "..."], ...]:
    """``(ν_log, θ_log, γ_log, B, C)`` of the ring initialisation, in `LRU`'s layout.

    Compiled once per size (sizes are static under `eqx.filter_jit`) instead of op by op.
    """
    k_r, k_phase, k_bre, k_bim, k_cre, k_cim = jax.random.split(key, 6)
    dtype = jnp.zeros(()).dtype
    # Draws of exactly 0 would give ν_log = +inf or θ_log = -inf: start at the tiniest float.
    tiny = jnp.finfo(dtype).tiny
    radius_sq = jax.random.uniform(k_r, (hidden_size,), dtype, r_min**2, r_max**2)
    nu = -0.5 * jnp.log(jnp.maximum(radius_sq, tiny))
    phase = jax.random.uniform(k_phase, (hidden_size,), dtype, 0.0, max_phase)
    # γ = sqrt(1 - |λ|²) with |λ|² = exp(-2ν); expm1 keeps it accurate when |λ| ≈ 1.
    gamma_log = 0.5 * jnp.log(-jnp.expm1(-2.0 * nu))
    # The parts of the complex B ∈ C^{N×I} and C ∈ C^{F×N}, each drawn in its textbook shape.
    b_shape, b_scale = (hidden_size, input_size), 1.0 / (2 * input_size) ** 0.5
    c_shape, c_scale = (output_size, hidden_size), 1.0 / hidden_size**0.5
    b_re = jax.random.normal(k_bre, b_shape, dtype) * b_scale
    b_im = jax.random.normal(k_bim, b_shape, dtype) * b_scale
    c_re = jax.random.normal(k_cre, c_shape, dtype) * c_scale
    c_im = jax.random.normal(k_cim, c_shape, dtype) * c_scale
    return (
        jnp.log(nu),
        jnp.log(jnp.maximum(phase, tiny)),
        gamma_log,
        jnp.concatenate([b_re.T, b_im.T], axis=1),
        jnp.concatenate([c_re, -c_im], axis=1),
    )


class LRU(AbstractCell):
    r"""Complex diagonal linear recurrence with a real readout (Orvieto et al. 2023).

    With complex input weights ``B̃ ∈ C^{N×I}`` and readout ``C̃ ∈ C^{F×N}``,

        λ = exp(-exp(ν_log) + i exp(θ_log)) ∈ C^N,        γ = exp(γ_log) ∈ R^N,
        h_t = λ ⊙ h_{t-1} + γ ⊙ (B̃ x_t),                  y_t = output(h_t) = Re(C̃ h_t).

    ``|λ| = exp(-exp(ν_log)) < 1`` for every parameter value, so the recurrence is stable by
    construction.

    **Parameters.** All trainable leaves are real, so optimisers and gradient PyTrees never see
    a complex number. The two matrices are stored as the real maps they are on the stacked
    real and imaginary parts, hidden axis last:

    - ``B``, ``(I, 2N)``: ``x_tᵀ B = [Re(B̃ x_t), Im(B̃ x_t)]``, that is
      ``B̃ = (B[:, :N] + i B[:, N:])ᵀ``;
    - ``C``, ``(F, 2N)``: ``y_t = C [Re h_t; Im h_t]``, that is ``C̃ = C[:, :N] - i C[:, N:]``.

    Why this layout: an online learner keeps, per environment, eligibility traces shaped like
    the parameters, and updates them every step. Rows of ``2N`` (64 at N = 32) run vectorised
    on XLA:CPU, where rows of ``I`` or ``N`` (``B̃``'s and ``C̃``'s parts stored apart, 7 and
    32 long on CartPole) were compiled to scalar code: the LRU learner's step at 64
    environments took 1.5× as long with four such leaves.

    **Initialisation** ("ring"): ``|λ|²`` uniform in ``[r_min², r_max²)``, the phase
    ``arg λ`` uniform in ``[0, max_phase)``, ``γ = sqrt(1 - |λ|²)`` (so a unit's stationary
    response to white input has unit variance), each part of ``B̃`` ``N(0, 1/(2I))``, each
    part of ``C̃`` ``N(0, 1/N)``.

    Because the recurrence is diagonal, exact RTRL costs O(N·I) per step (each neuron's
    ``ν, θ, γ`` and row of ``B̃`` influence only that neuron; ``C̃`` only acts in the readout):
    see
    `rtrrl.estimators.RTRL` and the LRU's kernels, ``rtrrl/estimators/_kernels/_lru.py``.

    **Arguments:**

    - ``input_size`` ``I``, ``hidden_size`` ``N`` (both >= 1).
    - ``key``: draws all parameters.
    - ``output_size`` ``F``: size of the real readout (default ``N``).
    - ``r_min``, ``r_max``: ring radii, ``0 <= r_min < r_max <= 1``.
    - ``max_phase``: largest initial phase, > 0 (default ``2π``).
    """

    nu_log: Float[Array, " hidden"]
    theta_log: Float[Array, " hidden"]
    gamma_log: Float[Array, " hidden"]
    B: Float[Array, "input 2*hidden"]
    C: Float[Array, "features 2*hidden"]
    input_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    output_size: int = eqx.field(static=True)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        key: PRNGKey,
        output_size: int | None = None,
        r_min: float = 0.0,
        r_max: float = 1.0,
        max_phase: float = 2 * math.pi,
    ):
        output_size = hidden_size if output_size is None else output_size
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("output_size", output_size),
        ):
            if isinstance(value, bool) or value < 1:
                raise ValueError(f"LRU: `{name}` must be a positive int, got {value!r}.")
        if not 0.0 <= r_min < r_max <= 1.0:
            raise ValueError(
                f"LRU: `r_min` and `r_max` must satisfy 0 <= r_min < r_max <= 1, "
                f"got r_min={r_min}, r_max={r_max}."
            )
        if not max_phase > 0.0:
            raise ValueError(f"LRU: `max_phase` must be > 0, got {max_phase}.")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.nu_log, self.theta_log, self.gamma_log, self.B, self.C = _draw_parameters(
            key, input_size, hidden_size, output_size, float(r_min), float(r_max), float(max_phase)
        )

    def __check_init__(self) -> None:
        n, i, f = self.hidden_size, self.input_size, self.output_size
        expected = {
            "nu_log": (n,),
            "theta_log": (n,),
            "gamma_log": (n,),
            "B": (i, 2 * n),
            "C": (f, 2 * n),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(
                    f"LRU: `{name}` must have shape {shape}, got {getattr(self, name).shape}."
                )

    @property
    def feature_size(self) -> int:
        return self.output_size

    @property
    def lam(self) -> Complex[Array, " hidden"]:
        """The diagonal recurrence ``λ = exp(-exp(ν_log) + i exp(θ_log))``."""
        lam = jnp.exp(jax.lax.complex(-jnp.exp(self.nu_log), jnp.exp(self.theta_log)))
        return _computed_once(lam)

    @property
    def gamma(self) -> Float[Array, " hidden"]:
        """The input normalisation ``γ = exp(γ_log)``."""
        return jnp.exp(self.gamma_log)

    def input_drive(self, x: Input) -> Complex[Array, " hidden"]:
        """``B̃ x_t`` (before the normalisation ``γ``), from the real ``x_tᵀ B``, ``(2N,)``."""
        return from_stacked_parts(x @ self.B)

    def init_hidden(self) -> Complex[Array, " hidden"]:
        zeros = jnp.zeros((self.hidden_size,), self.nu_log.dtype)
        return jax.lax.complex(zeros, zeros)

    def __call__(self, hidden: Hidden, x: Input) -> Complex[Array, " hidden"]:
        self.check_step_inputs(hidden, x)
        gamma = self.gamma.astype(hidden.dtype)
        return self.lam * hidden + gamma * self.input_drive(x)

    def output(self, hidden: Hidden) -> Features:
        """``Re(C̃ h) = C [Re h; Im h]``, ``(F,)``."""
        return self.C @ stacked_parts(hidden)


def stacked_parts(z: Complex[Array, "*batch n"]) -> Float[Array, "*batch 2*n"]:
    """``[Re z, Im z]`` along the last axis: the real vector that `LRU`'s ``B`` and ``C`` map."""
    return jnp.concatenate([jnp.real(z), jnp.imag(z)], axis=-1)


def from_stacked_parts(parts: Float[Array, "*batch parts"]) -> Complex[Array, "*batch half"]:
    """``re + i im`` from ``[re, im]`` along the last axis: the inverse of `stacked_parts`."""
    n = parts.shape[-1] // 2
    return jax.lax.complex(parts[..., :n], parts[..., n:])
