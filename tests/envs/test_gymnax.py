"""The gymnax adapter: termination vs truncation, options, observation encoding, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rtrrl.envs as envs


def run_actions(env, actions, *, seed=0):
    """Step `env` with a fixed action sequence (one episode after another), compiled once."""
    obs, state = env.reset(jax.random.key(seed))

    def body(state, inputs):
        key, action = inputs
        obs, state, reward, done, info = env.step(key, state, action)
        return state, (obs, reward, done, info)

    keys = jax.random.split(jax.random.key(seed + 1), len(actions))
    _, out = jax.jit(lambda s: jax.lax.scan(body, s, (keys, actions)))(state)
    return obs, out


def test_cartpole_falling_pole_is_terminated_not_truncated():
    env = envs.make("CartPole-v1")
    _, (obs, reward, done, info) = run_actions(env, jnp.ones(60, jnp.int32))
    t = int(np.argmax(np.asarray(done)))
    assert done[t] and info.terminated[t] and not info.truncated[t]
    assert t < 59 and int(info.episode_length[t]) == t + 1
    # The return of CartPole is its length (+1 per step).
    assert float(info.episode_return[t]) == pytest.approx(t + 1)
    # The pole's angle at the terminal state is past the threshold (12 degrees).
    assert abs(float(info.final_observation[t, 2])) > 0.2094
    assert not jnp.allclose(info.final_observation[t], obs[t])


def test_cartpole_time_limit_is_truncated_with_the_final_observation():
    env = envs.make("CartPole-v1", max_steps_in_episode=10)
    # Alternating pushes keep the pole up far longer than 10 steps.
    first_obs, (obs, reward, done, info) = run_actions(env, jnp.arange(25, dtype=jnp.int32) % 2)
    assert np.flatnonzero(np.asarray(done)).tolist() == [9, 19]
    assert info.truncated[9] and not info.terminated[9]
    assert int(info.episode_length[9]) == 10
    # The step that hit the limit returns the next episode's first observation, and the state
    # it ended in as `final_observation` (what a learner bootstraps from).
    assert not jnp.allclose(info.final_observation[9], obs[9])
    assert jnp.allclose(info.final_observation[8], obs[8])
    # The statistics restart with the new episode.
    assert int(info.episode_length[10]) == 1


def test_memory_chain_memory_length_option_sets_the_episode_length():
    lengths = {}
    for memory_length in (4, 8):
        env = envs.make("MemoryChain-bsuite", memory_length=memory_length)
        _, (_, reward, done, info) = run_actions(env, jnp.zeros(30, jnp.int32))
        t = int(np.argmax(np.asarray(done)))
        assert info.terminated[t]
        lengths[memory_length] = int(info.episode_length[t])
        # bsuite's reward: +1 or -1 at the final step only.
        assert float(jnp.abs(reward[: t + 1]).sum()) == 1.0
    assert lengths[8] - lengths[4] == 4


def test_image_observations_are_flattened_and_discrete_ones_one_hot():
    catch = envs.make("Catch-bsuite", rows=6, columns=4)
    assert catch.observation_size == 24
    obs, _ = catch.reset(jax.random.key(0))
    assert obs.shape == (24,) and obs.dtype == envs.default_float()
    lake = envs.make("FrozenLake-misc")
    obs, _ = lake.reset(jax.random.key(0))
    assert obs.shape == (16,) and float(obs.sum()) == 1.0 and float(obs[0]) == 1.0


def test_continuous_actions_are_clipped_to_the_box():
    env = envs.make("Pendulum-v1")
    assert env.action_space == envs.Box((-2.0,), (2.0,))
    obs, state = env.reset(jax.random.key(0))
    key = jax.random.key(1)
    far = env.step(key, state, jnp.array([50.0]))
    edge = env.step(key, state, jnp.array([2.0]))
    assert jnp.allclose(far[0], edge[0]) and jnp.allclose(far[2], edge[2])


def test_gymnax_ids_options_and_masks():
    assert "MNISTBandit-bsuite" not in envs.names()
    assert len(envs.names("gymnax")) == 27  # 25 gymnax ids + CartPole-pos / CartPole-vel
    assert "memory_length" in envs.spec("MemoryChain-bsuite").options()
    assert "max_steps_in_episode" in envs.spec("Acrobot-v1").options()
    assert "obs_mask" in envs.spec("Pong-misc").options()
    assert envs.named_masks("CartPole-v1") == {"pos": (0, 2), "vel": (1, 3)}


def test_mnist_bandit_is_left_out_with_a_reason():
    with pytest.raises(ValueError, match="downloads MNIST"):
        envs.make("MNISTBandit-bsuite")


def test_option_values_must_be_static():
    with pytest.raises(TypeError, match="memory_length"):
        envs.make("MemoryChain-bsuite", memory_length=jnp.ones(2))


@pytest.mark.parametrize(
    ("env_id", "action", "match"),
    [
        ("CartPole-v1", jnp.array(1.0), "integer scalar"),
        ("CartPole-v1", jnp.array([0, 1]), "VectorEnv"),
        ("Pendulum-v1", jnp.array(1.0), r"shape \(1,\)"),
        ("Pendulum-v1", jnp.array([1]), "float"),
    ],
)
def test_wrong_action_raises_naming_the_environment(env_id, action, match):
    env = envs.make(env_id)
    _, state = env.reset(jax.random.key(0))
    with pytest.raises(TypeError, match=match) as error:
        env.step(jax.random.key(1), state, action)
    assert env_id in str(error.value)
