"""The interface every learner implements, so that one training loop drives them all."""

import abc
from typing import Any

import equinox as eqx

from .._types import Array, Bool, Float, Int, PRNGKey, PyTree, Scalar
from ..envs import AbstractEnvironment


class StepMetrics(eqx.Module):
    """Batch summaries of one `step` (cheap to accumulate over a scanned chunk).

    ``episodes_finished`` counts episodes that ended during the step, ``return_sum`` sums
    their raw (unscaled) returns; ``td_error_sq`` is the mean squared TD error (or, for
    algorithms without one, their mean squared value error); ``all_finite`` is false if any
    parameter or error became NaN or infinite.
    """

    td_error_sq: Scalar
    episodes_finished: Int[Array, ""]
    return_sum: Scalar
    all_finite: Bool[Array, ""]


class AbstractAlgorithm(eqx.Module):
    """A learner driven by `rtrrl.train`: ``init``, a pure ``step``, and ``evaluate``.

    ``step`` advances every environment of the state by `env_steps_per_step` steps in total
    and performs the learning that goes with them (one update for an online learner, a
    rollout and its epochs for PPO). Everything is a pure function of PyTrees, so the
    training loop can `jax.lax.scan` over steps and `jax.vmap` over seeds.
    """

    @abc.abstractmethod
    def init(self, key: PRNGKey, env: AbstractEnvironment, *, num_envs: int = 1) -> PyTree[Any]:
        """The training state for `num_envs` parallel copies of `env`."""

    @abc.abstractmethod
    def step(
        self, state: PyTree[Any], env: AbstractEnvironment, key: PRNGKey
    ) -> tuple[PyTree[Any], StepMetrics]:
        """Advance and learn; returns ``(state, metrics)``."""

    @abc.abstractmethod
    def evaluate(
        self,
        state: PyTree[Any],
        env: AbstractEnvironment,
        key: PRNGKey,
        *,
        num_envs: int,
        num_steps: int,
        greedy: bool = False,
    ) -> Float[Array, " num_envs"]:
        """Returns of one episode in each of `num_envs` fresh environments, no learning."""

    def diagnostics(
        self, state: PyTree[Any], env: AbstractEnvironment, key: PRNGKey
    ) -> dict[str, Scalar]:
        """Named scalar statistics of a training state, for monitoring (none by default).

        `key` is for probe rollouts; it is independent of the training and evaluation keys,
        so recording diagnostics changes no result.

        `rtrrl.train` records them at every evaluation when ``LoopConfig.diagnostics`` is set
        (``rtrrl train --diagnostics``: extra columns of ``metrics.csv``). The names must not
        depend on the state's values.
        """
        del state, env, key
        return {}

    def env_leaves(self, state: PyTree[Any]) -> PyTree[bool] | None:
        """Which leaves of a training `state` (from `init`) hold one entry per environment on
        their leading axis: `state`'s structure with a bool for every leaf.

        ``None`` (the default): the learner cannot have a seed's environments split over
        devices (``LoopConfig.env_devices``). A learner that returns a mask must combine its
        environments in `step` (and `diagnostics`) through `rtrrl._env_axis`.
        """
        del state
        return None

    def env_steps_per_step(self, num_envs: int) -> int:
        """Environment steps one `step` takes per environment copy times `num_envs`."""
        return num_envs
