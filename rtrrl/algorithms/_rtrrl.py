"""RTRRL: the online recurrent actor-critic of Lemmel & Grosu (AAAI 2025)."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._env_axis import env_block, env_shards, gather_envs
from .._types import Array, Float, Int, PRNGKey, PyTree, Scalar
from ..agent import AbstractRewardScale, Agent, AgentParams, ObservationNormalizer, ReturnRMS
from ..cells import AbstractCell
from ..envs import AbstractEnvironment
from ..estimators import AbstractGradientEstimator, key_argument
from ..heads import AbstractActor, AbstractFeedback, Backprop, Critic
from ..traces import AbstractTrace, AccumulatingTrace
from . import _rtrrl_phases as phases
from ._abstract import AbstractAlgorithm, StepMetrics
from ._rtrrl_checks import check_parts_fit, check_ranges, check_types
from ._rtrrl_diagnostics import rtrrl_diagnostics
from ._rtrrl_optimizer import apply_optimizer, init_optimizer, trainable
from ._rtrrl_state import EnvCarry, RTRRLState


class RTRRL(AbstractAlgorithm):
    """Real-time recurrent reinforcement learning: online TD(λ) actor-critic on an RNN.

    One step per environment (Lemmel & Grosu 2025, Algorithm 1), with features
    ``y = cell.output(h)``:

    1. ``x_t = [o_t, a_{t-1}, r_t]`` (Meta-RL input; ``x_t = o_t`` if ``meta_rl=False``), where
       ``o_t`` is normalised by running statistics (``observation_norm``), ``a_{t-1}`` is the
       action the environment executed (clipped into its box for continuous actions) and
       ``r_t`` the scaled reward; ``h_t, Ĵ_t = estimator.step(cell, h_{t-1}, x_t, Ĵ_{t-1})``.
    2. ``a_t ~ π(·|y_t)``, ``v_t = v̂(y_t)``; the environment returns ``o_{t+1}, r_{t+1}``.
    3. ``h_{t+1} = cell(h_t, x_{t+1})`` from the observation the step produced (before any
       automatic reset, so a time-limit cut bootstraps), ``v_{t+1} = v̂(y_{t+1})`` and
       ``δ = r_{t+1} - r̄ + γ (1 - terminated) v_{t+1} - v_t``.
    4. Traces, all decaying by ``γλ`` and reset at episode ends:
       ``e_C ← γλ_C e_C + ∇v̂`` (or the dutch trace), ``e_A ← γλ_A e_A + ∇ log π(a_t)``,
       ``e_R ← γλ_R e_R + Ĵ_tᵀ (η_C g_C + η_A g_A)`` where ``g = Mᵀ e`` carries each head's
       output error ``e`` to the features through the feedback mode's matrix ``M``. The
       three new terms are first clipped together to global norm ``max_grad_norm``. Each
       trace is an `AbstractTrace` (``critic_trace``, ``actor_trace``, ``cell_trace``).
    5. Ascent directions ``δ e_C``, ``δ e_A + η_H ∇H``, ``δ e_R + η_H Ĵ_tᵀ g_H``, averaged over
       the environments and handed (negated) to the optimiser: one update per step.

    `step` runs these as named phases (``rtrrl/algorithms/_rtrrl_phases.py``); `agent` holds
    the input pipeline, the heads and the evaluation that RTRRL shares with `PPO`.

    **Arguments:**

    - ``cell``: an `AbstractCell` whose ``input_size`` is `input_size(env)`;
      `rtrrl.cells.Identity` gives linear TD(λ) on the raw input.
    - ``estimator``: an `AbstractGradientEstimator` (`RFLO()`, `RTRL()`, ...) that can serve
      ``cell`` (checked here); `rtrrl.estimators.Frozen()` never trains the cell (the
      echo-state ablation: only the heads learn).
    - ``feedback``: `Backprop()` (default) or `FeedbackAlignment(key=...)`.
    - ``critic_trace``: `AccumulatingTrace()` (default) or `DutchTrace()`. The dutch trace is
      exactly true-online TD(λ) only under SGD at ``lr_critic`` with ``max_grad_norm=None``
      (with clipping, the clipped gradient stands in for the feature vector).
    - ``actor_trace``, ``cell_trace``: the traces of the actor and the cell
      (`AccumulatingTrace()`, the default; any `AbstractTrace` whose direction does not use
      the value arguments, which are zero for them).
    - ``gamma``, ``lambda_actor``, ``lambda_critic``, ``lambda_cell``: in [0, 1].
    - ``lr_actor``, ``lr_critic``, ``lr_cell``: Adam step sizes α_A, α_C, α_R (> 0).
    - ``eta_actor``: weight η_A of the actor's error in the recurrent trace (>= 0).
    - ``eta_critic``: weight η_C of the critic's error in the recurrent trace (>= 0; the paper
      has 1, and 0 makes the cell learn from the actor alone).
    - ``eta_entropy``: entropy regularisation η_H (>= 0).
    - ``max_grad_norm``: clip the global norm of each step's gradient (per environment)
      before it enters the traces (> 0; ``None`` disables; default 1.0, the paper's value).
      The clipped quantity is ``g_t = (∇v̂, ∇ log π(a_t), Ĵ_tᵀ(η_C g_C + η_A g_A))`` over all
      parameters together, scaled by ``min(1, max_grad_norm / ‖g_t‖)``. The TD error still
      scales the traces' sum, so a correct value function stays a fixed point. (Clipping the
      δ-scaled direction instead turns TD into sign-TD and failed CartPole: docs/results.md,
      "Deviations from the paper".)
    - ``optimizer``: an optax transformation to use instead of the default (Adam with the
      per-group step sizes above); it receives the descent direction as a PyTree shaped like
      the trainable parameters, and ignores the ``lr_*``. Passing
      ``optax.chain(optax.clip_by_global_norm(1.0), optax.adam(...))`` (with
      ``max_grad_norm=None``) gives the literal "clip the update, then Adam".
    - ``lr_schedule``: a multiplier of all step sizes as a function of the update count
      (default optimiser only; e.g. `rtrrl.agent.LinearDecay`, which the default preset
      uses given the run's length: ``rtrrl.presets.preset("default", total_updates=...)``);
      ``None``: constant steps, as in the paper.
    - ``average_reward``: subtract a learned average reward ``r̄`` (continuing tasks),
      ``r̄ ← r̄ + eta_average_reward · mean(δ)``.
    - ``reward_scale``: how rewards are scaled before learning, from running statistics of the
      discounted return: `ReturnRMS()` (default: by its root mean square), `ReturnStd()` (by
      its standard deviation, the paper's choice) or ``None`` (raw rewards).
    - ``observation_norm``: `ObservationNormalizer()` (default: running mean and variance per
      entry, clipped to ±10) or ``None`` (raw observations, the paper's choice).
    - ``censored_actions``, ``state_dependent_std``: options of the default `GaussianActor`
      built for continuous actions (see there). The defaults, ``True`` and ``False``, give the
      log-probability of the executed (clipped) action and a log-scale that does not read the
      features; the paper's head is ``False`` and ``True``.
    - ``meta_rl``: feed the previous action and reward to the cell.
    - ``actor``, ``critic``: heads to start from; by default built at `init` from the
      environment's action space.
    """

    cell: AbstractCell
    estimator: AbstractGradientEstimator
    feedback: AbstractFeedback = Backprop()
    critic_trace: AbstractTrace = AccumulatingTrace()
    actor_trace: AbstractTrace = AccumulatingTrace()
    cell_trace: AbstractTrace = AccumulatingTrace()
    gamma: float = 0.99
    lambda_actor: float = 0.99
    lambda_critic: float = 0.99
    lambda_cell: float = 0.99
    lr_actor: float = 1e-3
    lr_critic: float = 1e-3
    lr_cell: float = 1e-3
    eta_actor: float = 1.0
    eta_critic: float = 1.0
    eta_entropy: float = 1e-5
    max_grad_norm: float | None = 1.0
    optimizer: optax.GradientTransformation | None = eqx.field(default=None, static=True)
    lr_schedule: Callable[[Int[Array, ""]], Scalar] | None = eqx.field(default=None, static=True)
    average_reward: bool = eqx.field(default=False, static=True)
    eta_average_reward: float = 1e-3
    reward_scale: AbstractRewardScale | None = ReturnRMS()
    observation_norm: ObservationNormalizer | None = ObservationNormalizer()
    censored_actions: bool = eqx.field(default=True, static=True)
    state_dependent_std: bool = eqx.field(default=False, static=True)
    meta_rl: bool = eqx.field(default=True, static=True)
    actor: AbstractActor | None = None
    critic: Critic | None = None

    def __check_init__(self) -> None:
        check_types(self)
        check_ranges(self)
        check_parts_fit(self)

    # ------------------------------------------------------------------ construction

    @property
    def agent(self) -> Agent:
        """The acting side: input pipeline, heads and evaluation (shared with `PPO`)."""
        return Agent(
            meta_rl=self.meta_rl,
            reward_scale=self.reward_scale,
            observation_norm=self.observation_norm,
            censored_actions=self.censored_actions,
            state_dependent_std=self.state_dependent_std,
        )

    def input_size(self, env: AbstractEnvironment) -> int:
        """Size of ``x_t`` in `env`; the cell's ``input_size`` must equal it."""
        return self.agent.input_size(env)

    def init(self, key: PRNGKey, env: AbstractEnvironment, *, num_envs: int = 1) -> RTRRLState:
        """The training state for `num_envs` parallel copies of `env`.

        Raises:
            ValueError: the cell's input size does not match `env`, the actor does not fit its
                action space, or `num_envs` < 1.
        """
        if num_envs < 1:
            raise ValueError(f"RTRRL.init: `num_envs` must be >= 1, got {num_envs}.")
        agent = self.agent
        agent.check_cell(self.cell, env, "RTRRL.init")
        head_key, env_key = jax.random.split(key)
        actor, critic = agent.heads(
            head_key,
            env,
            self.cell.feature_size,
            actor=self.actor,
            critic=self.critic,
            owner="RTRRL",
        )
        params = AgentParams(self.cell, actor, critic)
        opt_state = init_optimizer(self, params)
        obs, env_state = jax.vmap(env.reset)(jax.random.split(env_key, num_envs))
        dtype = obs.dtype

        def carry_for(obs_i, env_state_i):
            prev_action = env.action_space.zero()
            prev_reward = jnp.zeros((), dtype)
            start = jnp.ones((), bool)
            hidden = params.cell.init_hidden()
            x = agent.input(obs_i, prev_action, prev_reward, start, env)
            zero = jnp.zeros((), dtype)
            return EnvCarry(
                env_state_i,
                obs_i,
                prev_action,
                prev_reward,
                start,
                hidden,
                # (A stochastic estimator's first state is drawn again, with its own key, by
                # the first step, which starts the episode: any key will do here.)
                self.estimator.init(
                    params.cell, hidden, x, **key_argument(self.estimator, jax.random.key(0))
                ),
                phases.fresh_traces(self, params),
                previous_value=zero,
                discounted_return=zero,
            )

        return RTRRLState(
            params=params,
            opt_state=opt_state,
            feedback=self.feedback.init(actor, critic),
            envs=jax.vmap(carry_for)(obs, env_state),
            return_stats=agent.init_return_stats(dtype),
            average_reward=jnp.zeros((), dtype),
            iteration=jnp.zeros((), jnp.int32),
            observation_stats=agent.init_observation_stats(env, dtype),
        )

    def env_leaves(self, state: RTRRLState) -> PyTree[bool]:
        """The per-environment leaves: those of ``state.envs`` (every `EnvCarry`)."""
        mask = jax.tree.map(lambda _: False, state)
        return eqx.tree_at(lambda s: s.envs, mask, jax.tree.map(lambda _: True, state.envs))

    # ------------------------------------------------------------------ one step

    def step(
        self, state: RTRRLState, env: AbstractEnvironment, key: PRNGKey
    ) -> tuple[RTRRLState, StepMetrics]:
        """One online step in every environment, then one optimiser update.

        Arguments:
            state: from `init` (or a previous `step`).
            env: the environment `state` was initialised with.
            key: a fresh key for this step (split here per environment).

        Returns:
            ``(next_state, metrics)``.
        """
        params, agent = state.params, self.agent
        # With the environments split over devices (`rtrrl._env_axis`), `state.envs` holds
        # this device's block; every combination over environments below gathers them all.
        num_envs = state.envs.obs.shape[0] * env_shards()
        act_keys, env_keys = env_block(jnp.split(jax.random.split(key, 2 * num_envs), 2))
        # This step's observations enter the statistics before they are read.
        observation_stats = agent.update_observation_stats(
            state.observation_stats, gather_envs(state.envs.obs)
        )

        def act_and_step(carry: EnvCarry, act_key: PRNGKey, env_key: PRNGKey):
            acted = phases.act(self, params, observation_stats, env, carry, act_key)
            return acted, phases.step_environment(env, carry, acted, env_key)

        acted, (obs, env_state, reward, done, info) = jax.vmap(act_and_step)(
            state.envs, act_keys, env_keys
        )
        # Shared reward scale: the discounted returns of all environments update one statistic.
        returns, rewards, terminated = gather_envs(
            (state.envs.discounted_return, reward, info.terminated)
        )
        all_reward, return_stats, all_discounted = agent.scale_rewards(
            state.return_stats, returns, rewards, terminated, self.gamma
        )
        reward, discounted = env_block((all_reward, all_discounted))
        matrices = self.feedback.matrices(state.feedback, params.actor, params.critic)

        entropy_in_batch = phases.entropy_over_batch(self, params, num_envs)

        def learn(carry: EnvCarry, acted, reward, info):
            return phases.learn(
                self, params, observation_stats, matrices, env, state.average_reward,
                carry, acted, reward, info, entropy_in_batch=entropy_in_batch,
            )  # fmt: skip

        learned = jax.vmap(learn)(state.envs, acted, reward, info)
        entropy_terms = None  # (Ĵ_t, g_H) of every environment, for the estimator's batch mean
        if learned.entropy_cotangent is not None:
            entropy_terms = gather_envs((acted.estimator, learned.entropy_cotangent))
        descent = phases.descent(
            self, params, gather_envs(learned.directions), *(entropy_terms or ())
        )
        new_params, opt_state = apply_optimizer(self, params, descent, state.opt_state)
        td_error = gather_envs(learned.td_error)
        average_reward = state.average_reward
        if self.average_reward:
            average_reward = average_reward + self.eta_average_reward * jnp.mean(td_error)

        def next_carry(carry, acted, learned, env_state, obs, reward, done, discounted):
            return phases.next_carry(
                self, new_params, env, carry, acted, learned, env_state, obs, reward, done,
                discounted,
            )  # fmt: skip

        envs = jax.vmap(next_carry)(
            state.envs, acted, learned, env_state, obs, reward, done, discounted
        )
        metrics = _step_metrics(td_error, new_params, *gather_envs((done, info.episode_return)))
        new_state = RTRRLState(
            params=new_params,
            opt_state=opt_state,
            feedback=state.feedback,
            envs=envs,
            return_stats=return_stats,
            average_reward=average_reward,
            iteration=state.iteration + 1,
            observation_stats=observation_stats,
        )
        return new_state, metrics

    # ------------------------------------------------------------------ monitoring

    def diagnostics(
        self, state: RTRRLState, env: AbstractEnvironment, key: PRNGKey
    ) -> dict[str, Scalar]:
        """Statistics of the learner at this point of training.

        - ``saturated``, ``value``, ``entropy``: means over a probe rollout of the current
          policy (no learning; 4 fresh environments, 256 steps) of the fraction of features
          with ``|y| > 0.99`` (for a CTRNN, neurons whose ``tanh`` is saturated, where no
          gradient passes), of the critic's value and of the policy's entropy;
        - ``tau_min``, ``tau_max``: range of the time constants (cells with ``tau``);
        - ``reward_scale``: the divisor of the rewards;
        - ``norm_cell``, ``norm_actor``, ``norm_critic``: norms of the parameters, and
          ``norm_cell.<leaf>`` of each of the cell's (``norm_cell.weight``, ...);
        - ``trace_norm_cell``: norm of the cell's eligibility trace ``e_R``;
          ``estimator_norm``: norm of the estimator's state (e.g. RFLO's ``Ĵ``);
        - with the default optimiser, per group (cell, actor, critic): ``direction_norm_*``,
          Adam's running root-mean-square of the ascent direction's norm (``sqrt(Σ v̂)``, about
          the last 1000 steps), and ``step_*``, the mean absolute parameter change of one step
          (``α |m̂| / (sqrt(v̂) + ε)``).
        """
        return rtrrl_diagnostics(self, state, env, key)

    # ------------------------------------------------------------------ evaluation

    def evaluate(
        self,
        state: RTRRLState,
        env: AbstractEnvironment,
        key: PRNGKey,
        *,
        num_envs: int,
        num_steps: int,
        greedy: bool = False,
    ) -> Float[Array, " num_envs"]:
        """Returns of one episode in each of `num_envs` fresh environments, without learning.

        The agent sees exactly the training input pipeline (same Meta-RL input and the same,
        now frozen, reward scale and observation statistics), so train and evaluation returns
        are comparable.
        """
        return self.agent.evaluate(
            state.params,
            state.return_stats,
            state.observation_stats,
            env,
            key,
            num_envs=num_envs,
            num_steps=num_steps,
            greedy=greedy,
        )


def _step_metrics(td_error, params: AgentParams, done, episode_return) -> StepMetrics:
    """Batch summaries of one step: mean δ², finished episodes, their returns, finiteness."""
    leaves = jax.tree.leaves(trainable(params))
    all_finite = jnp.all(jnp.isfinite(td_error)) & jnp.all(
        jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves])
    )
    return StepMetrics(
        td_error_sq=jnp.mean(td_error**2),
        episodes_finished=jnp.sum(done, dtype=jnp.int32),
        return_sum=jnp.sum(jnp.where(done, episode_return, 0.0)),
        all_finite=all_finite,
    )
