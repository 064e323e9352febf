"""Random keys for the training loop: JAX's Threefry-2x32 bits, lowered as straight-line code.

Every key rtrrl makes from a seed (`key`) uses `threefry_unrolled`. Its bits are the bits of
JAX's default ``threefry2x32`` keys (with ``jax_threefry_partitionable``, JAX's default): the
same `jax.random.split`, `jax.random.fold_in`, `jax.random.uniform`, `jax.random.categorical`,
..., so results do not depend on which of the two made a run. (With
``jax_threefry_partitionable`` switched off, JAX's own keys change their bits; these do not.)

**Why.** On CPU, JAX lowers the Threefry hash as a 5-iteration ``while`` loop, to keep
compile times short. Inside a scanned training step each iteration is a separate round of
kernel launches, and a step hashes 4 times (the step's key split, action sampling, the
environment's own split and its reset). Written out as 20 rounds of ``uint32`` arithmetic,
the hash fuses into the kernels that use its bits. For RFLO CTRNN-32 on CartPole-v1 at batch
1 the step went from 15.3 to 9.5 µs (8.8 to 6.9 µs on one XLA thread), and the bare
environment from 7 to 0.3 µs (`benchmarks/throughput.py --prng threefry2x32` measures JAX's).

The hash (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), on a key
``(k₀, k₁)`` and a counter ``(x₀, x₁)``, all ``uint32`` with wrap-around arithmetic::

    k₂ = k₀ ⊕ k₁ ⊕ 0x1BD11BDA
    (x₀, x₁) ← (x₀ + k₀, x₁ + k₁)
    for s = 1..5:
        for r in R[(s - 1) mod 2]:        R = ((13, 15, 26, 6), (17, 29, 16, 24))
            x₀ ← x₀ + x₁;  x₁ ← rotl(x₁, r) ⊕ x₀
        (x₀, x₁) ← (x₀ + k[s mod 3], x₁ + k[(s + 1) mod 3] + s)

JAX's partitionable scheme hashes the 64-bit row-major index of every output element,
split into ``(x₀, x₁) = (index >> 32, index mod 2³²)``:

- ``split(key, shape)``: the new keys are ``(x₀', x₁')``, shape ``(*shape, 2)``.
- ``random_bits(key, w, shape)``: ``x₀' ⊕ x₁'`` for 32 bits (its low ``w`` bits for 8 and
  16), ``x₀' · 2³² + x₁'`` for 64.
- ``fold_in(key, d)``: the hash of the counter ``(0, d)``, as a key.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import random as jax_extend_random
from jaxtyping import UInt32

from ._types import Array, PRNGKey

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)
_UINT_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def _rotate_left(x: UInt32[Array, " ..."], bits: int) -> UInt32[Array, " ..."]:
    return (x << np.uint32(bits)) | (x >> np.uint32(32 - bits))


def threefry_2x32(
    key: UInt32[Array, " 2"], x0: UInt32[Array, " *shape"], x1: UInt32[Array, " *shape"]
) -> UInt32[Array, " 2 *shape"]:
    """The 20-round Threefry-2x32 hash of the counters ``(x0, x1)`` under ``key``.

    Returns both output words stacked on a new leading axis, so the hash is one array:
    its consumers read slices of it rather than each recomputing the rounds.
    """
    schedule = (key[0], key[1], key[0] ^ key[1] ^ _PARITY)
    x0 = x0 + schedule[0]
    x1 = x1 + schedule[1]
    for injection in range(1, 6):
        for rotation in _ROTATIONS[(injection - 1) % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, rotation) ^ x0
        x0 = x0 + schedule[injection % 3]
        x1 = x1 + schedule[(injection + 1) % 3] + np.uint32(injection)
    return jnp.stack([x0, x1])


class DrawTooLarge(ValueError):
    """A single draw of 2**32 or more values: more than the counter of one call can index."""


def _hash_indices(key: UInt32[Array, " 2"], shape: tuple[int, ...]) -> UInt32[Array, " 2 *shape"]:
    """`threefry_2x32` of every element's row-major index; ``(x₀, x₁) = (0, index)``."""
    size = math.prod(shape)
    if size >= 2**32:
        raise DrawTooLarge(
            f"threefry_unrolled draws at most 2**32 - 1 values per call; got shape {shape}. "
            "Use jax.random.key(seed) (JAX's threefry2x32, same bits) for larger draws."
        )
    index = lax.iota(np.uint32, size).reshape(shape)
    return threefry_2x32(key, jnp.zeros_like(index), index)


def _split(key: UInt32[Array, " 2"], shape: tuple[int, ...]) -> UInt32[Array, " *shape 2"]:
    return jnp.moveaxis(_hash_indices(key, shape), 0, -1)


def _random_bits(key: UInt32[Array, " 2"], bit_width: int, shape: tuple[int, ...]) -> Array:
    if bit_width not in _UINT_DTYPES:
        raise TypeError(f"random bits must be 8, 16, 32 or 64 wide; got {bit_width}.")
    words = _hash_indices(key, shape)
    dtype = _UINT_DTYPES[bit_width]
    if bit_width == 64:
        return (words[0].astype(dtype) << dtype(32)) | words[1].astype(dtype)
    return (words[0] ^ words[1]).astype(dtype)


def _fold_in(key: UInt32[Array, " 2"], data: UInt32[Array, ""] | int) -> UInt32[Array, " 2"]:
    data = jnp.asarray(data, np.uint32).reshape(1)
    return threefry_2x32(key, jnp.zeros_like(data), data).reshape(2)


threefry_unrolled: Hashable = jax_extend_random.define_prng_impl(
    key_shape=(2,),
    # Seeding runs once per run; JAX's own keeps the seed → key mapping identical.
    seed=jax_extend_random.threefry_prng_impl.seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="threefry2x32_unrolled",
    tag="fru",
)
"""The PRNG implementation: pass it as ``impl=`` to `jax.random.key` or `jax.random.wrap_key_data`."""


def key(seed: int | Array) -> PRNGKey:
    """The key rtrrl uses for ``seed``: a `threefry_unrolled` key.

    If ``jax_default_prng_impl`` has been changed from ``threefry2x32`` (e.g. to
    ``unsafe_rbg``), the key of that implementation instead, so the JAX setting still decides.
    """
    # JAX documents reading a flag as an attribute of jax.config; its stubs do not list flags.
    if jax.config.jax_default_prng_impl == "threefry2x32":  # pyright: ignore[reportAttributeAccessIssue]
        return jax.random.key(seed, impl=threefry_unrolled)
    return jax.random.key(seed)
