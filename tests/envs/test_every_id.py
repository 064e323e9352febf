"""Every registered id: made, reset and stepped under jit(vmap(scan)) with random actions.

Compilation dominates the cost, so the ids of one source are compiled together in a few
programs (one `jax.jit` per group), with XLA's backend optimisation off: these tests check
semantics, not speed. Even so a brax task takes 4 to 15 s to compile on two CPU cores (the
other nine about 85 s together), so the default run covers `brax/inverted_pendulum` and the
others are marked `slow` (``pytest -m slow tests/envs/test_every_id.py``).
"""

import functools

import jax
import numpy as np
import pytest

import rtrrl.envs as envs

STEPS = 50
BATCH = 2
GROUP_SIZE = 12
BRAX_DEFAULT_RUN = ("brax/inverted_pendulum",)
# These tests check semantics, not speed: without these optimisations XLA compiles about
# twice as fast on CPU.
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def rollout(env: envs.AbstractEnvironment, key):
    """Reset and step `BATCH` copies of `env` for `STEPS` steps with random actions."""
    venv = envs.VectorEnv(env, BATCH)
    key_reset, key_steps = jax.random.split(key)
    obs0, state = venv.reset(key_reset)

    def body(state, key):
        key_action, key_step = jax.random.split(key)
        action = venv.sample_actions(key_action)
        obs, state, reward, done, info = venv.step(key_step, state, action)
        return state, (obs, reward, done, info)

    _, trajectory = jax.lax.scan(body, state, jax.random.split(key_steps, STEPS))
    return obs0, trajectory


def _groups() -> list[tuple[str, ...]]:
    ids = [n for n in envs.names() if envs.spec(n).source != "brax"]
    groups = []
    for source in dict.fromkeys(envs.spec(n).source for n in ids):
        members = [n for n in ids if envs.spec(n).source == source]
        groups += [tuple(members[i : i + GROUP_SIZE]) for i in range(0, len(members), GROUP_SIZE)]
    return groups + [(n,) for n in envs.names("brax")]


def _compile_and_run(ids: tuple[str, ...]):
    made = [envs.make(n) for n in ids]
    run = jax.jit(
        lambda key: [rollout(env, key) for env in made], compiler_options=COMPILER_OPTIONS
    )
    return dict(zip(ids, jax.device_get(run(jax.random.key(0))), strict=True))


@functools.cache
def _results(group: tuple[str, ...]) -> dict:
    """``id -> rollout output`` (or the exception) for every id of `group`."""
    try:
        return _compile_and_run(group)
    except Exception:
        if len(group) == 1:
            raise
        # Compile one by one so that only the faulty ids fail, each with its own error.
        results = {}
        for env_id in group:
            try:
                results.update(_compile_and_run((env_id,)))
            except Exception as error:
                results[env_id] = error
        return results


def _params():
    for group in _groups():
        for env_id in group:
            slow = env_id.startswith("brax/") and env_id not in BRAX_DEFAULT_RUN
            marks = [pytest.mark.slow] if slow else []
            yield pytest.param(group, env_id, id=env_id, marks=marks)


@pytest.mark.parametrize(("group", "env_id"), list(_params()))
def test_make_reset_step_under_jit_vmap_scan(group, env_id):
    result = _results(group)[env_id]
    if isinstance(result, Exception):
        raise result
    env = envs.make(env_id)
    size, dtype = env.observation_size, envs.default_float()
    obs0, (obs, reward, done, info) = result

    assert obs0.shape == (BATCH, size) and obs0.dtype == dtype
    assert obs.shape == (STEPS, BATCH, size) and obs.dtype == dtype
    assert info.final_observation.shape == (STEPS, BATCH, size)
    assert reward.shape == (STEPS, BATCH) and reward.dtype == dtype
    assert done.shape == info.terminated.shape == info.truncated.shape == (STEPS, BATCH)
    for name, x in [("obs", obs0), ("obs", obs), ("final", info.final_observation), ("r", reward)]:
        assert np.isfinite(x).all(), f"{env_id}: non-finite {name}"

    assert (done == (info.terminated | info.truncated)).all()
    assert not (info.terminated & info.truncated).any()
    # Without a reset the final observation is the returned one (up to rounding: XLA may
    # compute the two copies in differently fused kernels).
    kept = ~done
    np.testing.assert_allclose(info.final_observation[kept], obs[kept], rtol=1e-9, atol=1e-12)
    # Episode statistics count this step and restart after `done`.
    length = np.asarray(info.episode_length, np.int64)
    previous = np.concatenate([np.zeros((1, BATCH), np.int64), length[:-1]])
    restarted = np.concatenate([np.ones((1, BATCH), bool), done[:-1]])
    assert (np.where(restarted, length == 1, length == previous + 1)).all()


def test_every_source_is_covered():
    sources = {envs.spec(n).source for n in envs.names()}
    assert {"gymnax", "brax"} <= sources
