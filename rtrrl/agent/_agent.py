"""The agent both learners train: its input pipeline, its heads, its policy and evaluation.

A learner (`rtrrl.RTRRL`, `rtrrl.PPO`) decides *how* the parameters change; the `Agent` says
*what* acts: the cell reads ``x_t`` (the Meta-RL input built from normalised observations and
scaled rewards), a linear actor and a linear critic read the cell's features, and the actor's
sample becomes the environment's action. Keeping this in one place means the two learners
see the same inputs and are evaluated by the same rollout.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from .._types import Array, Bool, Float, Hidden, PRNGKey, Scalar
from ..cells import AbstractCell
from ..envs import (
    AbstractEnvironment,
    Box,
    Discrete,
    RunningMeanStd,
    meta_rl_input,
    meta_rl_input_size,
)
from ..heads import AbstractActor, CategoricalActor, Critic, GaussianActor
from ._normalization import AbstractRewardScale, ObservationNormalizer, ReturnRMS
from ._params import AgentParams
from ._rollout import Policy, first_episode_returns

# The return statistics that scale rewards start from one pseudo-sample of mean 0 and
# variance 1, so that the first steps (one sample has no spread) are not blown up.
_RETURN_PRIOR_COUNT = 1.0


class Agent(eqx.Module):
    """The acting side of a learner: inputs, heads, actions and evaluation.

    With cell parameters θ, features ``y_t = cell.output(h_t)`` and the learner's statistics:

    - input: ``x_t = [ō_t, a_{t-1}, r̃_t]`` (Meta-RL input; ``x_t = ō_t`` without it), where
      ``ō_t`` is the observation normalised by running statistics (``observation_norm``),
      ``a_{t-1}`` the action the environment executed and ``r̃_t = r_t / c`` the reward
      divided by the scale ``c`` of ``reward_scale``;
    - heads: ``π(·|y_t)`` (categorical for discrete actions, Gaussian for boxes) and
      ``v̂(y_t) = wᵀ y_t + b``;
    - action: a Gaussian sample is clipped into the action box before the environment (and the
      next Meta-RL input) receives it.

    **Arguments:**

    - ``meta_rl``: feed the previous action and reward to the cell.
    - ``reward_scale``: an `AbstractRewardScale` (`ReturnRMS`, `ReturnStd`) or ``None`` (raw
      rewards).
    - ``observation_norm``: an `ObservationNormalizer` or ``None`` (raw observations).
    - ``censored_actions``, ``state_dependent_std``: options of the `GaussianActor` built for
      continuous actions (see there).
    """

    meta_rl: bool = eqx.field(default=True, static=True)
    reward_scale: AbstractRewardScale | None = ReturnRMS()
    observation_norm: ObservationNormalizer | None = ObservationNormalizer()
    censored_actions: bool = eqx.field(default=True, static=True)
    state_dependent_std: bool = eqx.field(default=False, static=True)

    # ------------------------------------------------------------------ construction

    def input_size(self, env: AbstractEnvironment) -> int:
        """Size of ``x_t`` in `env`; the cell's ``input_size`` must equal it."""
        return meta_rl_input_size(env) if self.meta_rl else env.observation_size

    def check_cell(self, cell: AbstractCell, env: AbstractEnvironment, owner: str) -> None:
        """Raise a `ValueError` (prefixed by `owner`) if `cell` cannot read `env`'s input."""
        expected = self.input_size(env)
        if cell.input_size != expected:
            what = (
                "observation, previous action, previous reward" if self.meta_rl else "observation"
            )
            raise ValueError(
                f"{owner}: the cell reads {cell.input_size} inputs but {env.name} gives "
                f"{expected} ({what}). Build the cell with input_size={expected}."
            )

    def heads(
        self,
        key: PRNGKey,
        env: AbstractEnvironment,
        feature_size: int,
        *,
        actor: AbstractActor | None = None,
        critic: Critic | None = None,
        owner: str = "Agent",
    ) -> tuple[AbstractActor, Critic]:
        """The actor and critic reading `feature_size` features: `actor` and `critic` if
        given (checked against `env`'s action space), else new heads drawn from `key`."""
        actor_key, critic_key = jax.random.split(key)
        space = env.action_space
        if actor is None:
            if isinstance(space, Discrete):
                actor = CategoricalActor(feature_size, space.n, key=actor_key)
            else:
                actor = GaussianActor(
                    feature_size,
                    space.low,
                    space.high,
                    key=actor_key,
                    state_dependent_std=self.state_dependent_std,
                    censored=self.censored_actions,
                )
        _check_actor_fits(actor, env, owner)
        if critic is None:
            critic = Critic(feature_size, key=critic_key)
        return actor, critic

    def init_return_stats(self, dtype: DTypeLike | None) -> RunningMeanStd:
        """Statistics of the discounted return, from one pseudo-sample of mean 0, variance 1."""
        return RunningMeanStd(initial_count=_RETURN_PRIOR_COUNT, dtype=dtype)

    def init_observation_stats(
        self, env: AbstractEnvironment, dtype: DTypeLike | None
    ) -> RunningMeanStd | None:
        """Fresh observation statistics (``None`` without ``observation_norm``)."""
        if self.observation_norm is None:
            return None
        return self.observation_norm.init(env.observation_size, dtype)

    # ------------------------------------------------------------------ the input pipeline

    def reward_divisor(self, return_stats: RunningMeanStd) -> Scalar | float:
        """The scale ``c`` rewards are divided by (1 without ``reward_scale``)."""
        return 1.0 if self.reward_scale is None else self.reward_scale.divisor(return_stats)

    def scale_rewards(
        self,
        return_stats: RunningMeanStd,
        discounted_return: Float[Array, " envs"],
        reward: Float[Array, " envs"],
        terminated: Array,
        gamma: float,
    ) -> tuple[Float[Array, " envs"], RunningMeanStd, Float[Array, " envs"]]:
        """One step of the shared reward scale over a batch of environments.

        ``G ← γ G + r`` per environment; all of them update one statistic, which then scales
        this step's rewards; ``G`` restarts after a terminal state.

        **Returns:** ``(scaled rewards, return_stats, G)``.
        """
        discounted = discounted_return * gamma + reward
        if self.reward_scale is not None:
            return_stats = return_stats.update(discounted)
            reward = reward / self.reward_divisor(return_stats)
        discounted = jnp.where(terminated, jnp.zeros_like(discounted), discounted)
        return reward, return_stats, discounted

    def update_observation_stats(
        self, stats: RunningMeanStd | None, observations: Float[Array, "envs obs"]
    ) -> RunningMeanStd | None:
        """`stats` with this step's observations merged in (before they are read)."""
        if self.observation_norm is None:
            return stats
        assert stats is not None, "observation statistics are kept when observations are normalised"
        return self.observation_norm.update(stats, observations)

    def observation(
        self, stats: RunningMeanStd | None, obs: Float[Array, " obs"]
    ) -> Float[Array, " obs"]:
        """``ō_t``: `obs` normalised by `stats`, or raw."""
        if self.observation_norm is None:
            return obs
        assert stats is not None, "observation statistics are kept when observations are normalised"
        return self.observation_norm(stats, obs)

    def input(
        self,
        obs: Float[Array, " obs"],
        prev_action: Array,
        prev_reward: Float[Array, ""] | float,
        episode_start: Bool[Array, ""] | bool,
        env: AbstractEnvironment,
    ) -> Float[Array, " input"]:
        """``x_t``: the Meta-RL input ``[o_t, a_{t-1}, r_t]``, or ``o_t`` alone."""
        if not self.meta_rl:
            return obs
        return meta_rl_input(
            obs, prev_action, prev_reward, env.action_space, episode_start=episode_start
        )

    @staticmethod
    def env_action(actor: AbstractActor, action: Array) -> Array:
        """The action the environment executes (and the Meta-RL input reads next step)."""
        return actor.clip_action(action) if isinstance(actor, GaussianActor) else action

    # ------------------------------------------------------------------ acting without learning

    def policy(
        self,
        params: AgentParams,
        return_stats: RunningMeanStd,
        observation_stats: RunningMeanStd | None,
        env: AbstractEnvironment,
        *,
        greedy: bool,
    ) -> Policy:
        """The acting policy of `params` without learning, in
        `first_episode_returns`' form: the training input pipeline with its
        statistics frozen; memory ``(h, a_{t-1})``."""

        def act(memory, obs, raw_reward, is_first, key):
            hidden, prev_action = memory
            hidden = jnp.where(is_first, params.cell.init_hidden(), hidden)
            reward = raw_reward / self.reward_divisor(return_stats)
            x = self.input(
                self.observation(observation_stats, obs), prev_action, reward, is_first, env
            )
            hidden = params.cell(hidden, x)
            z = params.actor.preactivation(params.cell.output(hidden))
            actor = params.actor
            action = actor.mode_from(z) if greedy else actor.sample_from(z, key=key)
            executed = self.env_action(params.actor, action)
            return executed, (hidden, executed)

        return act

    def initial_memory(self, params: AgentParams, env: AbstractEnvironment) -> tuple[Hidden, Array]:
        """The policy's memory before an episode: ``(h_0, zero action)``."""
        return params.cell.init_hidden(), env.action_space.zero()

    def evaluate(
        self,
        params: AgentParams,
        return_stats: RunningMeanStd,
        observation_stats: RunningMeanStd | None,
        env: AbstractEnvironment,
        key: PRNGKey,
        *,
        num_envs: int,
        num_steps: int,
        greedy: bool = False,
    ) -> Float[Array, " num_envs"]:
        """Returns of one episode in each of `num_envs` fresh environments, without learning.

        The agent sees exactly the training input pipeline (same Meta-RL input, same frozen
        reward scale and observation statistics), so train and evaluation returns compare.
        """
        policy = self.policy(params, return_stats, observation_stats, env, greedy=greedy)
        memory = self.initial_memory(params, env)
        return first_episode_returns(
            env, policy, memory, key, num_envs=num_envs, num_steps=num_steps
        )


def _check_actor_fits(actor: AbstractActor, env: AbstractEnvironment, owner: str) -> None:
    """Raise a `ValueError` naming `owner` if `actor` cannot act in `env`."""
    space = env.action_space
    if isinstance(actor, CategoricalActor) and not isinstance(space, Discrete):
        raise ValueError(
            f"{owner}: a CategoricalActor cannot act in {env.name}, whose actions are "
            f"continuous ({space}). Use a GaussianActor (or leave `actor=None`)."
        )
    if isinstance(actor, GaussianActor) and not isinstance(space, Box):
        raise ValueError(
            f"{owner}: a GaussianActor cannot act in {env.name}, whose actions are discrete "
            f"({space}). Use a CategoricalActor (or leave `actor=None`)."
        )
    if isinstance(actor, GaussianActor) and len(actor.low) != space.size:
        raise ValueError(
            f"{owner}: the GaussianActor has {len(actor.low)} action dimensions but {env.name} "
            f"has {space.size}."
        )
    if (
        isinstance(actor, CategoricalActor)
        and isinstance(space, Discrete)  # always, by the check above; narrows the type
        and actor.num_actions != space.n
    ):
        raise ValueError(
            f"{owner}: the actor has {actor.num_actions} actions but {env.name} has {space.n}."
        )
