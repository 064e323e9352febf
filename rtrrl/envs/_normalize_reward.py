"""Running reward normalisation (the scale of the discounted return)."""

from typing import Any

import equinox as eqx
import jax.numpy as jnp

from .._types import Array, Bool, Float, PRNGKey, PyTree
from ._base import AbstractEnvironment, StepInfo, default_float
from ._running_stats import RunningMeanStd
from ._wrapper import AbstractWrapper


class NormalizeRewardState(eqx.Module):
    """State of `NormalizeReward`: the wrapped state, the statistics, the running return."""

    inner: PyTree[Any]
    stats: RunningMeanStd
    discounted_return: Float[Array, ""]


class NormalizeReward(AbstractWrapper):
    """Divide each reward by the running standard deviation of the discounted return.

    With ``G_t = γ G_{t-1} (1 - terminated_{t-1}) + r_t`` (never reset at a time-limit cut),

        r̃_t = r_t / sqrt(Var[G] + ε),

    where ``Var[G]`` is the running variance (`RunningMeanStd`) of every ``G`` seen so far,
    this step's included. This is the reward scaling of OpenAI baselines' ``VecNormalize``
    used by most PPO implementations (without its clipping), and of
    ``gymnasium.wrappers.NormalizeReward`` except that gymnasium drops ``G`` *at* a terminal
    step rather than after it. The tests check it against a NumPy transcription of this rule
    on top of gymnasium's own ``RunningMeanStd``.

    Why the return and not the reward, and why no mean subtraction: the critic learns values
    of the size of ``G``, so scaling by the spread of ``G`` keeps TD errors of order one
    whatever the task's reward scale or horizon; and a positive rescaling leaves the optimal
    policy unchanged, whereas subtracting a mean would change it in episodic tasks (a +1
    per surviving step in CartPole would become ~0, and terminating early would no longer be
    penalised).

    `info.episode_return` keeps reporting the *raw* return, for logging. The statistics live
    in the environment state, so under `VectorEnv` each environment keeps its own.

    **Arguments:**

    - `env`: the environment to wrap.
    - `gamma`: discount of the running return (use the learner's ``γ``).
    - `epsilon`: added to the variance before the square root.
    """

    env: AbstractEnvironment
    gamma: float = eqx.field(static=True, default=0.99)
    epsilon: float = eqx.field(static=True, default=1e-8)

    def __check_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"NormalizeReward(gamma={self.gamma}): need 0 <= gamma <= 1.")
        if not self.epsilon > 0.0:
            raise ValueError(f"NormalizeReward(epsilon={self.epsilon}): need epsilon > 0.")

    def reset(self, key: PRNGKey) -> tuple[Float[Array, " obs"], NormalizeRewardState]:
        obs, inner = self.env.reset(key)
        dtype = default_float()
        return obs, NormalizeRewardState(inner, RunningMeanStd(dtype=dtype), jnp.zeros((), dtype))

    def step(
        self, key: PRNGKey, state: NormalizeRewardState, action: Array
    ) -> tuple[
        Float[Array, " obs"], NormalizeRewardState, Float[Array, ""], Bool[Array, ""], StepInfo
    ]:
        obs, inner, reward, done, info = self.env.step(key, state.inner, action)
        discounted_return = state.discounted_return * self.gamma + reward
        stats = state.stats.update_one(discounted_return)
        scaled = reward / stats.std(self.epsilon)
        # The running return restarts after a terminal state only (as gymnasium does): a
        # time-limit cut does not end the task the return describes.
        next_return = jnp.where(
            info.terminated, jnp.zeros_like(discounted_return), discounted_return
        )
        return obs, NormalizeRewardState(inner, stats, next_return), scaled, done, info
