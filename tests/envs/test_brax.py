"""The brax adapter: static metadata, time limit, backends, errors.

Stepping is compiled once here (inverted_pendulum, ``spring`` backend, the fastest to
compile); `test_every_id.py` steps every task with the default backend.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rtrrl.envs as envs


def test_static_metadata_matches_brax():
    # Built with the `spring` pipeline, the quickest to trace: brax assembles observations
    # from the joint state, whose layout does not depend on the pipeline.
    for env_id in envs.names("brax"):
        spec = envs.spec(env_id)
        env = envs.make(env_id, backend="spring")
        assert env.observation_size == spec.observation_size, env_id
        assert env.action_space == spec.action_space, env_id
        assert env.name == env_id
        masks = envs.named_masks(env_id)
        if masks:
            assert sorted(masks["pos"] + masks["vel"]) == list(range(env.observation_size))


def test_episode_length_truncates_and_falling_terminates():
    env = envs.make("brax/inverted_pendulum", backend="spring", episode_length=10)
    obs0, state = env.reset(jax.random.key(0))

    def body(state, inputs):
        key, action = inputs
        obs, state, reward, done, info = env.step(key, state, action)
        return state, (obs, done, info)

    # Zero force for 20 steps (the pole stays up, so only the time limit ends episodes), then
    # full force one way (the pole falls).
    actions = jnp.concatenate([jnp.zeros((20, 1)), jnp.ones((60, 1))])
    keys = jax.random.split(jax.random.key(1), len(actions))
    # Semantics only: XLA's CPU optimisations off to compile faster.
    options = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
    run = jax.jit(lambda s: jax.lax.scan(body, s, (keys, actions)), compiler_options=options)
    _, (obs, done, info) = run(state)
    truncated, terminated = np.asarray(info.truncated), np.asarray(info.terminated)
    assert np.flatnonzero(truncated[:20]).tolist() == [9, 19]
    assert not terminated[:20].any()
    assert int(info.episode_length[9]) == 10
    assert not jnp.allclose(info.final_observation[9], obs[9])
    assert terminated[20:].any()
    t = 20 + int(np.argmax(terminated[20:]))
    assert done[t] and not truncated[t]
    assert jnp.isfinite(obs).all() and obs.dtype == envs.default_float()


def test_actions_are_bounded_to_unit_box():
    env = envs.make("brax/halfcheetah")
    assert env.action_space == envs.Box((-1.0,) * 6, (1.0,) * 6)


def test_backend_errors():
    with pytest.raises(ValueError, match="backend='bullet' is not one of"):
        envs.make("brax/hopper", backend="bullet")
    with pytest.raises(ValueError, match="episode_length"):
        envs.make("brax/hopper", episode_length=0)


def test_swimmer_is_left_out_with_a_reason():
    assert "brax/swimmer" not in envs.names()
    with pytest.raises(ValueError, match="not available.*Swimmer-misc"):
        envs.make("brax/swimmer")


def test_brax_obs_mask():
    env = envs.make("brax/hopper", obs_mask="vel")
    assert env.observation_size == 6 and env.indices == tuple(range(5, 11))
