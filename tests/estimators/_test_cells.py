"""Cells shared by the estimator tests."""

import jax
import jax.numpy as jnp

from rtrrl.cells import AbstractCell


class ComplexParams(AbstractCell):
    """A cell with a complex parameter leaf, which generic estimators cannot flatten:
    ``h_t = w · h_{t-1}`` with complex ``w``, features ``Re(h)``."""

    weight: jax.Array
    input_size: int = 1
    hidden_size: int = 1

    @property
    def feature_size(self) -> int:
        return 1

    def init_hidden(self):
        return jnp.zeros((1,), jnp.complex128)

    def __call__(self, hidden, x):
        return self.weight * hidden

    def output(self, hidden):
        return jnp.real(hidden)
