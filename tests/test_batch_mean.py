"""`rtrrl._batch_mean.batch_mean_of`: the mean over the leading axis, and its form under vmap.

The values must be the mean (alone, under `jax.vmap`, with NaNs); under `jax.vmap` the product
must be a *batched* matrix-vector product (a ``dot_general`` with batch dimensions), not one
whose vmapped axis was moved into the matrix's columns (which XLA:CPU runs after a strided
copy of the whole matrix).
"""

import jax
import jax.numpy as jnp
import numpy as np

from rtrrl._batch_mean import batch_mean_of


def _dot_generals(jaxpr):
    return [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "dot_general"]


def test_it_is_the_mean_over_the_leading_axis_alone_and_under_vmap():
    x = jax.random.normal(jax.random.key(0), (3, 5, 4, 6))
    np.testing.assert_allclose(batch_mean_of(x[0]), jnp.mean(x[0], axis=0), rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(batch_mean_of)(x), jnp.mean(x, axis=1), rtol=1e-12)
    np.testing.assert_allclose(batch_mean_of(x[0, :, 0, 0]), jnp.mean(x[0, :, 0, 0]))
    # A NaN spoils only its own column, as in a mean.
    with_nan = x[0].at[2, 0, 0].set(jnp.nan)
    mean = batch_mean_of(with_nan)
    assert jnp.isnan(mean[0, 0]) and jnp.all(jnp.isfinite(mean.reshape(-1)[1:]))


def test_under_vmap_it_is_a_batched_product():
    x = jnp.ones((2, 64, 32, 40))
    (alone,) = _dot_generals(jax.make_jaxpr(batch_mean_of)(x[0]))
    ((_, _), (lhs_batch, rhs_batch)) = alone.params["dimension_numbers"]
    assert lhs_batch == () and rhs_batch == ()
    (vmapped,) = _dot_generals(jax.make_jaxpr(jax.vmap(batch_mean_of))(x))
    ((_, rhs_contract), (lhs_batch, rhs_batch)) = vmapped.params["dimension_numbers"]
    assert lhs_batch == (0,) and rhs_batch == (0,) and rhs_contract == (1,)
