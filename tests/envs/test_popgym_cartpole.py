"""The CartPole ports agree with popgym's PositionOnly/VelocityOnly/NoisyPositionOnlyCartPole.

popgym's start state (gymnasium's ``CartPoleEnv.state`` after ``reset``) is injected into the
port, the same actions are replayed, and observations, rewards and flags are compared to
1e-5: random play (falls), a balancing controller (reaches the time limit) and a drifting
controller (the cart leaves the track). The noisy variant's physics is compared exactly and
its noise by its statistics.

Two comparisons, because the upright pole is open-loop unstable: replaying recorded actions
amplifies a one-ulp float64 difference (numpy's vs XLA's ``cos``) about e-fold every 13
steps, past 1e-5 after ~340 steps. So (1) whole episodes are replayed open loop for their
first `OPEN_LOOP_HORIZON` steps (where the gap stays below 1e-8), and (2) every step of every
episode, to the time limit of 600, is replayed from popgym's own state before it (with the
step counter), which checks the transition, reward and both flags everywhere.
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

from rtrrl.envs import Discrete, make
from rtrrl.envs._popgym._cartpole import CartPoleState
from rtrrl.envs._popgym._common import DIFFICULTIES, popgym_id

X_THRESHOLD = 2.4
THETA_THRESHOLD = 12 * 2 * np.pi / 360
OPEN_LOOP_HORIZON = 250


def random_policy(env, rng):
    return int(rng.integers(2))


def balance_policy(epsilon, target_speed=0.0):
    """A linear controller on popgym's hidden state; `target_speed` makes the cart drift."""

    def policy(env, rng):
        x, x_dot, theta, theta_dot = env.state
        if rng.random() < epsilon:
            return int(rng.integers(2))
        return int(0.1 * x + 0.5 * (x_dot - target_speed) + 10 * theta + theta_dot > 0)

    return policy


def play(ref, seeds_random, seeds_balance, seeds_drift):
    episodes = []
    read = lambda env: np.array(env.state, np.float64)  # noqa: E731
    reads = {"read_start": read, "read_state": read}
    for seed in seeds_random:
        episodes.append(reference_episode(ref, seed, random_policy, **reads))
    for seed in seeds_balance:
        episodes.append(reference_episode(ref, seed, balance_policy(0.1), **reads))
    for seed in seeds_drift:
        for speed in (2.0, -2.0):
            policy = balance_policy(0.0, target_speed=speed)
            episodes.append(reference_episode(ref, seed, policy, **reads))
    return episodes


def run_port(env, episodes, seed=0):
    """Open loop: each episode from popgym's start state, all its actions replayed."""
    physics = jnp.asarray(np.stack([e.start for e in episodes]))
    # Built under vmap: the state's annotations describe one environment.
    inner = jax.vmap(CartPoleState)(physics, jnp.zeros(len(episodes), jnp.int32))
    actions = pad_actions(episodes, int, 0)
    return port_rollout(env, inner, actions, seed)


def states_before_each_step(episodes):
    """popgym's hidden state and step count before every step of every episode, batched."""
    before = [s for e in episodes for s in [e.start, *e.states[:-1]]]
    counts = [t for e in episodes for t in range(e.length)]
    return jax.vmap(CartPoleState)(jnp.asarray(np.stack(before)), jnp.asarray(counts, jnp.int32))


def check_episode_kinds(episodes, length):
    """The episodes exercise every ending: time limit (return 1), pole falls and cart exits
    on both sides."""
    ends = [e.states[-1] for e in episodes]
    truncated = [e for e in episodes if e.truncated[-1] and not e.terminated[-1]]
    assert truncated and all(e.length == length for e in truncated)
    for e in truncated:
        assert sum(e.rewards) == pytest.approx(1.0)
    assert any(s[2] > THETA_THRESHOLD for s in ends) and any(s[2] < -THETA_THRESHOLD for s in ends)
    assert any(s[0] > X_THRESHOLD for s in ends) and any(s[0] < -X_THRESHOLD for s in ends)


# (task as in the popgym id, observed entries of the state after a step)
DETERMINISTIC = [
    ("PositionOnlyCartPole", [0, 2]),
    ("VelocityOnlyCartpole", [1, 3]),
]


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize(("task", "entries"), DETERMINISTIC)
def test_deterministic_variants_agree(task, entries, difficulty):
    env_id = popgym_id(task, difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    assert env.max_episode_length == ref.max_episode_length
    episodes = play(ref, range(8), range(100, 102), range(200, 201))
    check_episode_kinds(episodes, ref.max_episode_length)
    encode = lambda o: np.asarray(o, np.float64)  # noqa: E731
    assert_agrees(run_port(env, episodes), episodes, encode, horizon=OPEN_LOOP_HORIZON)
    assert_one_step_agrees(env, states_before_each_step(episodes), episodes, encode)

    # The first observation: the port observes popgym's start state as popgym does (both
    # variants show (x, theta) at reset; popgym's VelocityOnly reset keeps the positions).
    starts = jnp.asarray(np.stack([e.start for e in episodes]))
    key = jax.random.PRNGKey(0)
    port_first = jax.vmap(lambda p: env.observe(key, p, at_reset=True))(starts)
    np.testing.assert_allclose(port_first, np.stack([e.obs[0] for e in episodes]), atol=1e-7)
    for e in episodes:
        np.testing.assert_allclose(e.obs[0], e.start[[0, 2]], atol=1e-7)
        np.testing.assert_allclose(e.obs[1], e.states[0][entries], atol=1e-6)

    # The port's own resets: start uniform in [-0.05, 0.05), first observation (x, theta).
    obs, inner = port_resets(env, 256)
    assert np.all(np.abs(inner.physics) <= 0.05) and inner.physics.std() > 0.02
    assert np.all(inner.num_steps == 0)
    np.testing.assert_array_equal(obs, inner.physics[:, [0, 2]])


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_noisy_variant_agrees(difficulty):
    env_id = popgym_id("NoisyPositionOnlyCartPole", difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    sigma = float(ref.noise_sigma[0])
    assert env.noise_sigma == sigma
    assert env.max_episode_length == ref.max_episode_length == 200
    episodes = play(ref, range(8), range(100, 104), range(200, 201))
    check_episode_kinds(episodes, 200)
    port = run_port(env, episodes, seed=3)
    # Rewards and flags exactly as popgym; observations compared through their noise below.
    assert_agrees(port, episodes, encode_obs=None)

    high = np.array([2 * X_THRESHOLD, 2 * THETA_THRESHOLD])
    port_noise, ref_noise = [], []
    for b, e in enumerate(episodes):
        n = e.length
        # The physics is the noise-free part: it follows popgym's hidden state exactly.
        np.testing.assert_allclose(
            port.inner.physics[b, : n - 1], np.stack(e.states[: n - 1]), atol=1e-9
        )
        clean = np.stack(e.states)[:, [0, 2]].astype(np.float32)
        port_noise.append(port.final_obs[b, :n] - clean)
        ref_noise.append(np.stack(e.obs[1:]) - clean)
        assert np.all(np.abs(port.final_obs[b, :n]) <= high + 1e-6)
    port_noise = np.concatenate(port_noise)
    ref_noise = np.concatenate(ref_noise)
    assert len(port_noise) > 800

    # x never reaches the clip (|x| <= 2.4 + noise << 4.8): its noise is N(0, sigma^2).
    for noise in (port_noise[:, 0], ref_noise[:, 0]):
        assert noise.std() == pytest.approx(sigma, rel=0.1)
        assert abs(noise.mean()) < 4 * sigma / np.sqrt(len(noise))
    # theta is clipped to +-24 degrees; both clip the same way, so the spreads agree.
    assert port_noise[:, 1].std() == pytest.approx(ref_noise[:, 1].std(), rel=0.15)
    # Fresh noise every step (a reused key would correlate consecutive draws).
    lag1 = np.corrcoef(port_noise[:-1, 0], port_noise[1:, 0])[0, 1]
    assert abs(lag1) < 0.15

    # The first observation is noisy too, with the same spread as popgym's.
    obs, inner = port_resets(env, 2000, seed=2)
    port_reset_noise = obs - inner.physics[:, [0, 2]]
    ref_reset_noise = []
    for seed in range(1000):
        first, _ = ref.reset(seed=seed)
        ref_reset_noise.append(first - ref.state[[0, 2]])
    ref_reset_noise = np.stack(ref_reset_noise)
    for noise in (port_reset_noise, ref_reset_noise):
        assert noise[:, 0].std() == pytest.approx(sigma, rel=0.1)
    # theta near 0 is clipped at +-24 degrees (often when sigma = 0.3) in both alike.
    assert port_reset_noise[:, 1].std() == pytest.approx(ref_reset_noise[:, 1].std(), rel=0.1)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize(
    "task", ["PositionOnlyCartPole", "VelocityOnlyCartpole", "NoisyPositionOnlyCartPole"]
)
def test_spaces_and_lengths_match_popgym(task, difficulty):
    env_id = popgym_id(task, difficulty)
    ref = reference_env(env_id)
    env = make(env_id)
    assert env.name == env_id
    assert env.observation_size == ref.observation_space.shape[0]
    assert env.action_space == Discrete(int(ref.action_space.n))
    assert env.max_episode_length == ref.max_episode_length


def test_aliases():
    assert make("StatelessCartPole") == make("popgym-PositionOnlyCartPoleEasy-v0")
    assert make("NoisyStatelessCartPole") == make("popgym-NoisyPositionOnlyCartPoleEasy-v0")
    for difficulty in DIFFICULTIES:
        alias = make(f"popgym-VelocityOnlyCartPole{difficulty}-v0")
        assert alias == make(f"popgym-VelocityOnlyCartpole{difficulty}-v0")
