"""POPGym's partially observable Pendulum tasks: position only and noisy position only.

Both wrap gymnasium's ``PendulumEnv`` (gymnasium's ``classic_control/pendulum.py``) in
``popgym`` 1.0.7 (Morad et al., "POPGym: Benchmarking Partially Observable Reinforcement
Learning", ICLR 2023): the agent sees ``(cos theta, sin theta)`` but not the angular velocity.
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment, default_float
from .._spaces import Box
from ._common import difficulty_config, popgym_id, register_task

# gymnasium PendulumEnv constants (default g = 10).
_MAX_SPEED = 8.0
_MAX_TORQUE = 2.0
_DT = 0.05
_GRAVITY = 10.0
_MASS = 1.0
_LENGTH = 1.0
# Largest cost: pi^2 + 0.1 * 8^2 + 0.001 * 2^2; popgym maps [-16.2736044, 0] onto [-1, 1].
_MIN_REWARD = -16.2736044
_HALF_REWARD_RANGE = (0.0 - _MIN_REWARD) / 2

# difficulty -> max_episode_length of PositionOnlyPendulum{Easy,Medium,Hard}.
_EPISODE_LENGTH = {"Easy": 200, "Medium": 150, "Hard": 100}
# difficulty -> noise_sigma of NoisyPositionOnlyPendulum; its episode length stays at 200.
_NOISE_SIGMA = {"Easy": 0.1, "Medium": 0.2, "Hard": 0.3}
_NOISY_EPISODE_LENGTH = 200


def _angle_normalize(theta: Float[Array, ""]) -> Float[Array, ""]:
    return jnp.mod(theta + jnp.pi, 2 * jnp.pi) - jnp.pi


def pendulum_dynamics(
    physics: Float[Array, "2"], torque: Float[Array, ""]
) -> tuple[Float[Array, "2"], Float[Array, ""]]:
    """One step of gymnasium's pendulum (semi-implicit Euler, ``dt = 0.05``).

    Arguments:
        physics: ``(theta, theta_dot)``, gymnasium's ``PendulumEnv.state`` order; ``theta = 0``
            is upright.
        torque: the applied torque, clipped to ``[-2, 2]`` here as gymnasium does.

    Returns:
        ``(next_physics, cost)`` with gymnasium's cost
        ``angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 torque^2`` of the *current* state.
    """
    theta, theta_dot = physics
    torque = jnp.clip(torque, -_MAX_TORQUE, _MAX_TORQUE)
    cost = _angle_normalize(theta) ** 2 + 0.1 * theta_dot**2 + 0.001 * torque**2
    new_theta_dot = (
        theta_dot
        + (3 * _GRAVITY / (2 * _LENGTH) * jnp.sin(theta) + 3.0 / (_MASS * _LENGTH**2) * torque)
        * _DT
    )
    new_theta_dot = jnp.clip(new_theta_dot, -_MAX_SPEED, _MAX_SPEED)
    # The angle advances with the *new* velocity and is not wrapped (the cost wraps it).
    new_theta = theta + new_theta_dot * _DT
    return jnp.stack([new_theta, new_theta_dot]), cost


class PendulumState(eqx.Module):
    """One episode of a POPGym Pendulum variant.

    - ``physics``: ``(theta, theta_dot)``, gymnasium's ``PendulumEnv.state`` order.
    - ``num_steps``: steps taken in this episode (popgym's ``num_steps``).
    """

    physics: Float[Array, "2"]
    num_steps: Int[Array, ""]


class AbstractPopGymPendulum(AbstractEpisodicEnvironment):
    """Shared episode logic of the POPGym Pendulum variants; subclasses choose the observation.

    - Start: ``theta`` uniform in ``[-pi, pi)``, ``theta_dot`` uniform in ``[-1, 1)``.
    - Action: ``Box(-2, 2)`` of shape ``(1,)``, the torque (clipped to the bounds, as gymnasium).
    - Reward: gymnasium's ``-cost`` in ``[-16.27, 0]`` mapped linearly onto ``[-1, 1]`` and
      divided by ``max_episode_length`` (popgym's ``reward_transform``), so returns lie in
      ``[-1, 1]``.
    - Episode: never terminates; *truncated* after ``max_episode_length`` steps.
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
    def action_space(self) -> Box:
        return Box((-_MAX_TORQUE,), (_MAX_TORQUE,))

    @abc.abstractmethod
    def observe(self, key: PRNGKey, physics: Float[Array, "2"]) -> Float[Array, "2"]:
        """The observation of `physics`."""

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, "2"], PendulumState]:
        key_start, key_obs = jax.random.split(key)
        high = jnp.array([jnp.pi, 1.0], default_float())
        physics = jax.random.uniform(key_start, (2,), default_float(), minval=-high, maxval=high)
        state = PendulumState(physics, jnp.zeros((), jnp.int32))
        return self.observe(key_obs, physics), state

    def step_episode(
        self, key: PRNGKey, inner: PendulumState, action: Float[Array, "1"]
    ) -> tuple[
        Float[Array, "2"], PendulumState, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]
    ]:
        dtype = inner.physics.dtype
        physics, cost = pendulum_dynamics(inner.physics, action[0].astype(dtype))
        # popgym's reward_transform: shift/scale [-16.27, 0] onto [-1, 1], then spread the
        # episode's worth over max_episode_length steps.
        reward = (-cost + _HALF_REWARD_RANGE) / _HALF_REWARD_RANGE / self.max_episode_length
        num_steps = inner.num_steps + 1
        terminated = jnp.zeros((), bool)
        truncated = num_steps >= self.max_episode_length
        obs = self.observe(key, physics)
        return obs, PendulumState(physics, num_steps), reward, terminated, truncated


def _cos_sin(physics: Float[Array, "2"]) -> Float[Array, "2"]:
    theta = physics[0]
    return jnp.stack([jnp.cos(theta), jnp.sin(theta)])


class PositionOnlyPendulum(AbstractPopGymPendulum):
    """JAX port of POPGym's ``PositionOnlyPendulum`` (popgym 1.0.7, Morad et al. ICLR 2023).

    Swing up and hold a pendulum seeing only its angle as ``(cos theta, sin theta)``, two floats
    (gymnasium's observation without ``theta_dot``). Reward, start and episode rules are those
    of `AbstractPopGymPendulum`. ``max_episode_length``: Easy 200, Medium 150, Hard 100.
    """

    task: ClassVar[str] = "PositionOnlyPendulum"
    difficulty: str = eqx.field(static=True)
    max_episode_length: int = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.max_episode_length = difficulty_config(self.task, difficulty, _EPISODE_LENGTH)

    def observe(self, key: PRNGKey, physics: Float[Array, "2"]) -> Float[Array, "2"]:
        del key
        return _cos_sin(physics)


class NoisyPositionOnlyPendulum(AbstractPopGymPendulum):
    """JAX port of POPGym's ``NoisyPositionOnlyPendulum`` (popgym 1.0.7, Morad et al. 2023).

    `PositionOnlyPendulum` with Gaussian observation noise: every observation, the first one
    included, is ``clip((cos theta, sin theta) + noise_sigma * N(0, I), -1, 1)``. The noise
    touches the observation only. ``noise_sigma``: Easy 0.1, Medium 0.2, Hard 0.3;
    ``max_episode_length`` is 200 at every difficulty (popgym only changes the noise).
    """

    task: ClassVar[str] = "NoisyPositionOnlyPendulum"
    difficulty: str = eqx.field(static=True)
    max_episode_length: int = eqx.field(static=True)
    noise_sigma: float = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.max_episode_length = _NOISY_EPISODE_LENGTH
        self.noise_sigma = difficulty_config(self.task, difficulty, _NOISE_SIGMA)

    def observe(self, key: PRNGKey, physics: Float[Array, "2"]) -> Float[Array, "2"]:
        noise = self.noise_sigma * jax.random.normal(key, (2,), physics.dtype)
        return jnp.clip(_cos_sin(physics) + noise, -1.0, 1.0)


register_task(
    "PositionOnlyPendulum",
    PositionOnlyPendulum,
    "Pendulum observing (cos, sin) of the angle only; returns in [-1, 1]",
)
register_task(
    "NoisyPositionOnlyPendulum",
    NoisyPositionOnlyPendulum,
    "Pendulum observing noisy (cos, sin) (sigma 0.1/0.2/0.3); returns in [-1, 1]",
)
