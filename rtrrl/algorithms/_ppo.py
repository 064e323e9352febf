"""Recurrent PPO trained by backpropagation through time: the paper's "PPO (BPTT)" baseline."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._types import Array, Bool, Float, PRNGKey, PyTree, Scalar, Shaped
from ..agent import Agent, AgentParams, ReturnStd
from ..cells import AbstractCell
from ..envs import AbstractEnvironment
from ..heads import AbstractActor, Critic
from ._abstract import AbstractAlgorithm, StepMetrics
from ._ppo_losses import clipped_surrogate_loss, generalized_advantages, value_loss
from ._ppo_rollout import rollout
from ._ppo_state import LossTerms, PPOEnvCarry, PPOState, Segment

# Adam's ε of the common PPO implementations (Huang et al. 2022, "The 37 implementation
# details of PPO"); 1e-8 makes early updates of rarely-excited weights needlessly large.
_ADAM_EPSILON = 1e-5
_ADVANTAGE_EPSILON = 1e-8


def _trainable(tree: PyTree[Any]) -> PyTree[Any]:
    return eqx.filter(tree, eqx.is_inexact_array)


class PPO(AbstractAlgorithm):
    r"""Recurrent PPO with backpropagation through time (Schulman et al. 2017; GAE 2016).

    The paper's "PPO CTRNN (BPTT)" / "PPO-LSTM" baseline, built from the same pieces as
    `RTRRL`: a cell from `rtrrl.cells`, linear actor and critic heads on its features
    ``y = cell.output(h)``, the same Meta-RL input and the same reward scaling.

    One `step` is one PPO iteration over ``num_envs`` environments:

    1. **Rollout** of ``T = rollout_length`` steps per environment with the current
       parameters: ``h_t = cell(h_{t-1} or h_0 at an episode start, x_t)``,
       ``a_t ~ π(·|y_t)``, ``V_t = v̂(y_t)``, and the bootstrap value
       ``V(o_{t+1}) = v̂(output(cell(h_t, x_{t+1})))`` of the observation before any
       automatic reset (a time-limit cut bootstraps, a terminal state does not).
    2. **GAE(γ, λ)** per environment (`generalized_advantages`); targets ``R_t = A_t + V_t``.
    3. **Epochs** of minibatch updates: each epoch shuffles the environments and splits them
       into ``minibatches`` groups, so every sequence stays whole. The loss re-runs the cell
       over the segment from the state stored at its start, resetting at episode starts, so
       its gradient is full BPTT through every episode fragment of the segment:

           L = L^CLIP(ρ, Â) + c_V L^V - c_H E[H(π(·|y_t))],

       with ``Â`` normalised per minibatch (`clipped_surrogate_loss`, `value_loss`). Adam
       (after global-norm clipping) takes one step per minibatch.

    `StepMetrics.td_error_sq` reports the mean squared one-step TD error ``δ_t`` of the
    rollout.

    **Arguments:**

    - ``cell``: an `AbstractCell` whose ``input_size`` is `input_size(env)` (`CTRNN`,
      `LSTM`, `GRU`, `LRU`; `Identity` gives a linear feed-forward policy).
    - ``rollout_length``: steps per environment per iteration (>= 1).
    - ``epochs``: passes over each segment (>= 1).
    - ``minibatches``: minibatches per epoch, split along environments (>= 1; must divide
      ``num_envs``).
    - ``gamma``, ``gae_lambda``: discount and GAE λ, in [0, 1].
    - ``clip_eps``: ε of the clipped surrogate (> 0); also the value clip if ``clip_value``.
    - ``clip_value``: clip the value loss around the rollout's values.
    - ``vf_coef``, ``ent_coef``: weights ``c_V``, ``c_H`` of the value loss and the entropy
      bonus (>= 0).
    - ``lr``: Adam step size (> 0).
    - ``max_grad_norm``: global-norm clip before Adam (> 0; ``None`` disables).
    - ``normalize_advantages``: standardise ``Â`` per minibatch.
    - ``scale_rewards``: divide rewards by the running std of the discounted return (as RTRRL).
    - ``meta_rl``: feed the previous action and reward to the cell (as RTRRL).
    - ``actor``, ``critic``: heads to start from; by default built at `init` from the
      environment's action space.
    """

    cell: AbstractCell
    rollout_length: int = eqx.field(default=128, static=True)
    epochs: int = eqx.field(default=4, static=True)
    minibatches: int = eqx.field(default=1, static=True)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    clip_value: bool = eqx.field(default=True, static=True)
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    # Larger than the usual 3e-4: the heads are linear on a small (32-unit) cell, as in the
    # paper's comparison; tuned on CartPole-v1 with an LSTM (tests/algorithms/test_ppo.py, slow test).
    lr: float = 1e-3
    max_grad_norm: float | None = 0.5
    normalize_advantages: bool = eqx.field(default=True, static=True)
    scale_rewards: bool = eqx.field(default=True, static=True)
    meta_rl: bool = eqx.field(default=True, static=True)
    actor: AbstractActor | None = None
    critic: Critic | None = None

    def __check_init__(self) -> None:
        for name in ("rollout_length", "epochs", "minibatches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PPO: `{name}` must be an integer >= 1, got {value!r}.")
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"PPO: `{name}` must lie in [0, 1], got {value}.")
        for name in ("clip_eps", "lr"):
            value = getattr(self, name)
            if not value > 0.0:
                raise ValueError(f"PPO: `{name}` must be > 0, got {value}.")
        for name in ("vf_coef", "ent_coef"):
            value = getattr(self, name)
            if not value >= 0.0:
                raise ValueError(f"PPO: `{name}` must be >= 0, got {value}.")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0.0:
            raise ValueError(
                f"PPO: `max_grad_norm` must be > 0 (or None to disable), got {self.max_grad_norm}."
            )
        if not isinstance(self.cell, AbstractCell):
            raise TypeError(f"PPO: `cell` must be an AbstractCell, got {type(self.cell)}.")

    # ------------------------------------------------------------------ construction

    def env_steps_per_step(self, num_envs: int) -> int:
        """One iteration takes ``rollout_length`` steps in each of `num_envs` environments."""
        return self.rollout_length * num_envs

    @property
    def agent(self) -> Agent:
        """The acting side, shared with `RTRRL`: the Meta-RL input, rewards divided by the
        std of the discounted return (``scale_rewards``), raw observations, and the paper's
        Gaussian head (log-scale read from the cell, log-probability of the raw sample)."""
        return Agent(
            meta_rl=self.meta_rl,
            reward_scale=ReturnStd() if self.scale_rewards else None,
            observation_norm=None,
            censored_actions=False,
            state_dependent_std=True,
        )

    def input_size(self, env: AbstractEnvironment) -> int:
        """Size of ``x_t`` in `env`; the cell's ``input_size`` must equal it."""
        return self.agent.input_size(env)

    def _optimizer(self) -> optax.GradientTransformation:
        clip = (
            optax.identity()
            if self.max_grad_norm is None
            else optax.clip_by_global_norm(self.max_grad_norm)
        )
        return optax.chain(clip, optax.adam(self.lr, eps=_ADAM_EPSILON))

    def init(self, key: PRNGKey, env: AbstractEnvironment, *, num_envs: int = 1) -> PPOState:
        """The training state for `num_envs` parallel copies of `env`.

        Raises:
            ValueError: the cell's input size does not match `env`, the actor does not fit its
                action space, `num_envs` < 1, or ``minibatches`` does not divide `num_envs`.
        """
        if num_envs < 1:
            raise ValueError(f"PPO.init: `num_envs` must be >= 1, got {num_envs}.")
        if num_envs % self.minibatches:
            raise ValueError(
                f"PPO.init: `minibatches` ({self.minibatches}) must divide `num_envs` "
                f"({num_envs}): minibatches are groups of whole environment sequences."
            )
        agent = self.agent
        agent.check_cell(self.cell, env, "PPO.init")
        head_key, env_key = jax.random.split(key)
        actor, critic = agent.heads(
            head_key,
            env,
            self.cell.feature_size,
            actor=self.actor,
            critic=self.critic,
            owner="PPO",
        )
        params = AgentParams(self.cell, actor, critic)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int and float counters.
            opt_state = self._optimizer().init(_trainable(params))
        obs, env_state = jax.vmap(env.reset)(jax.random.split(env_key, num_envs))
        dtype = obs.dtype
        hidden = self.cell.init_hidden()

        def carry_for(obs_i, env_state_i):
            zero = jnp.zeros((), dtype)
            return PPOEnvCarry(
                env_state=env_state_i,
                obs=obs_i,
                prev_action=env.action_space.zero(),
                prev_reward=zero,
                episode_start=jnp.ones((), bool),
                hidden=hidden,
                discounted_return=zero,
            )

        return PPOState(
            params=params,
            opt_state=opt_state,
            envs=jax.vmap(carry_for)(obs, env_state),
            return_stats=agent.init_return_stats(dtype),
            iteration=jnp.zeros((), jnp.int32),
        )

    # ------------------------------------------------------------------ the model

    def unroll(
        self,
        params: AgentParams,
        initial_hidden: Shaped[Array, " state"],
        inputs: Float[Array, "time input"],
        episode_start: Bool[Array, " time"],
    ) -> tuple[Float[Array, "time outputs"], Float[Array, " time"]]:
        """Run the cell over one environment's segment: actor pre-activations and values.

        ``h_t = cell(h_0 if episode_start[t] else h_{t-1}, x_t)`` from ``h_{-1} =
        initial_hidden``; ``h_0`` does not depend on the parameters, so a reset cuts every
        gradient path into the earlier episode while paths within an episode span time.

        **Returns:** ``(z, v)`` with ``z_t = actor.preactivation(y_t)``, ``v_t = v̂(y_t)``.
        """
        start_hidden = params.cell.init_hidden()

        def body(hidden, step):
            x, start = step
            hidden = params.cell(jnp.where(start, start_hidden, hidden), x)
            features = params.cell.output(hidden)
            return hidden, (params.actor.preactivation(features), params.critic(features))

        _, (z, values) = jax.lax.scan(body, initial_hidden, (inputs, episode_start))
        return z, values

    def loss(self, params: AgentParams, segment: Segment) -> tuple[Scalar, LossTerms]:
        """The PPO loss of a (mini)batch of whole segments, by BPTT through `unroll`.

        ``L = L^CLIP + vf_coef · L^V - ent_coef · E[H]`` (see the class docstring).

        **Returns:** ``(L, LossTerms)``.
        """
        z, values = jax.vmap(lambda h, x, s: self.unroll(params, h, x, s))(
            segment.initial_hidden, segment.inputs, segment.episode_start
        )
        per_step = jax.vmap(jax.vmap(params.actor.log_prob_from))
        log_probs = per_step(z, segment.actions)
        entropy = jnp.mean(jax.vmap(jax.vmap(params.actor.entropy_from))(z))
        advantages = segment.advantages
        if self.normalize_advantages:
            advantages = (advantages - jnp.mean(advantages)) / (
                jnp.std(advantages) + _ADVANTAGE_EPSILON
            )
        policy = clipped_surrogate_loss(log_probs, segment.log_probs, advantages, self.clip_eps)
        value = value_loss(
            values, segment.values, segment.returns, self.clip_eps if self.clip_value else None
        )
        total = policy + self.vf_coef * value - self.ent_coef * entropy
        log_ratio = log_probs - segment.log_probs
        ratio = jnp.exp(log_ratio)
        terms = LossTerms(
            policy=policy,
            value=value,
            entropy=entropy,
            approx_kl=jnp.mean((ratio - 1.0) - log_ratio),
            clip_fraction=jnp.mean((jnp.abs(ratio - 1.0) > self.clip_eps).astype(ratio.dtype)),
        )
        return total, terms

    # ------------------------------------------------------------------ one iteration

    def _update(self, params: AgentParams, opt_state, segment: Segment, key: PRNGKey):
        """``epochs`` passes of shuffled environment-minibatches; one Adam step each."""
        optimizer = self._optimizer()
        num_envs = segment.log_probs.shape[0]
        per_batch = num_envs // self.minibatches

        def minibatch(carry, indices):
            params, opt_state = carry
            batch = jax.tree.map(lambda a: a[indices], segment)
            (loss, terms), grads = eqx.filter_value_and_grad(self.loss, has_aux=True)(params, batch)
            with jax.numpy_dtype_promotion("standard"):  # optax mixes int and float counters.
                updates, opt_state = optimizer.update(grads, opt_state, _trainable(params))
            return (eqx.apply_updates(params, updates), opt_state), (loss, terms)

        def epoch(carry, epoch_key):
            order = jax.random.permutation(epoch_key, num_envs)
            return jax.lax.scan(minibatch, carry, order.reshape(self.minibatches, per_batch))

        keys = jax.random.split(key, self.epochs)
        (params, opt_state), (losses, terms) = jax.lax.scan(epoch, (params, opt_state), keys)
        return params, opt_state, losses, terms

    def collect(
        self, state: PPOState, env: AbstractEnvironment, key: PRNGKey
    ) -> tuple[PPOState, Segment, StepMetrics]:
        """Act for ``rollout_length`` steps in every environment and compute GAE; no learning.

        Arguments:
            state: from `init` (or a previous `step`).
            env: the environment `state` was initialised with.
            key: a fresh key for the rollout.

        Returns:
            ``(state, segment, metrics)``: the state with its environments and reward
            statistics advanced (parameters unchanged), the `Segment` the loss reads, and the
            rollout's metrics.
        """
        envs, return_stats, records = rollout(self, state, env, key)
        # Records are (time, env, ...); the loss wants whole sequences per environment.
        r = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), records)
        advantages = jax.vmap(
            lambda *args: generalized_advantages(
                *args, gamma=self.gamma, gae_lambda=self.gae_lambda
            )
        )(r.rewards, r.values, r.next_values, r.terminated, r.done)
        segment = Segment(
            initial_hidden=state.envs.hidden,
            inputs=r.inputs,
            episode_start=r.episode_start,
            actions=r.actions,
            log_probs=r.log_probs,
            values=r.values,
            advantages=advantages,
            returns=advantages + r.values,
        )
        not_terminal = 1.0 - r.terminated.astype(r.values.dtype)
        td_error = r.rewards + self.gamma * not_terminal * r.next_values - r.values
        metrics = StepMetrics(
            td_error_sq=jnp.mean(td_error**2),
            episodes_finished=jnp.sum(r.done, dtype=jnp.int32),
            return_sum=jnp.sum(jnp.where(r.done, r.episode_return, 0.0)),
            all_finite=jnp.all(jnp.isfinite(td_error)),
        )
        state = PPOState(
            params=state.params,
            opt_state=state.opt_state,
            envs=envs,
            return_stats=return_stats,
            iteration=state.iteration,
        )
        return state, segment, metrics

    def step(
        self, state: PPOState, env: AbstractEnvironment, key: PRNGKey
    ) -> tuple[PPOState, StepMetrics]:
        """One PPO iteration: `collect` a segment in every environment, then the epochs.

        Arguments:
            state: from `init` (or a previous `step`).
            env: the environment `state` was initialised with.
            key: a fresh key for this iteration.

        Returns:
            ``(next_state, metrics)``; the metrics cover the ``rollout_length`` steps.
        """
        rollout_key, update_key = jax.random.split(key)
        state, segment, metrics = self.collect(state, env, rollout_key)
        params, opt_state, losses, _ = self._update(
            state.params, state.opt_state, segment, update_key
        )
        leaves = jax.tree.leaves(_trainable(params))
        all_finite = (
            metrics.all_finite
            & jnp.all(jnp.isfinite(losses))
            & jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
        )
        metrics = eqx.tree_at(lambda m: m.all_finite, metrics, all_finite)
        new_state = PPOState(
            params=params,
            opt_state=opt_state,
            envs=state.envs,
            return_stats=state.return_stats,
            iteration=state.iteration + 1,
        )
        return new_state, metrics

    # ------------------------------------------------------------------ evaluation

    def evaluate(
        self,
        state: PPOState,
        env: AbstractEnvironment,
        key: PRNGKey,
        *,
        num_envs: int,
        num_steps: int,
        greedy: bool = False,
    ) -> Float[Array, " num_envs"]:
        """Returns of one episode in each of `num_envs` fresh environments, without learning.

        The agent sees the training input pipeline (the same Meta-RL input and the same, now
        frozen, reward scale), as RTRRL's evaluation does.
        """
        return self.agent.evaluate(
            state.params,
            state.return_stats,
            None,
            env,
            key,
            num_envs=num_envs,
            num_steps=num_steps,
            greedy=greedy,
        )
