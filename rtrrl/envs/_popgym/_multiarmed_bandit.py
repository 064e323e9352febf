"""POPGym MultiarmedBandit: find and exploit the best of a fresh set of Bernoulli arms."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ..._types import Array, Bool, Float, Int, PRNGKey
from .._base import AbstractEpisodicEnvironment, default_float
from .._spaces import Discrete
from ._common import difficulty_config, discrete_action, one_hot_concat, popgym_id, register_task

# difficulty -> (number of arms, episode length), as in popgym.envs.multiarmed_bandit.
_CONFIG = {"Easy": (10, 200), "Medium": (20, 400), "Hard": (30, 600)}


class MultiarmedBanditState(eqx.Module):
    """One episode of `MultiarmedBandit`.

    - ``bandits``: each arm's payout probability, drawn uniformly in ``[0, 1)`` at reset.
    - ``step``: steps taken in this episode.
    """

    bandits: Float[Array, " arms"]
    step: Int[Array, ""]


class MultiarmedBandit(AbstractEpisodicEnvironment):
    """JAX port of POPGym's ``MultiarmedBandit`` (Morad et al., ICLR 2023; ``popgym`` 1.0.7).

    Each episode draws new payout probabilities ``p_i ~ U[0, 1)`` for its arms. Pulling arm
    ``a`` pays out with probability ``p_a``; the agent must explore, then exploit.

    - Observation: whether the last pull paid out (0 before the first pull), one-hot, size 2.
      popgym flags this task ``obs_requires_prev_action``: feed the previous action too (the
      Meta-RL input does).
    - Action: ``Discrete(arms)``, the arm to pull.
    - Reward: ``+1/L`` on a payout, ``-1/L`` otherwise, so returns lie in ``[-1, 1]``.
    - Episode: a time limit only: *truncated* after ``L`` steps, never terminated.

    Difficulties (arms, L): Easy (10, 200), Medium (20, 400), Hard (30, 600).
    """

    difficulty: str = eqx.field(static=True)
    num_bandits: int = eqx.field(static=True)
    episode_length: int = eqx.field(static=True)

    def __init__(self, difficulty: str = "Easy"):
        self.difficulty = difficulty
        self.num_bandits, self.episode_length = difficulty_config(
            "MultiarmedBandit", difficulty, _CONFIG
        )

    @property
    def name(self) -> str:
        return popgym_id("MultiarmedBandit", self.difficulty)

    @property
    def observation_size(self) -> int:
        return 2

    @property
    def action_space(self) -> Discrete:
        return Discrete(self.num_bandits)

    def reset_episode(self, key: PRNGKey) -> tuple[Float[Array, " obs"], MultiarmedBanditState]:
        bandits = jax.random.uniform(key, (self.num_bandits,), default_float())
        obs = one_hot_concat(jnp.zeros((1,), jnp.int32), [2])
        return obs, MultiarmedBanditState(bandits, jnp.zeros((), jnp.int32))

    def step_episode(
        self, key: PRNGKey, inner: MultiarmedBanditState, action: Int[ArrayLike, ""]
    ) -> tuple[
        Float[Array, " obs"],
        MultiarmedBanditState,
        Float[Array, ""],
        Bool[Array, ""],
        Bool[Array, ""],
    ]:
        # popgym pays out when a uniform draw in [0, 1) falls below the arm's probability.
        draw = jax.random.uniform(key, (), default_float())
        paid = draw < inner.bandits[discrete_action(action)]
        scale = 1.0 / self.episode_length
        reward = jnp.where(paid, scale, -scale)
        obs = one_hot_concat(paid.astype(jnp.int32)[None], [2])
        truncated = inner.step >= self.episode_length - 1
        new = MultiarmedBanditState(inner.bandits, inner.step + 1)
        return obs, new, reward, jnp.asarray(False), truncated


register_task(
    "MultiarmedBandit",
    MultiarmedBandit,
    "episodic Bernoulli bandit, new arms each episode (payout one-hot obs)",
)
