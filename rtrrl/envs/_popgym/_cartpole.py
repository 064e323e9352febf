"""POPGym's partially observable CartPole tasks: position only, velocity only, noisy positions.

All three wrap gymnasium's ``CartPoleEnv`` (Barto, Sutton & Anderson 1983; gymnasium's
``classic_control/cartpole.py``) in ``popgym`` 1.0.7 (Morad et al., "POPGym: Benchmarking
Partially Observable Reinforcement Learning", ICLR 2023). The physics below is gymnasium's
explicit-Euler step with its constants; the variants differ only in what they observe.
"""

import abc
import functools
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment, default_float
from .._registry import EnvSpec, register
from .._spaces import Discrete
from ._common import difficulty_config, popgym_id, register_task

# gymnasium CartPoleEnv constants, derived the same way (e.g. total mass 0.1 + 1.0) so the
# float64 arithmetic matches gymnasium's up to the last bit of cos/sin.
_GRAVITY = 9.8
_MASS_CART = 1.0
_MASS_POLE = 0.1
_TOTAL_MASS = _MASS_POLE + _MASS_CART
_HALF_LENGTH = 0.5
_POLE_MASS_LENGTH = _MASS_POLE * _HALF_LENGTH
_FORCE_MAG = 10.0
_TAU = 0.02
_THETA_THRESHOLD = 12 * 2 * math.pi / 360
_X_THRESHOLD = 2.4
# popgym's position observation space is [-2 x_threshold, 2 x_threshold] x [-2 theta_thr,
# 2 theta_thr]; the noisy variant clips its noisy observations to it.
_POSITION_HIGH = (2 * _X_THRESHOLD, 2 * _THETA_THRESHOLD)

# difficulty -> max_episode_length (popgym's PositionOnly/VelocityOnly ...Easy/Medium/Hard).
_EPISODE_LENGTH = {"Easy": 200, "Medium": 400, "Hard": 600}
# difficulty -> noise_sigma of NoisyPositionOnlyCartPole; its episode length stays at 200.
_NOISE_SIGMA = {"Easy": 0.1, "Medium": 0.2, "Hard": 0.3}
_NOISY_EPISODE_LENGTH = 200


def cartpole_dynamics(physics: Float[Array, "4"], action: Int[ArrayLike, ""]) -> Float[Array, "4"]:
    """One explicit-Euler step of gymnasium's cart-pole (``kinematics_integrator="euler"``).

    Arguments:
        physics: ``(x, x_dot, theta, theta_dot)``, gymnasium's ``CartPoleEnv.state`` order.
        action: 0 pushes the cart left, 1 pushes it right (force ``10`` N).

    Returns:
        The next ``(x, x_dot, theta, theta_dot)``, same dtype as `physics`.
    """
    x, x_dot, theta, theta_dot = physics
    force = jnp.where(jnp.asarray(action) == 1, _FORCE_MAG, -_FORCE_MAG).astype(physics.dtype)
    cos_theta = jnp.cos(theta)
    sin_theta = jnp.sin(theta)
    temp = (force + _POLE_MASS_LENGTH * jnp.square(theta_dot) * sin_theta) / _TOTAL_MASS
    theta_acc = (_GRAVITY * sin_theta - cos_theta * temp) / (
        _HALF_LENGTH * (4.0 / 3.0 - _MASS_POLE * jnp.square(cos_theta) / _TOTAL_MASS)
    )
    x_acc = temp - _POLE_MASS_LENGTH * theta_acc * cos_theta / _TOTAL_MASS
    # Euler: positions advance with the *old* velocities.
    return jnp.stack(
        [
            x + _TAU * x_dot,
            x_dot + _TAU * x_acc,
            theta + _TAU * theta_dot,
            theta_dot + _TAU * theta_acc,
        ]
    )


def cartpole_fallen(physics: Float[Array, "4"]) -> Bool[Array, ""]:
    """gymnasium's termination: the cart leaves ``|x| <= 2.4`` or the pole ``|theta| <= 12°``."""
    x, _, theta, _ = physics
    return (
        (x < -_X_THRESHOLD)
        | (x > _X_THRESHOLD)
        | (theta < -_THETA_THRESHOLD)
        | (theta > _THETA_THRESHOLD)
    )


class CartPoleState(eqx.Module):
    """One episode of a POPGym CartPole variant.

    - ``physics``: ``(x, x_dot, theta, theta_dot)``, in gymnasium's ``CartPoleEnv.state`` order.
    - ``num_steps``: steps taken in this episode (popgym's ``num_steps``).
    """

    physics: Float[Array, "4"]
    num_steps: Int[Array, ""]


class AbstractPopGymCartPole(AbstractEpisodicEnvironment):
    """Shared episode logic of the POPGym CartPole variants; subclasses choose the observation.

    - Start: every entry of ``(x, x_dot, theta, theta_dot)`` uniform in ``[-0.05, 0.05)``.
    - Action: ``Discrete(2)``, push left (0) or right (1).
    - Reward: ``1 / max_episode_length`` on every step, the falling step included (gymnasium
      pays ``+1`` there too and popgym rescales ``+1`` to ``1 / max_episode_length``; popgym's
      ``-1`` branch is only reached by stepping past termination, which auto-reset never
      does). Returns lie in ``(0, 1]``; ``1`` means the pole was balanced for the whole episode.
    - Episode: *terminated* when ``|x| > 2.4`` or ``|theta| > 12°``; *truncated* after
      ``max_episode_length`` steps (a fall on the last step counts as terminated).
    """

    task: eqx.AbstractClassVar[str]
    difficulty: eqx.AbstractVar[str]
    max_episode_length: eqx.AbstractVar[int]

    @property
    def name(self) -> str:
        return popgym_id(self.task, self.difficulty)

    @property
    def observation_size(self) -> int:
        return 2

    @property
    def action_space(self) -> Discrete:
        return Discrete(2)

    @abc.abstractmethod
    def observe(
        self, key: PRNGKey, physics: Float[Array, "4"], *, at_reset: bool
    ) -> Float[Array, "2"]:
        """The observation of `physics` (`at_reset`: it is the episode's first observation)."""

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, "2"], CartPoleState]:
        key_start, key_obs = jax.random.split(key)
        physics = jax.random.uniform(key_start, (4,), default_float(), minval=-0.05, maxval=0.05)
        state = CartPoleState(physics, jnp.zeros((), jnp.int32))
        return self.observe(key_obs, physics, at_reset=True), state

    def step_episode(
        self, key: PRNGKey, inner: CartPoleState, action: Int[ArrayLike, ""]
    ) -> tuple[
        Float[Array, "2"], CartPoleState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]
    ]:
        physics = cartpole_dynamics(inner.physics, action)
        num_steps = inner.num_steps + 1
        terminated = cartpole_fallen(physics)
        truncated = num_steps >= self.max_episode_length
        reward = jnp.full((), 1.0 / self.max_episode_length, physics.dtype)
        obs = self.observe(key, physics, at_reset=False)
        return obs, CartPoleState(physics, num_steps), reward, terminated, truncated


class PositionOnlyCartPole(AbstractPopGymCartPole):
    """JAX port of POPGym's ``PositionOnlyCartPole`` (popgym 1.0.7, Morad et al. ICLR 2023).

    CartPole where only the positions are seen: the observation is ``(x, theta)``, two floats,
    so the velocities must be inferred from memory. Reward, start and episode rules are those
    of `AbstractPopGymCartPole`. ``max_episode_length``: Easy 200, Medium 400, Hard 600.
    The paper's (and rtrrl's alias) ``StatelessCartPole`` is the Easy task.
    """

    task: ClassVar[str] = "PositionOnlyCartPole"
    difficulty: str = eqx.field(static=True)
    max_episode_length: int = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.max_episode_length = difficulty_config(self.task, difficulty, _EPISODE_LENGTH)

    def observe(
        self, key: PRNGKey, physics: Float[Array, "4"], *, at_reset: bool
    ) -> Float[Array, "2"]:
        del key, at_reset
        return physics[jnp.array([0, 2])]


class VelocityOnlyCartPole(AbstractPopGymCartPole):
    """JAX port of POPGym's ``VelocityOnlyCartPole`` (popgym 1.0.7, Morad et al. ICLR 2023).

    CartPole where only the velocities are seen: after a step the observation is
    ``(x_dot, theta_dot)``. The episode's *first* observation is ``(x, theta)`` instead, as in
    popgym, whose ``reset`` keeps the position entries (all four start entries are i.i.d.
    uniform in ``[-0.05, 0.05)``, so this only changes which start values are revealed).
    Reward, start and episode rules are those of `AbstractPopGymCartPole`.
    ``max_episode_length``: Easy 200, Medium 400, Hard 600.

    popgym registers this task as ``popgym-VelocityOnlyCartpole<Difficulty>-v0`` (lower-case
    "pole"); rtrrl registers that id and the ``...CartPole...`` spelling as an alias.
    """

    task: ClassVar[str] = "VelocityOnlyCartpole"
    difficulty: str = eqx.field(static=True)
    max_episode_length: int = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.max_episode_length = difficulty_config(self.task, difficulty, _EPISODE_LENGTH)

    def observe(
        self, key: PRNGKey, physics: Float[Array, "4"], *, at_reset: bool
    ) -> Float[Array, "2"]:
        del key
        return physics[jnp.array([0, 2] if at_reset else [1, 3])]


class NoisyPositionOnlyCartPole(AbstractPopGymCartPole):
    """JAX port of POPGym's ``NoisyPositionOnlyCartPole`` (popgym 1.0.7, Morad et al. 2023).

    `PositionOnlyCartPole` with Gaussian observation noise: every observation, the first one
    included, is ``clip((x, theta) + noise_sigma * N(0, I), -high, high)`` with
    ``high = (4.8, 24°)`` (popgym's observation space). The noise touches the observation
    only, never the physics. ``noise_sigma``: Easy 0.1, Medium 0.2, Hard 0.3;
    ``max_episode_length`` is 200 at every difficulty (popgym only changes the noise).
    The alias ``NoisyStatelessCartPole`` is the Easy task.
    """

    task: ClassVar[str] = "NoisyPositionOnlyCartPole"
    difficulty: str = eqx.field(static=True)
    max_episode_length: int = eqx.field(static=True)
    noise_sigma: float = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.max_episode_length = _NOISY_EPISODE_LENGTH
        self.noise_sigma = difficulty_config(self.task, difficulty, _NOISE_SIGMA)

    def observe(
        self, key: PRNGKey, physics: Float[Array, "4"], *, at_reset: bool
    ) -> Float[Array, "2"]:
        del at_reset
        clean = physics[jnp.array([0, 2])]
        noise = self.noise_sigma * jax.random.normal(key, (2,), physics.dtype)
        high = jnp.array(_POSITION_HIGH, physics.dtype)
        return jnp.clip(clean + noise, -high, high)


register_task(
    "PositionOnlyCartPole",
    PositionOnlyCartPole,
    "CartPole observing (x, theta) only; reward 1/L per step, max return 1",
)
register_task(
    "VelocityOnlyCartpole",
    VelocityOnlyCartPole,
    "CartPole observing (x_dot, theta_dot) only; reward 1/L per step, max return 1",
)
# popgym's class is VelocityOnlyCartPole but its id says "Cartpole": accept both spellings.
register_task(
    "VelocityOnlyCartPole",
    VelocityOnlyCartPole,
    "alias of popgym-VelocityOnlyCartpole<Difficulty>-v0 (popgym's spelling)",
)
register_task(
    "NoisyPositionOnlyCartPole",
    NoisyPositionOnlyCartPole,
    "CartPole observing (x, theta) + Gaussian noise (sigma 0.1/0.2/0.3); max return 1",
)
register(
    EnvSpec(
        "StatelessCartPole",
        "popgym",
        functools.partial(PositionOnlyCartPole, "Easy"),
        "alias of popgym-PositionOnlyCartPoleEasy-v0 (popgym's Easy: 200 steps, max return 1)",
    )
)
register(
    EnvSpec(
        "NoisyStatelessCartPole",
        "popgym",
        functools.partial(NoisyPositionOnlyCartPole, "Easy"),
        "alias of popgym-NoisyPositionOnlyCartPoleEasy-v0 (popgym's Easy: sigma 0.1)",
    )
)
