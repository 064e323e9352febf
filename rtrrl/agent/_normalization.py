"""Normalisation of the learner's inputs: the reward scale and running observation statistics.

Both keep their statistics in the learner's state, shared by all environments of a seed, and
frozen during evaluation, so that training and evaluation see one input pipeline.
"""

import abc

import equinox as eqx
import jax.numpy as jnp
from jax.typing import DTypeLike

from .._types import Array, Float, Scalar
from ..envs import RunningMeanStd


class AbstractRewardScale(eqx.Module):
    """The positive number a learner divides every reward by, from statistics of the return.

    The statistics are a `RunningMeanStd` of the running discounted return
    ``G ← γ G + r`` (restarted after a terminal state) over every step of every environment.
    Only a positive scale is applied, never a shift: subtracting a mean would change the
    optimal policy of an episodic task.
    """

    epsilon: eqx.AbstractVar[float]

    @abc.abstractmethod
    def divisor(self, stats: RunningMeanStd) -> Scalar:
        """The scale ``c > 0``; the learner uses ``r / c``."""


class ReturnStd(AbstractRewardScale):
    """``c = sqrt(Var[G] + ε)``: the standard deviation of the discounted return.

    This is the reward scaling of OpenAI baselines' ``VecNormalize`` and of the paper's code.
    It makes the *spread* of the scaled return one, but not its size: when the return varies
    little around a large mean (Acrobot: -1 per step, ``G ≈ -100 ± 5``), the scaled values are
    ``E[G] / std(G) ≈ -20``.
    """

    epsilon: float = 1e-8

    def divisor(self, stats: RunningMeanStd) -> Scalar:
        return stats.std(self.epsilon)


class ReturnRMS(AbstractRewardScale):
    """``c = sqrt(E[G²] + ε) = sqrt(Var[G] + E[G]² + ε)``: the root mean square of the return.

    The scaled return then has a second moment of one, so the values the critic must learn
    are of order one whatever the task's reward scale, horizon *and* sign. Compared with
    `ReturnStd`, the divisor is never smaller, so values are never larger.

    Why it matters for an online recurrent learner: a critic that must learn values of
    ``-20`` moves its bias by at most the step size per step under Adam, while the cell's
    hundreds of parameters each move by that much. The cell then absorbs the value's offset
    by driving every neuron to the saturated side ``h_i = -sign(w_i)``, where ``tanh'`` is zero
    and no gradient reaches it again (see ``benchmarks/results/learning_notes.md``).
    """

    epsilon: float = 1e-8

    def divisor(self, stats: RunningMeanStd) -> Scalar:
        return jnp.sqrt(stats.var + stats.mean**2 + self.epsilon)


class ObservationNormalizer(eqx.Module):
    """``clip((o - mean) / sqrt(var + ε), -clip, clip)`` with running statistics of ``o``.

    The statistics (`RunningMeanStd`, one mean and variance per observation entry) merge every
    observation the learner reads, over all its environments, before it reads them: the
    normalised input of a step uses statistics that include that step. Evaluation uses the
    statistics as they were at the end of training. The paper feeds raw observations, whose
    scales differ by orders of magnitude between entries (Acrobot's angular velocities reach
    ±28 while its cosines stay in [-1, 1]) and saturate the cell's ``tanh`` at the start.

    **Arguments:**

    - ``clip``: bound of the normalised entries (> 0), or ``None`` for no clipping.
    - ``epsilon``: added to the variance (> 0).
    """

    clip: float | None = 10.0
    epsilon: float = 1e-8

    def __check_init__(self) -> None:
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"ObservationNormalizer: `clip` must be > 0 or None, got {self.clip}.")
        if not self.epsilon > 0:
            raise ValueError(f"ObservationNormalizer: `epsilon` must be > 0, got {self.epsilon}.")

    def init(self, observation_size: int, dtype: DTypeLike | None) -> RunningMeanStd:
        """Fresh statistics for observations of `observation_size` entries."""
        return RunningMeanStd((observation_size,), dtype=dtype)

    def update(
        self, stats: RunningMeanStd, observations: Float[Array, "batch obs"]
    ) -> RunningMeanStd:
        """`stats` with a batch of observations merged in."""
        return stats.update(observations)

    def __call__(
        self, stats: RunningMeanStd, observation: Float[Array, " obs"]
    ) -> Float[Array, " obs"]:
        """One observation, normalised by `stats`."""
        normalized = stats.normalize(observation, epsilon=self.epsilon)
        if self.clip is None:
            return normalized
        return jnp.clip(normalized, -self.clip, self.clip)
