"""The Pendulum ports agree with popgym's PositionOnlyPendulum and NoisyPositionOnlyPendulum.

popgym's start state (gymnasium's ``PendulumEnv.state`` after ``reset``) is injected into the
port, the same torques are replayed over whole episodes, and observations, rewards and flags
are compared to 1e-5, both open loop and step by step from popgym's own state. Torques are
random in [-2.5, 2.5] (so the clip to [-2, 2] is exercised) or bang-bang energy pumping (the
pendulum spins and hits the speed limit 8). They are multiples of 1/1024 because gymnasium
does the torque arithmetic in float32 (``3.0 * u`` with a float32 ``u``): on such torques
float32 is exact, so the comparison measures the port and not float32 rounding (which,
replayed open loop, reaches ~5e-6 over 200 steps). The noisy variant's physics is compared
exactly and its noise by its statistics.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _popgym_reference import (
    assert_agrees,
    assert_one_step_agrees,
    pad_actions,
    port_resets,
    port_rollout,
    reference_env,
    reference_episode,
)

from rtrrl.envs import Box, make
from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id
from rtrrl.envs._popgym._pendulum import PendulumState


def random_torque(env, rng):
    return np.array([np.round(rng.uniform(-2.5, 2.5) * 1024) / 1024], np.float32)


def pump_energy(env, rng):
    _, theta_dot = env.state
    return np.array([2.0 if theta_dot >= 0 else -2.0], np.float32)


def read_state(env):
    return np.array(env.state, np.float64)


def play(ref):
    reads = {"read_start": read_state, "read_state": read_state}
    episodes = [reference_episode(ref, s, random_torque, **reads) for s in range(4)]
    episodes.append(reference_episode(ref, 100, pump_energy, **reads))
    speeds = np.abs(np.concatenate([np.stack(e.states)[:, 1] for e in episodes]))
    assert speeds.max() == 8.0  # the speed clip is exercised
    return episodes


def start_states(episodes):
    physics = jnp.asarray(np.stack([e.start for e in episodes]))
    # Built under vmap: the state's annotations describe one environment.
    return jax.vmap(PendulumState)(physics, jnp.zeros(len(episodes), jnp.int32))


def states_before_each_step(episodes):
    """popgym's hidden state and step count before every step of every episode, batched."""
    before = [s for e in episodes for s in [e.start, *e.states[:-1]]]
    counts = [t for e in episodes for t in range(e.length)]
    return jax.vmap(PendulumState)(jnp.asarray(np.stack(before)), jnp.asarray(counts, jnp.int32))


def torques(episodes):
    return pad_actions(episodes, lambda a: np.asarray(a, np.float64), np.zeros(1))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_position_only_agrees(difficulty):
    env_id = popgym_id("PositionOnlyPendulum", difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    assert env.max_episode_length == ref.max_episode_length
    episodes = play(ref)
    # Pendulum never terminates: every episode is cut at the time limit.
    assert all(e.length == ref.max_episode_length and e.truncated[-1] for e in episodes)
    encode = lambda o: np.asarray(o, np.float64)  # noqa: E731
    assert_agrees(port_rollout(env, start_states(episodes), torques(episodes)), episodes, encode)
    assert_one_step_agrees(env, states_before_each_step(episodes), episodes, encode)

    # The first observation: (cos theta, sin theta) of the start state, in both.
    starts = jnp.asarray(np.stack([e.start for e in episodes]))
    first = jax.vmap(lambda p: env.observe(jax.random.PRNGKey(0), p))(starts)
    np.testing.assert_allclose(first, np.stack([e.obs[0] for e in episodes]), atol=1e-7)

    # The port's own start: theta uniform in [-pi, pi), theta_dot in [-1, 1).
    obs, inner = port_resets(env, 512)
    theta, theta_dot = inner.physics[:, 0], inner.physics[:, 1]
    assert np.all(np.abs(theta) <= np.pi) and np.abs(theta).max() > 3.0
    assert np.all(np.abs(theta_dot) <= 1.0) and np.abs(theta_dot).max() > 0.95
    np.testing.assert_allclose(obs, np.stack([np.cos(theta), np.sin(theta)], 1))


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_return_bounds_match_popgym(difficulty):
    """The worst and best steps give -1/L and +1/L in both, so returns lie in [-1, 1]."""
    env_id = popgym_id("PositionOnlyPendulum", difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    length = ref.max_episode_length
    # Hanging down at full speed under full torque costs the most; upright at rest the least.
    cases = [((np.pi, 8.0), 2.0, -1.0 / length), ((0.0, 0.0), 0.0, 1.0 / length)]
    for (theta, theta_dot), torque, expected in cases:
        ref.reset(seed=0)
        ref.state = np.array([theta, theta_dot])
        _, ref_reward, *_ = ref.step(np.array([torque], np.float32))
        inner = PendulumState(jnp.array([theta, theta_dot]), jnp.zeros((), jnp.int32))
        _, _, reward, _, _ = env.step_episode(
            jax.random.PRNGKey(0), inner, jnp.array([torque], jnp.float64)
        )
        assert ref_reward == pytest.approx(expected, abs=1e-9)
        assert float(reward) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_noisy_variant_agrees(difficulty):
    env_id = popgym_id("NoisyPositionOnlyPendulum", difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    sigma = float(ref.noise_sigma[0])
    assert env.noise_sigma == sigma
    assert env.max_episode_length == ref.max_episode_length == 200
    episodes = play(ref)
    port = port_rollout(env, start_states(episodes), torques(episodes), seed=5)
    # Rewards and flags exactly as popgym; observations compared through their noise below.
    assert_agrees(port, episodes, encode_obs=None)

    port_noise, ref_noise = [], []
    for b, e in enumerate(episodes):
        n = e.length
        # The physics is the noise-free part: it follows popgym's hidden state exactly.
        np.testing.assert_allclose(
            port.inner.physics[b, : n - 1], np.stack(e.states[: n - 1]), atol=1e-9
        )
        theta = np.stack(e.states)[:, 0]
        clean = np.stack([np.cos(theta), np.sin(theta)], 1).astype(np.float32)
        port_noise.append(port.final_obs[b, :n] - clean)
        ref_noise.append(np.stack(e.obs[1:]) - clean)
        assert np.all(np.abs(port.final_obs[b, :n]) <= 1.0)
    port_noise = np.concatenate(port_noise)
    ref_noise = np.concatenate(ref_noise)
    # Both clip (cos, sin) + noise to [-1, 1] on the same clean values: the spreads agree.
    for i in range(2):
        assert port_noise[:, i].std() == pytest.approx(ref_noise[:, i].std(), rel=0.1)
        assert port_noise[:, i].std() == pytest.approx(sigma, rel=0.3)
    assert np.all(np.abs(port_noise).max(0) > sigma)
    # Fresh noise every step (a reused key would correlate consecutive draws).
    lag1 = np.corrcoef(port_noise[:-1, 0], port_noise[1:, 0])[0, 1]
    assert abs(lag1) < 0.15

    # The first observation is noisy too, with the same spread as popgym's.
    obs, inner = port_resets(env, 2000, seed=2)
    theta = inner.physics[:, 0]
    port_reset_noise = obs - np.stack([np.cos(theta), np.sin(theta)], 1)
    ref_reset_noise = []
    for seed in range(1000):
        first, _ = ref.reset(seed=seed)
        ref_reset_noise.append(first - np.array([np.cos(ref.state[0]), np.sin(ref.state[0])]))
    ref_reset_noise = np.stack(ref_reset_noise)
    for i in range(2):
        assert port_reset_noise[:, i].std() == pytest.approx(ref_reset_noise[:, i].std(), rel=0.1)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("task", ["PositionOnlyPendulum", "NoisyPositionOnlyPendulum"])
def test_spaces_and_lengths_match_popgym(task, difficulty):
    env_id = popgym_id(task, difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    assert env.name == env_id
    assert env.observation_size == ref.observation_space.shape[0]
    low, high = ref.action_space.low, ref.action_space.high
    assert env.action_space == Box(tuple(map(float, low)), tuple(map(float, high)))
    assert env.max_episode_length == ref.max_episode_length
