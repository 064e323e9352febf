"""Test-wide numerics: float64 and strict dtype promotion (set before any test traces)."""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
