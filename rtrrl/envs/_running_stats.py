"""Running mean and variance of a stream of samples (reusable by wrappers and learners)."""

import equinox as eqx
import jax.numpy as jnp
from jax.typing import DTypeLike

from .._types import Array, Float
from ._base import default_float


class RunningMeanStd(eqx.Module):
    """Mean and (population) variance of every sample seen so far, updated in batches.

    The merge is the parallel form of Welford's algorithm (Chan, Golub & LeVeque 1979): for a
    batch of ``n`` samples with mean ``m_b`` and variance ``v_b``, and ``c`` samples so far,

        δ = m_b - mean,   c' = c + n,
        mean' = mean + δ n / c',
        var'  = (var c + v_b n + δ² c n / c') / c'.

    The starting point follows ``gymnasium.wrappers.utils.RunningMeanStd``: mean 0, variance 1
    and a pseudo-count of ``1e-4``, so the statistics are defined before the first sample and
    the prior is forgotten after one.

    Fields have the shape of one sample (``()`` for rewards, ``(obs,)`` for observations).

    **Arguments:**

    - `shape`: shape of one sample.
    - `initial_count`: the pseudo-count of the prior (mean 0, variance 1).
    - `dtype`: float dtype of the statistics; defaults to JAX's default float.
    """

    mean: Float[Array, "*sample"]
    var: Float[Array, "*sample"]
    count: Float[Array, ""]

    def __init__(
        self,
        shape: tuple[int, ...] = (),
        *,
        initial_count: float = 1e-4,
        dtype: DTypeLike | None = None,
    ):
        dtype = default_float() if dtype is None else dtype
        self.mean = jnp.zeros(shape, dtype)
        self.var = jnp.ones(shape, dtype)
        self.count = jnp.asarray(initial_count, dtype)

    def update(self, batch: Float[Array, " n *sample"]) -> "RunningMeanStd":
        """Merge a batch of samples (leading axis) into the statistics; returns new statistics."""
        batch = jnp.asarray(batch, self.mean.dtype)
        n = jnp.asarray(batch.shape[0], self.mean.dtype)
        batch_mean = jnp.mean(batch, axis=0)
        batch_var = jnp.var(batch, axis=0)
        delta = batch_mean - self.mean
        total = self.count + n
        mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        return eqx.tree_at(lambda s: (s.mean, s.var, s.count), self, (mean, m2 / total, total))

    def update_one(self, sample: Float[Array, "*sample"]) -> "RunningMeanStd":
        """Merge a single sample."""
        return self.update(jnp.asarray(sample, self.mean.dtype)[None])

    def std(self, epsilon: float = 1e-8) -> Float[Array, "*sample"]:
        """``sqrt(var + epsilon)``: the scale used to normalise."""
        return jnp.sqrt(self.var + epsilon)

    def normalize(
        self, x: Float[Array, "*sample"], *, center: bool = True, epsilon: float = 1e-8
    ) -> Float[Array, "*sample"]:
        """``(x - mean) / std`` (or ``x / std`` when ``center=False``)."""
        x = jnp.asarray(x, self.mean.dtype)
        return ((x - self.mean) if center else x) / self.std(epsilon)
