"""brax environments (Freeman et al. 2021) behind the `AbstractEnvironment` interface.

Ids are ``brax/<name>`` for every brax task (``brax/inverted_pendulum``,
``brax/halfcheetah``, ...). Left out: brax's internal test environment ``fast``, and
``swimmer``, whose fluid model in brax 0.14 calls ``jnp.clip(a_min=...)``, a keyword current
JAX no longer accepts (it fails at the first `step`). brax is imported only when one of these
environments is made.
"""

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, PRNGKey, PyTree
from ._base import AbstractEnvironment, AbstractEpisodicEnvironment
from ._compat import library_numerics, require
from ._observation_mask import ObservationMask, register_masks
from ._registry import EnvSpec, mark_unavailable, register
from ._spaces import ActionSpace, Box

BACKENDS = ("generalized", "positional", "spring", "mjx")
"""brax physics pipelines. ``generalized`` (brax's default) is the most faithful and the only
one every task supports; ``spring`` and ``positional`` compile and run several times faster
on CPU."""

DEFAULT_BACKEND = "generalized"
DEFAULT_EPISODE_LENGTH = 1000


@contextlib.contextmanager
def _quiet_construction() -> Iterator[None]:
    """Silence the notices brax and MuJoCo emit while loading a model.

    MuJoCo reports a deprecated attribute of brax's own model files through its warning
    callback, whose default also writes ``MUJOCO_LOG.TXT`` into the working directory; the
    callback is routed to Python warnings instead (the known notice is dropped), and brax's
    "not actively maintained" notice is dropped. Neither is actionable by the user.
    """
    mujoco = require("mujoco", purpose="brax environments")
    previous = mujoco.get_mju_user_warning()

    def forward(message: str) -> None:
        if "settotalmass" not in message:
            warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)

    mujoco.set_mju_user_warning(forward)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not actively being maintained.*")
            yield
    finally:
        mujoco.set_mju_user_warning(previous)


class BraxEnvironment(AbstractEpisodicEnvironment):
    """One brax task with a time limit.

    ``terminated`` is brax's ``done`` (e.g. the pendulum fell, the hopper is unhealthy);
    ``truncated`` is the time limit: the ``episode_length``-th step of an episode. Actions
    are clipped to ``[-1, 1]`` per dimension, the range brax's actuators are scaled for.
    brax runs in 32-bit with standard promotion (`library_numerics`); observations and
    rewards are cast to the default float dtype.

    Build it with `rtrrl.envs.make`; the fields are static configuration.
    """

    env_id: str = eqx.field(static=True)
    brax_env: Any = eqx.field(static=True)
    backend: str = eqx.field(static=True)
    episode_length: int = eqx.field(static=True)
    _observation_size: int = eqx.field(static=True)
    _action_size: int = eqx.field(static=True)

    def __init__(self, env_id: str, brax_name: str, backend: str, episode_length: int):
        if backend not in BACKENDS:
            raise ValueError(f"{env_id}: backend={backend!r} is not one of {BACKENDS}.")
        if not (isinstance(episode_length, int) and episode_length >= 1):
            raise ValueError(f"{env_id}: episode_length={episode_length!r} must be an int >= 1.")
        self.env_id = env_id
        self.backend = backend
        self.episode_length = episode_length
        # Imported and built in the 32-bit context: brax keeps arrays made at import and
        # construction (the physics system), and they must be 32-bit like the rest.
        with library_numerics(), _quiet_construction():
            envs = require("brax.envs", purpose=f"The brax environment {env_id!r}")
            try:
                self.brax_env = envs.get_environment(brax_name, backend=backend)
            except ValueError as error:
                if "backend" not in str(error).lower():
                    raise
                raise ValueError(
                    f"{env_id}: brax does not support backend={backend!r} for this task "
                    f"({error}); use backend={DEFAULT_BACKEND!r}."
                ) from error
            # brax's own `observation_size` runs a reset op by op on every access (seconds
            # for the generalized pipeline); tracing one once is enough.
            reset = jax.eval_shape(self.brax_env.reset, jax.random.key(0))
            self._observation_size = int(reset.obs.shape[-1])
            self._action_size = int(self.brax_env.action_size)

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def observation_size(self) -> int:
        return self._observation_size

    @property
    def action_space(self) -> ActionSpace:
        return Box((-1.0,) * self._action_size, (1.0,) * self._action_size)

    def reset_episode(self, key: PRNGKey) -> tuple[Array, PyTree[Any]]:
        with library_numerics():
            state = self.brax_env.reset(key)
            # One fixed dtype per leaf, so that the auto-reset `where` and scan carries agree.
            state = jax.tree.map(lambda x: jnp.asarray(x, jnp.asarray(x).dtype), state)
            return state.obs, (state, jnp.zeros((), jnp.int32))

    def step_episode(
        self, key: PRNGKey, inner: PyTree[Any], action: Array
    ) -> tuple[Array, PyTree[Any], Array, Array, Array]:
        del key  # brax dynamics are deterministic given the state
        state, t = inner
        with library_numerics():
            action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
            # Some brax tasks update `state.metrics` in place (a dict): hand them fresh
            # containers so the caller's state is left untouched.
            next_state = self.brax_env.step(jax.tree.map(lambda x: x, state), action)
            next_state = jax.tree.map(
                lambda new, old: jnp.asarray(new, old.dtype), next_state, state
            )
            t = t + 1
            terminated = next_state.done > 0.5
            truncated = t >= self.episode_length
            return next_state.obs, (next_state, t), next_state.reward, terminated, truncated


# --- registration -------------------------------------------------------------------------

# name -> (observation size, action size, description, number of position entries leading the
# observation, or None when the layout is not [positions, velocities]). Static so that listing
# ids does not import brax; `tests/envs/test_brax.py` checks it against brax.
_TASKS: dict[str, tuple[int, int, str, int | None]] = {
    "ant": (27, 8, "quadruped walking forward; masks pos/vel", 13),
    "halfcheetah": (17, 6, "planar cheetah running forward; masks pos/vel", 8),
    "hopper": (11, 3, "planar one-legged hopper; masks pos/vel", 5),
    "humanoid": (244, 17, "3-D humanoid walking forward", None),
    "humanoidstandup": (244, 17, "3-D humanoid standing up from the ground", None),
    "inverted_pendulum": (4, 1, "cart-pole with continuous force; masks pos/vel", 2),
    "inverted_double_pendulum": (8, 1, "cart with a double pendulum; masks pos/vel", 5),
    "pusher": (23, 7, "arm pushing an object to a goal", None),
    "reacher": (11, 2, "two-joint arm reaching a target", None),
    "walker2d": (17, 6, "planar biped walking forward; masks pos/vel", 8),
}


def brax_id(name: str) -> str:
    return f"brax/{name}"


def _factory(name: str) -> Callable[..., AbstractEnvironment]:
    def factory(
        *,
        backend: str = DEFAULT_BACKEND,
        episode_length: int = DEFAULT_EPISODE_LENGTH,
        obs_mask: str | tuple[int, ...] | None = None,
    ) -> AbstractEnvironment:
        env: AbstractEnvironment = BraxEnvironment(brax_id(name), name, backend, episode_length)
        if obs_mask is not None:
            env = ObservationMask(env, obs_mask)
        return env

    factory.__doc__ = (
        f"Make brax's {name!r}: backend in {BACKENDS}, episode_length (time limit, steps), "
        "obs_mask."
    )
    return factory


def register_all() -> None:
    """Register ``brax/<name>`` for every brax task and its pos/vel masks."""
    mark_unavailable(
        brax_id("swimmer"),
        "brax 0.14's fluid model (used only by swimmer) calls `jnp.clip(a_min=...)`, which "
        "this JAX version no longer accepts. The gymnax task 'Swimmer-misc' is available.",
    )
    for name, (obs_size, action_size, description, n_pos) in _TASKS.items():
        env_id = brax_id(name)
        register(
            EnvSpec(
                env_id,
                "brax",
                _factory(name),
                description,
                observation_size=obs_size,
                action_space=Box((-1.0,) * action_size, (1.0,) * action_size),
            )
        )
        if n_pos is not None:
            register_masks(env_id, pos=tuple(range(n_pos)), vel=tuple(range(n_pos, obs_size)))
