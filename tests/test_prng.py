"""`rtrrl.prng`: the unrolled Threefry keys give JAX's threefry2x32 bits, without a loop."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rtrrl import prng
from rtrrl.app.config import TrainConfig, build_algorithm, build_env

# Compares two different programs (batched and unbatched, traced and constant, ...) bit for bit
# or to 1e-12: XLA's unoptimised float64 kernels, which the rest of the suite compiles with,
# differ between such programs by ~1e-8 (tests/_fast_compile.py).
pytestmark = pytest.mark.optimized

DRAWS = {
    "split": lambda k: jax.random.key_data(jax.random.split(k, 5)),
    "split 2-d": lambda k: jax.random.key_data(jax.random.split(k, (2, 3))),
    "fold_in": lambda k: jax.random.key_data(jax.random.fold_in(k, 123456789)),
    "bits 8": lambda k: jax.random.bits(k, (7,), dtype=jnp.uint8),
    "bits 16": lambda k: jax.random.bits(k, (), dtype=jnp.uint16),
    "bits 32": lambda k: jax.random.bits(k, (3, 5), dtype=jnp.uint32),
    "bits 64": lambda k: jax.random.bits(k, (4,), dtype=jnp.uint64),
    "uniform": lambda k: jax.random.uniform(k, (11,)),
    "normal": lambda k: jax.random.normal(k, (3, 4)),
    "categorical": lambda k: jax.random.categorical(
        k, jnp.log(jnp.array([0.1, 0.2, 0.7])), shape=(9,)
    ),
    "randint": lambda k: jax.random.randint(k, (6,), 0, 1000),
    "permutation": lambda k: jax.random.permutation(k, 17),
}


@pytest.mark.parametrize("seed", [0, 7, 2**31 - 1])
@pytest.mark.parametrize("draw", list(DRAWS))
def test_bits_equal_jax_threefry(draw, seed):
    fn = DRAWS[draw]
    reference = fn(jax.random.key(seed, impl="threefry2x32"))
    ours = prng.key(seed)
    assert jax.random.key_impl(ours) == prng.threefry_unrolled
    np.testing.assert_array_equal(fn(ours), reference)
    np.testing.assert_array_equal(jax.jit(fn)(ours), reference)


def test_bits_equal_jax_threefry_under_vmap_and_chained_splits():
    def chain(key):
        for _ in range(3):
            key, sub = jax.random.split(key)
        return jax.random.uniform(sub, (2,)), jax.random.key_data(key)

    seeds = jnp.arange(5)
    reference = jax.vmap(lambda s: chain(jax.random.key(s, impl="threefry2x32")))(seeds)
    ours = jax.jit(jax.vmap(lambda s: chain(jax.random.key(s, impl=prng.threefry_unrolled))))(seeds)
    jax.tree.map(np.testing.assert_array_equal, ours, reference)


def test_compiled_hash_has_no_loop():
    """The point of the module: XLA:CPU gets straight-line code, no ``while`` per hash."""

    def draw(key):
        key, sub = jax.random.split(key)
        return jax.random.uniform(sub, (3,)), jax.random.key_data(key)

    hlo = jax.jit(draw).lower(prng.key(0)).compile().as_text()
    assert "while" not in hlo


def test_rtrrl_steps_are_identical_with_either_key():
    """An online learner on CartPole-v1 (batch 4, episode ends included) follows the same
    trajectory, bit for bit, whichever of the two key implementations drives it."""
    config = TrainConfig(env="CartPole-v1", num_envs=4, hidden_size=8)
    env = build_env(config)

    def run(key):
        algorithm = build_algorithm(config, env)(key)
        state = algorithm.init(key, env, num_envs=config.num_envs)

        def body(state, step_key):
            state, metrics = algorithm.step(state, env, step_key)
            return state, (metrics.td_error_sq, state.envs.episode_start)

        return jax.lax.scan(body, state, jax.random.split(key, 300))

    (ref_state, (ref_td, ref_starts)), (state, (td, _)) = (
        eqx.filter_jit(run)(jax.random.key(3, impl=impl))
        for impl in ("threefry2x32", prng.threefry_unrolled)
    )
    np.testing.assert_array_equal(td, ref_td)
    jax.tree.map(
        np.testing.assert_array_equal,
        eqx.filter(state, eqx.is_array),
        eqx.filter(ref_state, eqx.is_array),
    )
    assert int(ref_starts.sum()) > 10  # episode ends were exercised


def test_key_follows_a_changed_jax_default():
    previous = jax.config.jax_default_prng_impl
    try:
        jax.config.update("jax_default_prng_impl", "unsafe_rbg")
        assert jax.random.key_impl(prng.key(0)) == jax.random.key_impl(jax.random.key(0))
    finally:
        jax.config.update("jax_default_prng_impl", previous)
    assert jax.random.key_impl(prng.key(0)) == prng.threefry_unrolled


def test_oversized_draw_is_refused_with_the_fallback():
    with pytest.raises(ValueError, match=r"at most 2\*\*32 - 1 values.*jax.random.key"):
        jax.jit(lambda k: jax.random.bits(k, (2**16, 2**16))).lower(prng.key(0))
