"""gymnax environments (Lange 2022) behind the `AbstractEnvironment` interface.

Every gymnax id is registered under its own name (``CartPole-v1``, ``MemoryChain-bsuite``,
...), except ``MNISTBandit-bsuite``, which downloads MNIST from the internet when built.
gymnax is imported only when one of these environments is made.
"""

import dataclasses
import inspect
import math
from collections.abc import Callable, Hashable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import expected_type
from .._types import Array, PRNGKey, PyTree
from ._base import AbstractEnvironment, AbstractEpisodicEnvironment
from ._compat import library_numerics, require
from ._observation_mask import ObservationMask, register_masks
from ._registry import EnvSpec, mark_unavailable, register
from ._spaces import ActionSpace, Box, Discrete


class GymnaxEnvironment(AbstractEpisodicEnvironment):
    """One gymnax environment, stepped with gymnax's `step_env` / `reset_env` (no auto-reset).

    Auto-reset and episode statistics come from `AbstractEpisodicEnvironment`; termination
    is gymnax's ``done`` from `step_env` and truncation its `is_truncated` (the time limit
    ``max_steps_in_episode``), so a time-limit cut is reported as ``truncated``.

    Observations are flattened to a float vector (MinAtar, Catch and Pong observe images); a
    discrete observation (FrozenLake) is one-hot encoded. Continuous actions are clipped to
    the action space's bounds before gymnax sees them. gymnax runs in 32-bit with standard
    promotion (`library_numerics`); its outputs are cast to the default float dtype.

    Build it with `rtrrl.envs.make`; the fields are static configuration.
    """

    env_id: str = eqx.field(static=True)
    gymnax_env: Any = eqx.field(static=True)
    params_overrides: tuple[tuple[str, Hashable], ...] = eqx.field(static=True)
    obs_one_hot: int | None = eqx.field(static=True)
    _observation_size: int = eqx.field(static=True)
    _action_space: ActionSpace = eqx.field(static=True)

    def __init__(
        self,
        env_id: str,
        constructor_options: dict[str, Hashable],
        params_options: dict[str, Hashable],
    ):
        self.env_id = env_id
        self.params_overrides = tuple(sorted(params_options.items()))
        # Imported and built inside the 32-bit context: gymnax keeps arrays made at import
        # (module constants) and at construction, and they must be 32-bit like the rest.
        with library_numerics():
            gymnax = require("gymnax", purpose=f"The gymnax environment {env_id!r}")
            spaces = require("gymnax.environments.spaces", purpose=f"{env_id!r}")
            default_env, default_params = gymnax.make(env_id)
            init = inspect.signature(type(default_env).__init__).parameters
            _check_options(env_id, constructor_options, {n: p.default for n, p in init.items()})
            fields = dataclasses.fields(default_params)
            _check_options(
                env_id, params_options, {f.name: getattr(default_params, f.name) for f in fields}
            )
            _check_payoff_within_episode(env_id, params_options, default_params)
            self.gymnax_env, _ = gymnax.make(env_id, **constructor_options)
            params = self._params()
            obs_space = self.gymnax_env.observation_space(params)
            act_space = self.gymnax_env.action_space(params)
            if isinstance(obs_space, spaces.Discrete):
                self.obs_one_hot = int(obs_space.n)
                self._observation_size = self.obs_one_hot
            else:
                self.obs_one_hot = None
                reset = jax.eval_shape(
                    lambda key: self.gymnax_env.reset_env(key, params), jax.random.key(0)
                )
                self._observation_size = math.prod(reset[0].shape)
            if isinstance(act_space, spaces.Discrete):
                self._action_space = Discrete(int(act_space.n))
            else:
                shape = act_space.shape
                low = jnp.broadcast_to(jnp.asarray(act_space.low, jnp.float32), shape)
                high = jnp.broadcast_to(jnp.asarray(act_space.high, jnp.float32), shape)
                self._action_space = Box(
                    tuple(float(x) for x in low.ravel()), tuple(float(x) for x in high.ravel())
                )

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def observation_size(self) -> int:
        return self._observation_size

    @property
    def action_space(self) -> ActionSpace:
        return self._action_space

    def _params(self) -> Any:
        # Rebuilt at trace time from static overrides: keeps the adapter free of array
        # leaves, and gymnax's array-valued params are made in the 32-bit context.
        return self.gymnax_env.default_params.replace(**dict(self.params_overrides))

    def _observe(self, obs: Array) -> Array:
        if self.obs_one_hot is not None:
            return jax.nn.one_hot(obs, self.obs_one_hot, dtype=jnp.float32)
        return jnp.asarray(obs, jnp.float32).reshape(self._observation_size)

    def _action(self, action: Array) -> Array:
        if isinstance(self._action_space, Discrete):
            return jnp.asarray(action, jnp.int32)
        low = jnp.asarray(self._action_space.low, jnp.float32)
        high = jnp.asarray(self._action_space.high, jnp.float32)
        return jnp.clip(jnp.asarray(action, jnp.float32), low, high)

    def reset_episode(self, key: PRNGKey) -> tuple[Array, PyTree[Any]]:
        with library_numerics():
            obs, state = self.gymnax_env.reset_env(key, self._params())
            # Some states hold Python scalars (weakly typed once traced): fix one dtype per
            # leaf so the scan carry and the auto-reset `where` see the same types.
            state = jax.tree.map(lambda x: jnp.asarray(x, jnp.asarray(x).dtype), state)
            return self._observe(obs), state

    def step_episode(
        self, key: PRNGKey, inner: PyTree[Any], action: Array
    ) -> tuple[Array, PyTree[Any], Array, Array, Array]:
        with library_numerics():
            params = self._params()
            action = self._action(action)
            obs, state, reward, terminated, _ = self.gymnax_env.step_env(key, inner, action, params)
            truncated = self.gymnax_env.is_truncated(state, params)
            # gymnax may return a leaf with another dtype or a (1,)-shaped leaf where the
            # reset state has a scalar (continuous actions broadcast into the state).
            state = jax.tree.map(
                lambda new, old: jnp.asarray(new, old.dtype).reshape(old.shape), state, inner
            )
            return self._observe(obs), state, reward, terminated, truncated


# --- registration -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Entry:
    description: str
    # Options passed to the gymnax environment's constructor.
    constructor: tuple[str, ...] = ()
    # Options that replace fields of gymnax's `EnvParams` (`max_steps_in_episode` always).
    params: tuple[str, ...] = ()


_MINATAR = _Entry("", constructor=("use_minimal_action_set",))

_ENTRIES: dict[str, _Entry] = {
    "CartPole-v1": _Entry("balance a pole on a cart; masks pos/vel"),
    "Pendulum-v1": _Entry("swing up and hold a pendulum (continuous torque); masks pos/vel"),
    "Acrobot-v1": _Entry(
        "swing a two-link arm above a line; masks pos/vel", params=("torque_noise_max",)
    ),
    "MountainCar-v0": _Entry("drive an underpowered car up a hill; masks pos/vel"),
    "MountainCarContinuous-v0": _Entry("mountain car with continuous force; masks pos/vel"),
    "Asterix-MinAtar": dataclasses.replace(_MINATAR, description="MinAtar Asterix (10x10x4 image)"),
    "Breakout-MinAtar": dataclasses.replace(
        _MINATAR, description="MinAtar Breakout (10x10x4 image)"
    ),
    "Freeway-MinAtar": dataclasses.replace(_MINATAR, description="MinAtar Freeway (10x10x7 image)"),
    "Seaquest-MinAtar": dataclasses.replace(
        _MINATAR, description="MinAtar Seaquest (10x10x10 image)"
    ),
    "SpaceInvaders-MinAtar": dataclasses.replace(
        _MINATAR, description="MinAtar Space Invaders (10x10x6 image)"
    ),
    "Catch-bsuite": _Entry("catch a falling ball (rows x columns image)", ("rows", "columns")),
    "DeepSea-bsuite": _Entry(
        "deep exploration down a size x size grid",
        ("size",),
        ("deterministic", "randomize_actions"),
    ),
    "MemoryChain-bsuite": _Entry(
        "recall a context bit after memory_length steps", ("num_bits",), ("memory_length",)
    ),
    "UmbrellaChain-bsuite": _Entry(
        "credit assignment over a chain of chain_length steps", ("n_distractor",), ("chain_length",)
    ),
    "DiscountingChain-bsuite": _Entry(
        "rewards at different delays: probes the discount", ("mapping_seed",)
    ),
    "SimpleBandit-bsuite": _Entry("bsuite bandit with num_actions arms", ("num_actions",)),
    "FourRooms-misc": _Entry(
        "navigate to a goal in four rooms (Sutton et al. 1999)",
        ("use_visual_obs",),
        ("fail_prob", "resample_init_pos", "resample_goal_pos"),
    ),
    "MetaMaze-misc": _Entry(
        "find a hidden goal repeatedly in a maze (Miconi et al. 2019)",
        ("maze_size", "rf_size"),
        ("reward", "punishment", "normalize_time"),
    ),
    "PointRobot-misc": _Entry(
        "meta-RL point robot reaching a hidden goal", params=("dense_reward", "center_init")
    ),
    "BernoulliBandit-misc": _Entry("two-armed Bernoulli bandit (meta-RL)", params=("reward_prob",)),
    "GaussianBandit-misc": _Entry("two-armed Gaussian bandit (meta-RL)"),
    "Reacher-misc": _Entry("meta-RL reacher with num_joints joints", ("num_joints",)),
    "Swimmer-misc": _Entry("meta-RL swimmer avoiding num_urchins urchins", ("num_urchins",)),
    "Pong-misc": _Entry(
        "Pong against a scripted opponent (30x40x3 image)", params=("use_ai_policy",)
    ),
    "FrozenLake-misc": _Entry(
        "cross a frozen lake (one-hot position)", ("map_name", "is_slippery", "success_rate")
    ),
}
"""Every gymnax id but ``MNISTBandit-bsuite`` (it downloads MNIST when built)."""

# Named observation masks (`obs_mask="pos"|"vel"`) from each environment's observation layout.
_MASKS: dict[str, dict[str, tuple[int, ...]]] = {
    # (x, ẋ, θ, θ̇)
    "CartPole-v1": {"pos": (0, 2), "vel": (1, 3)},
    # (cos θ, sin θ, θ̇)
    "Pendulum-v1": {"pos": (0, 1), "vel": (2,)},
    # (cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2)
    "Acrobot-v1": {"pos": (0, 1, 2, 3), "vel": (4, 5)},
    # (position, velocity)
    "MountainCar-v0": {"pos": (0,), "vel": (1,)},
    "MountainCarContinuous-v0": {"pos": (0,), "vel": (1,)},
}


def _check_hashable(env_id: str, options: dict[str, Any]) -> None:
    for name, value in options.items():
        try:
            hash(value)
        except TypeError:
            raise TypeError(
                f"{env_id}: option {name}={value!r} must be a plain Python value (int, float, "
                "bool, str); arrays are not accepted because options are static configuration."
            ) from None


def _check_options(env_id: str, options: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Each option has the type of gymnax's default for it, and counts stay counts.

    gymnax checks nothing: ``memory_length=-3`` or ``2.5`` trains on a broken task, and a
    string fails deep inside tracing. An integer whose default is >= 1 (a length, a size, a
    number of arms or bits) must be >= 1; other values only need the default's type. Every
    integer must fit the 32 bits gymnax stores it in (``max_steps_in_episode=10**12`` was an
    OverflowError while tracing).
    """
    for name, value in options.items():
        default = defaults.get(name)
        if type(default) not in (bool, int, float, str):
            continue  # an array or a value gymnax leaves open: nothing to compare with
        ok, allowed = expected_type(type(default))
        if type(default) is int:
            # gymnax keeps integers in 32-bit arrays: a larger one overflows when traced.
            low = 1 if default >= 1 else -_INT32_MAX - 1
            ok = lambda v, is_int=ok, low=low: is_int(v) and low <= v <= _INT32_MAX  # noqa: E731
            allowed = (
                f"an integer >= 1 and <= {_INT32_MAX}"
                if low == 1
                else f"an integer in [{low}, {_INT32_MAX}]"
            ) + " (gymnax keeps it in a 32-bit integer)"
        if not ok(value):
            raise ValueError(
                f"{env_id}: option {name} must be {allowed} (gymnax's default is {default!r}), "
                f"got {value!r}."
            )


_INT32_MAX = 2**31 - 1

# Options that set the step of an episode's only payoff: (option, steps after it). An episode
# cut off by ``max_steps_in_episode`` before that step teaches nothing.
_PAYOFF_STEP = {
    "MemoryChain-bsuite": ("memory_length", 1),  # the query is answered at step length + 1
    "UmbrellaChain-bsuite": ("chain_length", 0),  # paid at step chain_length
}


def _check_payoff_within_episode(env_id: str, options: dict[str, Any], defaults: Any) -> None:
    """Refuse a chain longer than the episodes (``memory_length=10**9`` with the default
    1000 steps per episode): no episode would ever reach its reward."""
    if env_id not in _PAYOFF_STEP:
        return
    name, after = _PAYOFF_STEP[env_id]
    length = options.get(name, getattr(defaults, name))
    limit = options.get("max_steps_in_episode", defaults.max_steps_in_episode)
    if length + after > limit:
        raise ValueError(
            f"{env_id}: option {name}={length} puts the episode's reward at step "
            f"{length + after}, after the episode ends (max_steps_in_episode={limit}), so no "
            f"episode could ever be rewarded. Lower {name}, or raise max_steps_in_episode "
            "with --env-option as well."
        )


def _make_gymnax(env_id: str, options: dict[str, Any]) -> AbstractEnvironment:
    entry = _ENTRIES[env_id]
    obs_mask = options.pop("obs_mask", None)
    given = {k: v for k, v in options.items() if v is not None}
    _check_hashable(env_id, given)
    constructor = {k: v for k, v in given.items() if k in entry.constructor}
    params = {k: v for k, v in given.items() if k not in entry.constructor}
    env: AbstractEnvironment = GymnaxEnvironment(env_id, constructor, params)
    if obs_mask is not None:
        env = ObservationMask(env, obs_mask)
    return env


def _factory(env_id: str) -> Callable[..., AbstractEnvironment]:
    entry = _ENTRIES[env_id]
    names = (*entry.constructor, *entry.params, "max_steps_in_episode", "obs_mask")

    def factory(**options: Any) -> AbstractEnvironment:
        return _make_gymnax(env_id, options)

    # `make` reads the accepted options from the signature; `None` keeps gymnax's default.
    kw = inspect.Parameter.KEYWORD_ONLY
    factory.__signature__ = inspect.Signature(
        [inspect.Parameter(n, kw, default=None) for n in names]
    )
    factory.__doc__ = (
        f"Make the gymnax environment {env_id!r}. Options (None keeps gymnax's default): "
        f"{', '.join(names)}."
    )
    return factory


def _alias(env_id: str, mask: str, alias: str) -> Callable[..., AbstractEnvironment]:
    def factory(*, max_steps_in_episode: int | None = None) -> AbstractEnvironment:
        options = {"max_steps_in_episode": max_steps_in_episode}
        inner = _make_gymnax(env_id, {k: v for k, v in options.items() if v is not None})
        return ObservationMask(inner, mask, name=alias)

    return factory


def register_all() -> None:
    """Register every gymnax id and the aliases ``CartPole-pos`` / ``CartPole-vel``."""
    for env_id, entry in _ENTRIES.items():
        register(EnvSpec(env_id, "gymnax", _factory(env_id), entry.description))
    for env_id, masks in _MASKS.items():
        register_masks(env_id, **masks)
    mark_unavailable(
        "MNISTBandit-bsuite",
        "gymnax downloads MNIST from the internet when it builds this environment, so it is "
        "left out (rtrrl never fetches data behind the user's back).",
    )
    register(
        EnvSpec(
            "CartPole-pos",
            "gymnax",
            _alias("CartPole-v1", "pos", "CartPole-pos"),
            "CartPole-v1 observing positions only (x, θ)",
        )
    )
    register(
        EnvSpec(
            "CartPole-vel",
            "gymnax",
            _alias("CartPole-v1", "vel", "CartPole-vel"),
            "CartPole-v1 observing velocities only (ẋ, θ̇): the paper's CartPole-vel",
        )
    )
