"""Wrappers: observation masks, reward normalisation, vectorisation, Meta-RL input."""

import gymnasium.wrappers.utils as gym_utils
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rtrrl.envs as envs


def random_rollout(env, steps, *, seed=0):
    """``(obs, reward, done, info)`` stacked over `steps` random-action steps (compiled)."""
    obs0, state = env.reset(jax.random.key(seed))

    def body(state, key):
        key_action, key_step = jax.random.split(key)
        action = env.action_space.sample(key_action)
        obs, state, reward, done, info = env.step(key_step, state, action)
        return state, (obs, reward, done, info)

    keys = jax.random.split(jax.random.key(seed + 1), steps)
    return obs0, jax.jit(lambda s: jax.lax.scan(body, s, keys))(state)[1]


# --- ObservationMask ---------------------------------------------------------------------


def test_velocity_mask_is_cartpole_velocities_including_final_observation():
    full_obs0, (full, _, _, full_info) = random_rollout(envs.make("CartPole-v1"), 60)
    for env in [envs.make("CartPole-vel"), envs.make("CartPole-v1", obs_mask="vel")]:
        obs0, (obs, _, done, info) = random_rollout(env, 60)
        assert env.observation_size == 2
        assert jnp.array_equal(obs0, full_obs0[jnp.array([1, 3])])
        assert jnp.array_equal(obs, full[:, jnp.array([1, 3])])
        assert jnp.array_equal(info.final_observation, full_info.final_observation[:, [1, 3]])
        assert done.any()  # the comparison covered an automatic reset
    assert envs.make("CartPole-vel").name == "CartPole-vel"
    assert envs.make("CartPole-pos").indices == (0, 2)
    assert envs.make("CartPole-v1", obs_mask="vel").name == "CartPole-v1[obs_mask=vel]"


def test_mask_by_indices_and_errors():
    env = envs.ObservationMask(envs.make("Acrobot-v1"), (5, 0))
    obs, _ = env.reset(jax.random.key(0))
    full, _ = envs.make("Acrobot-v1").reset(jax.random.key(0))
    assert jnp.array_equal(obs, full[jnp.array([5, 0])])
    with pytest.raises(ValueError, match="unknown obs_mask 'vel'; it has no named masks"):
        envs.make("Catch-bsuite", obs_mask="vel")
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        envs.make("CartPole-v1", obs_mask=(0, 4))
    with pytest.raises(ValueError, match="distinct"):
        envs.make("CartPole-v1", obs_mask=(1, 1))


# --- RunningMeanStd and NormalizeReward --------------------------------------------------


def test_running_mean_std_matches_numpy_and_gymnasium():
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, (n, 3)) for n in (1, 5, 17)]
    exact = envs.RunningMeanStd((3,), initial_count=0.0)
    prior = envs.RunningMeanStd((3,))
    reference = gym_utils.RunningMeanStd(shape=(3,))
    for batch in batches:
        exact = exact.update(jnp.asarray(batch))
        prior = prior.update(jnp.asarray(batch))
        reference.update(batch)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(exact.mean, everything.mean(0), rtol=1e-12)
    np.testing.assert_allclose(exact.var, everything.var(0), rtol=1e-12)
    np.testing.assert_allclose(prior.mean, reference.mean, rtol=1e-12)
    np.testing.assert_allclose(prior.var, reference.var, rtol=1e-12)
    first = jnp.asarray(everything[0])
    np.testing.assert_allclose(
        prior.normalize(first), (first - prior.mean) / np.sqrt(prior.var + 1e-8)
    )


def test_normalize_reward_matches_the_reference_rule():
    gamma, epsilon = 0.9, 1e-8
    raw_env = envs.make("CartPole-v1", max_steps_in_episode=20)
    env = envs.NormalizeReward(raw_env, gamma=gamma, epsilon=epsilon)
    _, (_, reward, _, info) = random_rollout(raw_env, 300)
    _, (_, scaled, _, wrapped_info) = random_rollout(env, 300)
    terminated, truncated = np.asarray(info.terminated), np.asarray(info.truncated)
    assert terminated.any() and truncated.any()
    # The raw return is still reported for logging.
    np.testing.assert_array_equal(wrapped_info.episode_return, info.episode_return)

    stats, ret, expected = gym_utils.RunningMeanStd(shape=()), 0.0, []
    for r, term in zip(np.asarray(reward), terminated, strict=True):
        ret = ret * gamma + r
        stats.update(np.array([ret]))
        expected.append(r / np.sqrt(stats.var + epsilon))
        if term:
            ret = 0.0
    np.testing.assert_allclose(scaled, expected, rtol=1e-10)


def test_normalize_reward_checks_its_arguments():
    with pytest.raises(ValueError, match="gamma"):
        envs.NormalizeReward(envs.make("CartPole-v1"), gamma=1.5)


# --- VectorEnv ---------------------------------------------------------------------------


def test_vector_env_is_independent_copies_with_split_keys():
    env = envs.make("CartPole-v1")
    venv = envs.VectorEnv(env, 3)
    key_reset, key_step, key_action = jax.random.split(jax.random.key(0), 3)
    obs, state = venv.reset(key_reset)
    assert obs.shape == (3, 4) and len(np.unique(np.asarray(obs), axis=0)) == 3
    actions = venv.sample_actions(key_action)
    out = venv.step(key_step, state, actions)
    for i, (k_reset, k_step) in enumerate(
        zip(jax.random.split(key_reset, 3), jax.random.split(key_step, 3), strict=True)
    ):
        _, single_state = env.reset(k_reset)
        single = env.step(k_step, single_state, actions[i])
        jax.tree.map(lambda b, s, i=i: np.testing.assert_array_equal(b[i], s), out, single)
    with pytest.raises(TypeError, match=r"expected actions of shape \(3,\)"):
        venv.step(key_step, state, actions[:2])
    with pytest.raises(ValueError, match="num_envs"):
        envs.VectorEnv(env, 0)


# --- Meta-RL input -----------------------------------------------------------------------


def test_meta_rl_input_discrete_and_episode_start():
    env = envs.make("CartPole-v1")
    obs = jnp.array([1.0, 2.0, 3.0, 4.0])
    x = envs.meta_rl_input(obs, jnp.array(1), 0.5, env.action_space, episode_start=False)
    np.testing.assert_array_equal(x, [1, 2, 3, 4, 0, 1, 0.5])
    assert x.shape == (envs.meta_rl_input_size(env),)
    start = envs.meta_rl_input(obs, jnp.array(1), 0.5, env.action_space, episode_start=True)
    np.testing.assert_array_equal(start, [1, 2, 3, 4, 0, 0, 0])
    # Under jit with a traced `done`, as a learner calls it.
    traced = jax.jit(
        lambda done: envs.meta_rl_input(
            obs, jnp.array(0), 2.0, env.action_space, episode_start=done
        )
    )
    np.testing.assert_array_equal(traced(jnp.array(False)), [1, 2, 3, 4, 1, 0, 2])
    with pytest.raises(TypeError, match="meta_rl_input"):
        envs.meta_rl_input(obs, jnp.array(1.0), 0.5, env.action_space, episode_start=False)


def test_meta_rl_input_continuous():
    env = envs.make("Reacher-misc")
    venv = envs.VectorEnv(env, 4)
    assert envs.meta_rl_input_size(venv) == envs.meta_rl_input_size(env) == 8 + 2 + 1
    obs, _ = env.reset(jax.random.key(0))
    action = jnp.array([0.25, -0.5])
    x = envs.meta_rl_input(obs, action, -1.0, env.action_space, episode_start=False)
    np.testing.assert_array_equal(x[-3:], [0.25, -0.5, -1.0])
    zero = envs.meta_rl_input(
        obs, env.action_space.zero(), 0.0, env.action_space, episode_start=True
    )
    np.testing.assert_array_equal(zero[-3:], [0, 0, 0])


def test_a_concrete_discrete_action_out_of_range_is_refused():
    """Outside `jit` the action's value is known: CartPole has no action 2 (or -1)."""
    env = envs.make("CartPole-v1")
    key = jax.random.key(0)
    _, state = env.reset(key)
    env.step(key, state, jnp.asarray(1, jnp.int32))
    for action in (2, -1):
        with pytest.raises(ValueError, match=rf"CartPole-v1: action {action} is outside \[0, 2\)"):
            env.step(key, state, jnp.asarray(action, jnp.int32))
