"""The `popgym` package as the reference of the POPGym port tests: play both, compare each step.

A port test plays popgym (numpy/gymnasium) and the JAX port from the same start with the same
actions and compares them step by step. popgym's random draws cannot be replayed in JAX, so a
test reads what popgym drew at reset (a shuffled deck, a board, the physics state) and starts
the port from it: card tasks force the port's shuffle (`forced_reset`, which runs the port's
own reset), the others build the port's inner state from it.

Reference side:

- `reference_env`: popgym's environment for an id, unwrapped so tests can read its hidden state;
- `reference_episode`: one popgym episode under a policy or a fixed action sequence, recorded
  as an `Episode` (popgym's raw observations, rewards, flags, and hidden state if asked for);
- `one_hot` / `one_hot_size`: popgym's discrete observations one-hot encoded with numpy,
  independently of the ports' own encoding (``_common.one_hot_concat``).

Port side:

- `forced_reset`: the port reset onto given decks; `port_resets`: the port's own resets;
- `port_rollout`: a batch of port episodes from given inner states, each under
  ``jit(scan(step))`` with auto-reset, as a `PortRollout`; `pad_actions` lines popgym's
  episodes of different lengths up as its ``[batch, time]`` actions.

Comparisons:

- `assert_agrees`: whole episodes, step by step;
- `assert_one_step_agrees`: every transition on its own, from popgym's state before it;
- `check_spaces`: observation size and action count of a discrete-observation task;
- `run_agreement`: the whole check of a card task (decks, policies, seeds) in one call.
"""

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import equinox as eqx
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import popgym  # noqa: F401  (registers popgym's ids with gymnasium)
import pytest

import rtrrl.envs._popgym  # noqa: F401  (registers the ports)
from rtrrl.envs import AbstractEnvironment, Discrete, EpisodeState, make
from rtrrl.envs._popgym import _cards

# --- reference side ------------------------------------------------------------------------


def reference_env(env_id: str) -> gymnasium.Env:
    """popgym's environment registered as `env_id`, without gymnasium's wrappers.

    popgym registers no time limit or other wrapper that changes a step (only gymnasium's
    passive checker, which warns), and the unwrapped env lets tests read and set popgym's
    hidden state (``deck``, ``board``, ``state``, ...).
    """
    return gymnasium.make(env_id).unwrapped


@dataclasses.dataclass
class Episode:
    """One popgym episode as popgym returned it.

    ``obs[0]`` is the reset observation and ``obs[t + 1]`` follows ``actions[t]`` (popgym's
    raw observations, not encoded); ``rewards``, ``terminated`` and ``truncated`` hold one
    entry per step. ``start`` is what the test read from popgym right after reset and
    ``states[t]`` what it read after step ``t`` (None and empty unless asked for).
    """

    actions: list
    obs: list
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    start: Any = None
    states: list = dataclasses.field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.rewards)


Policy = Callable[[gymnasium.Env, np.random.Generator], Any]


def _replay(actions: Sequence[int]) -> Policy:
    """A policy that plays the discrete `actions` in order and fails the test if they run out.

    Running out means the episode is longer than the test's setup expects, which should show.
    """
    remaining = iter(actions)

    def policy(env, rng):
        action = next(remaining, None)
        if action is None:
            pytest.fail(f"popgym episode did not end within {len(actions)} steps")
        return np.int64(action)

    return policy


def reference_episode(
    env: gymnasium.Env,
    seed: int,
    policy: Policy | Sequence[int],
    *,
    prepare: Callable[[gymnasium.Env], None] | None = None,
    read_start: Callable[[gymnasium.Env], Any] | None = None,
    read_state: Callable[[gymnasium.Env], Any] | None = None,
) -> Episode:
    """Reset popgym's `env` with `seed` and step it until it terminates or is truncated.

    Arguments:
        env: from `reference_env`.
        seed: the reset seed; also seeds the ``rng`` handed to a callable `policy`.
        policy: ``policy(env, rng) -> action``, called before each step (it may look at
            popgym's hidden state), or a sequence of discrete actions played in order.
        prepare: called once right after the reset, to force popgym's hidden parameters.
        read_start: what to record as `Episode.start`, read after `prepare`.
        read_state: what to record in `Episode.states` after each step.
    """
    if not callable(policy):
        policy = _replay(policy)
    rng = np.random.default_rng(seed)
    first_obs, _ = env.reset(seed=seed)
    if prepare is not None:
        prepare(env)
    start = None if read_start is None else read_start(env)
    actions, obs, rewards, terminated, truncated, states = [], [first_obs], [], [], [], []
    while True:
        action = policy(env, rng)
        o, reward, term, trunc, _ = env.step(action)
        actions.append(action)
        obs.append(o)
        rewards.append(float(reward))
        terminated.append(bool(term))
        truncated.append(bool(trunc))
        if read_state is not None:
            states.append(read_state(env))
        if term or trunc:
            break
    return Episode(
        actions, obs, np.array(rewards), np.array(terminated), np.array(truncated), start, states
    )


def one_hot(obs, space: gymnasium.Space) -> np.ndarray:
    """A popgym observation one-hot encoded by its space, one block per component."""
    if isinstance(space, gymnasium.spaces.Discrete):
        out = np.zeros(int(space.n))
        out[int(obs) - int(space.start)] = 1.0
        return out
    if isinstance(space, gymnasium.spaces.MultiDiscrete):
        values = np.asarray(obs).reshape(-1)
        sizes = np.asarray(space.nvec).reshape(-1)
        return np.concatenate([np.eye(int(n))[int(v)] for v, n in zip(values, sizes, strict=True)])
    if isinstance(space, gymnasium.spaces.Tuple):
        return np.concatenate([one_hot(o, s) for o, s in zip(obs, space.spaces, strict=True)])
    raise TypeError(f"no one-hot encoding for {space}")


def one_hot_size(space: gymnasium.Space) -> int:
    """Length of `one_hot`'s output for `space`."""
    if isinstance(space, gymnasium.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gymnasium.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, gymnasium.spaces.Tuple):
        return sum(one_hot_size(s) for s in space.spaces)
    raise TypeError(f"no one-hot encoding for {space}")


def deal_order(deck) -> np.ndarray:
    """A popgym ``Deck``'s cards in the order it deals them (it deals from the end of ``idx``)."""
    return np.asarray(deck.idx[::-1], dtype=np.int32)


# --- port side -----------------------------------------------------------------------------


@contextlib.contextmanager
def _forced_decks(decks: Iterator) -> Iterator[None]:
    """Make the ports' `shuffled_deck` hand out `decks` in order instead of shuffling."""
    original = _cards.shuffled_deck
    _cards.shuffled_deck = lambda key, num_decks: next(decks)
    try:
        yield
    finally:
        _cards.shuffled_deck = original


def forced_reset(env: AbstractEnvironment, decks: Sequence[jax.Array]) -> tuple[jax.Array, Any]:
    """``(o_0, inner)`` of a batch of resets where each shuffle returns the next of `decks`.

    ``decks[i]`` is ``[batch, cards]``: the i-th deck the port's reset draws, in dealing
    order. Forcing the shuffle (rather than editing the state after reset) runs the port's
    own reset code, so its first observation is checked too.
    """

    def reset_one(*one_decks):
        remaining = iter(one_decks)
        with _forced_decks(remaining):
            obs, state = env.reset(jax.random.key(0))
        assert next(remaining, None) is None, "the port drew fewer decks than were forced"
        return obs, state.inner

    return jax.vmap(reset_one)(*[jnp.asarray(d) for d in decks])


@eqx.filter_jit
def _resets(env, key, n):
    return jax.vmap(env.reset_episode)(jax.random.split(key, n))


def port_resets(env: AbstractEnvironment, n: int, seed: int = 0) -> tuple[np.ndarray, Any]:
    """`n` of the port's own first observations and inner states, as numpy arrays."""
    obs, inner = _resets(env, jax.random.key(seed), n)
    return np.asarray(obs), jax.tree.map(np.asarray, inner)


@dataclasses.dataclass(frozen=True)
class PortRollout:
    """A batch of port episodes: numpy arrays ``[batch, time, ...]``, one entry per step.

    ``obs`` is what ``step`` returned, the next episode's ``o_0`` where ``done``;
    ``final_obs`` (``info.final_observation``) is ``o_{t+1}`` before that auto-reset, the
    observation to compare with popgym's. ``episode_return`` and ``episode_length`` are the
    running statistics after each step, and ``inner`` the inner state after each step
    (already reset where ``done``).
    """

    obs: np.ndarray
    final_obs: np.ndarray
    rewards: np.ndarray
    done: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_return: np.ndarray
    episode_length: np.ndarray
    inner: Any


@eqx.filter_jit
def _rollout(env, inner, actions, key):
    # One episode per call: a scan alone compiles in about half the time of a vmapped one,
    # and the program is compiled once and reused for every row of the batch. (Batched
    # stepping is covered by `forced_reset`, `port_resets` and tests/envs/test_every_id.py.)
    keys = jax.random.split(key, actions.shape[0])
    # A fresh episode from the given inner state, statistics at zero as after `reset`.
    state = EpisodeState(inner, jnp.zeros((), jnp.zeros(()).dtype), jnp.zeros((), jnp.int32))

    def body(state, xs):
        key, action = xs
        obs, state, reward, done, info = env.step(key, state, action)
        return state, (obs, reward, done, info, state.inner)

    return jax.lax.scan(body, state, (keys, actions))[1]


def port_rollout(env: AbstractEnvironment, inner, actions, seed: int = 0) -> PortRollout:
    """Step the port from the batched inner states `inner` with ``actions[batch, time, ...]``.

    Each row is one jitted ``scan`` of ``env.step`` from ``inner[b]``; its step keys come
    from the ``b``-th key of ``split(key(seed), batch)``. An episode that ends before
    ``time`` auto-resets and goes on; the steps after its end are never compared. Discrete
    actions are sent as int32 ids, whatever integer type they have.
    """
    actions = np.asarray(actions)
    if isinstance(env.action_space, Discrete):
        actions = actions.astype(np.int32)
    actions = jnp.asarray(actions)
    keys = jax.random.split(jax.random.key(seed), actions.shape[0])
    rows = [
        _rollout(env, jax.tree.map(lambda x, b=b: x[b], inner), actions[b], keys[b])
        for b in range(actions.shape[0])
    ]
    obs, rewards, done, info, inner_after = jax.tree.map(lambda *xs: np.stack(xs), *rows)
    return PortRollout(
        obs=obs,
        final_obs=info.final_observation,
        rewards=rewards,
        done=done,
        terminated=info.terminated,
        truncated=info.truncated,
        episode_return=info.episode_return,
        episode_length=info.episode_length,
        inner=inner_after,
    )


def pad_actions(episodes: Sequence[Episode], encode: Callable[[Any], Any], fill: Any) -> np.ndarray:
    """The actions of popgym's `episodes` as `port_rollout`'s ``[batch, max_length, ...]``.

    ``encode`` turns a popgym action into the port's (e.g. ``(row, col)`` into a tile id);
    the steps after an episode's end get `fill` (they are never compared).
    """
    length = max(e.length for e in episodes)
    rows = [[encode(a) for a in e.actions] + [fill] * (length - e.length) for e in episodes]
    return np.asarray(rows)


# --- comparisons ---------------------------------------------------------------------------


def assert_agrees(
    port: PortRollout,
    episodes: Sequence[Episode],
    encode_obs: Callable[[Any], np.ndarray] | None,
    *,
    atol: float = 1e-5,
    obs_atol: float | None = None,
    horizon: int | None = None,
    first_obs: np.ndarray | None = None,
    labels: Sequence[str] | None = None,
) -> None:
    """Episode ``b`` of `port` equals popgym's ``episodes[b]``, step by step.

    Over the first `horizon` steps of each episode (all when None):

    - observations: the port's ``final_obs`` equals ``encode_obs`` of popgym's to `obs_atol`
      (default `atol`); skipped when `encode_obs` is None (noisy tasks compare their noise
      by its statistics instead);
    - rewards to `atol`; ``terminated`` exactly; ``truncated`` as popgym's ``truncated and
      not terminated`` (rtrrl never reports a terminal step as a time-limit cut too, see
      `StepInfo`); ``done`` exactly at the episode's last step and nowhere before;
    - the episode statistics (return to `atol`, length exactly) at the last step, when the
      horizon reaches it.

    Given `first_obs` (the port's ``o_0``, ``[batch, obs]``), it must equal ``encode_obs`` of
    popgym's reset observation to `obs_atol`. All tolerances are absolute (``rtol = 0``).
    `labels` name the episodes in failure messages.
    """
    obs_atol = atol if obs_atol is None else obs_atol
    for b, episode in enumerate(episodes):
        n = episode.length
        m = n if horizon is None else min(n, horizon)
        label = "" if labels is None else f"{labels[b]}: "
        where = f"{label}episode {b} (length {n})"
        if first_obs is not None:
            np.testing.assert_allclose(
                first_obs[b],
                encode_obs(episode.obs[0]),
                rtol=0,
                atol=obs_atol,
                err_msg=f"o_0 of {where}",
            )
        if encode_obs is not None:
            expected_obs = np.stack([encode_obs(o) for o in episode.obs[1 : m + 1]])
            np.testing.assert_allclose(
                port.final_obs[b, :m],
                expected_obs,
                rtol=0,
                atol=obs_atol,
                err_msg=f"obs of {where}",
            )
        truncated = episode.truncated & ~episode.terminated
        done = np.zeros(n, bool)
        done[-1] = True
        np.testing.assert_allclose(
            port.rewards[b, :m],
            episode.rewards[:m],
            rtol=0,
            atol=atol,
            err_msg=f"rewards of {where}",
        )
        np.testing.assert_array_equal(
            port.terminated[b, :m], episode.terminated[:m], err_msg=f"terminated of {where}"
        )
        np.testing.assert_array_equal(
            port.truncated[b, :m], truncated[:m], err_msg=f"truncated of {where}"
        )
        np.testing.assert_array_equal(port.done[b, :m], done[:m], err_msg=f"done of {where}")
        if m == n:
            assert port.episode_length[b, n - 1] == n, where
            np.testing.assert_allclose(
                port.episode_return[b, n - 1],
                episode.rewards.sum(),
                rtol=0,
                atol=atol,
                err_msg=f"return of {where}",
            )


@eqx.filter_jit
def _one_step(env, inner, actions, key):
    keys = jax.random.split(key, actions.shape[0])
    return jax.vmap(env.step_episode)(keys, inner, actions)


def assert_one_step_agrees(
    env: AbstractEnvironment,
    inner,
    episodes: Sequence[Episode],
    encode_obs: Callable[[Any], np.ndarray],
    atol: float = 1e-5,
) -> None:
    """Every step of every episode, in order, taken from popgym's state before it.

    `inner` holds one port state per step (batched, in the episodes' order); the port's
    ``step_episode`` (the transition itself, without auto-reset) must give popgym's
    observation and reward to `atol` and popgym's raw ``terminated`` and ``truncated``.
    Unlike `assert_agrees`, errors cannot build up over an episode, so this checks every
    step of an episode that is chaotic when replayed open loop.
    """
    actions = jnp.asarray(np.asarray([a for e in episodes for a in e.actions]))
    obs, _, reward, terminated, truncated = _one_step(env, inner, actions, jax.random.key(0))
    expected_obs = np.stack([encode_obs(o) for e in episodes for o in e.obs[1:]])
    np.testing.assert_allclose(np.asarray(obs), expected_obs, atol=atol)
    rewards = np.concatenate([e.rewards for e in episodes])
    np.testing.assert_allclose(np.asarray(reward), rewards, atol=atol)
    np.testing.assert_array_equal(terminated, np.concatenate([e.terminated for e in episodes]))
    np.testing.assert_array_equal(truncated, np.concatenate([e.truncated for e in episodes]))


def check_spaces(env_id: str) -> AbstractEnvironment:
    """`make(env_id)` has popgym's one-hot observation size and action count; returns it."""
    env = make(env_id)
    ref = reference_env(env_id)
    assert env.name == env_id
    assert env.observation_size == one_hot_size(ref.observation_space)
    assert isinstance(ref.action_space, gymnasium.spaces.Discrete)
    assert env.action_space.n == int(ref.action_space.n)
    return env


@dataclasses.dataclass
class Agreement:
    """Outcome of `run_agreement`: popgym's episodes and the port's batch, all compared."""

    labels: list[tuple[int, str]]
    reference: list[Episode]
    port: PortRollout

    def returns(self, policy: str) -> tuple[np.ndarray, np.ndarray]:
        """``(popgym returns, port returns)`` of every seed's episode under `policy`."""
        idx = [b for b, (_, name) in enumerate(self.labels) if name == policy]
        ref = np.array([self.reference[b].rewards.sum() for b in idx])
        port = np.array([self.port.rewards[b, : self.reference[b].length].sum() for b in idx])
        return ref, port

    def lengths(self) -> np.ndarray:
        return np.array([ep.length for ep in self.reference])


def run_agreement(
    env_id: str,
    *,
    steps: int,
    decks: Callable[[gymnasium.Env], Sequence[np.ndarray]],
    policies: Callable[[gymnasium.Env, np.random.Generator, int], dict[str, np.ndarray]],
    seeds: Sequence[int] = (0, 1, 2),
) -> Agreement:
    """Play popgym and the port on the same decks and actions and compare every step.

    For each seed popgym's `env_id` is reset with it; ``decks(env)`` reads the shuffled
    deck(s) to force into the port (in the order the port draws them) and
    ``policies(env, rng, steps)`` builds named action sequences of `steps` actions (random,
    always right, always wrong, ...), which may look at the deck. Every (seed, policy) pair
    is one popgym episode, on a fresh env reset with the same seed, and one episode of the
    port's batch. Observations must agree exactly, rewards to 1e-12.
    """
    port_env = check_spaces(env_id)
    rng = np.random.default_rng(12345)
    labels, reference, forced, actions = [], [], [], []
    for seed in seeds:
        probe = reference_env(env_id)
        probe.reset(seed=seed)
        seed_decks = [np.asarray(d, np.int32) for d in decks(probe)]
        for name, acts in policies(probe, rng, steps).items():
            assert len(acts) == steps, name
            reference.append(reference_episode(reference_env(env_id), seed, acts))
            labels.append((seed, name))
            forced.append(seed_decks)
            actions.append(np.asarray(acts))
    batched_decks = [np.stack(ds) for ds in zip(*forced, strict=True)]
    first_obs, inner = forced_reset(port_env, batched_decks)
    port = port_rollout(port_env, inner, np.stack(actions))
    space = probe.observation_space
    assert_agrees(
        port,
        reference,
        lambda o: one_hot(o, space),
        atol=1e-12,
        obs_atol=0.0,
        first_obs=np.asarray(first_obs),
        labels=[f"{env_id} seed={seed} policy={name}" for seed, name in labels],
    )
    return Agreement(labels, reference, port)
