"""The run configuration as nested typed parts, each of which builds its objects.

`rtrrl.app.config.TrainConfig` is the flat surface the command line and config files use
(``--lr-cell``, ``--hidden-size``, ...); `TrainConfig.parts` maps it onto these parts, and
from then on the application works with objects only:

- `EnvPart` → the environment;
- `CellPart` → the cell (through the `CELLS` registry);
- `EstimatorPart` → the gradient estimator (through `ESTIMATORS`; `Frozen` for the
  echo-state ablation);
- `RTRRLPart` or `PPOPart` → the learner, given a cell and an estimator;
- `rtrrl.training.LoopConfig` → the training loop.

Defaults are not written here: every field of a part that the library has a default for
reads it from the library's own class (`field_default`), so the two cannot drift apart.
"""

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import jax

from .. import envs
from .._types import PRNGKey
from ..agent import LinearDecay, ObservationNormalizer, ReturnRMS, ReturnStd
from ..algorithms import PPO, RTRRL
from ..cells import CTRNN, AbstractCell
from ..estimators import AbstractGradientEstimator, Frozen
from ..heads import Backprop, FeedbackAlignment
from ..traces import AccumulatingTrace, DutchTrace
from ..training import LoopConfig
from .registry import CELLS, ESTIMATORS


def field_default(cls: type, name: str) -> Any:
    """The default of `name` in `cls`: a dataclass field (Equinox modules) or an argument of
    its ``__init__`` (classes with their own constructor)."""
    if dataclasses.is_dataclass(cls):
        for field in dataclasses.fields(cls):
            if field.name == name and field.default is not dataclasses.MISSING:
                return field.default
    parameter = inspect.signature(cls.__init__).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        raise LookupError(f"{cls.__name__} has no default for {name!r}")
    return parameter.default


@dataclasses.dataclass(frozen=True)
class EnvPart:
    """An environment id and its options (``--env``, ``--env-option``, ``--obs-mask``)."""

    id: str
    options: tuple[tuple[str, Any], ...] = ()

    def build(self) -> envs.AbstractEnvironment:
        """The environment (unknown ids and options fail with suggestions)."""
        return envs.make(self.id, **dict(self.options))


@dataclasses.dataclass(frozen=True)
class CellPart:
    """A cell by registry name or ``module:Name`` (``--cell``), and its size and options."""

    name: str
    hidden_size: int
    dt: float = field_default(CTRNN, "dt")
    wiring: str = "dense"
    density: float = 0.5
    motor_neurons: int = 8

    def build(self, input_size: int, *, key: PRNGKey) -> AbstractCell:
        return CELLS.resolve(self.name)(self, input_size, key=key)


@dataclasses.dataclass(frozen=True)
class EstimatorPart:
    """An estimator by registry name or ``module:Name`` (``--estimator``); ``frozen`` gives
    `Frozen` (``--freeze-cell``), and a cell without parameters needs none (``LocalMSE``)."""

    name: str
    window: int = 8  # the command line's choice: `TruncatedBPTT` has no default window
    frozen: bool = False

    def build(self) -> AbstractGradientEstimator:
        if self.frozen:
            return Frozen()
        return ESTIMATORS.resolve(self.name)(self)


@dataclasses.dataclass(frozen=True)
class RTRRLPart:
    """`RTRRL`'s options; `build` makes one learner from a cell, an estimator and a key (for
    feedback alignment's random matrices)."""

    gamma: float = field_default(RTRRL, "gamma")
    lambda_actor: float = field_default(RTRRL, "lambda_actor")
    lambda_critic: float = field_default(RTRRL, "lambda_critic")
    lambda_cell: float = field_default(RTRRL, "lambda_cell")
    lr_actor: float = field_default(RTRRL, "lr_actor")
    lr_critic: float = field_default(RTRRL, "lr_critic")
    lr_cell: float = field_default(RTRRL, "lr_cell")
    eta_actor: float = field_default(RTRRL, "eta_actor")
    eta_critic: float = field_default(RTRRL, "eta_critic")
    eta_entropy: float = field_default(RTRRL, "eta_entropy")
    max_grad_norm: float | None = field_default(RTRRL, "max_grad_norm")
    average_reward: bool = field_default(RTRRL, "average_reward")
    feedback: str = "backprop"
    critic_trace: str = "accumulating"
    reward_scale: str | None = "rms"
    normalize_observations: bool = True
    censored_actions: bool = field_default(RTRRL, "censored_actions")
    state_dependent_std: bool = field_default(RTRRL, "state_dependent_std")
    decay_updates: int | None = None
    """Lower every step size linearly to zero over this many updates (``None``: constant)."""
    meta_rl: bool = field_default(RTRRL, "meta_rl")

    def build(
        self, cell: AbstractCell, estimator: AbstractGradientEstimator, *, key: PRNGKey
    ) -> RTRRL:
        return RTRRL(
            cell=cell,
            estimator=estimator,
            feedback=FeedbackAlignment(key=key) if self.feedback == "alignment" else Backprop(),
            critic_trace=DutchTrace() if self.critic_trace == "dutch" else AccumulatingTrace(),
            gamma=self.gamma,
            lambda_actor=self.lambda_actor,
            lambda_critic=self.lambda_critic,
            lambda_cell=self.lambda_cell,
            lr_actor=self.lr_actor,
            lr_critic=self.lr_critic,
            lr_cell=self.lr_cell,
            eta_actor=self.eta_actor,
            eta_entropy=self.eta_entropy,
            max_grad_norm=self.max_grad_norm,
            average_reward=self.average_reward,
            eta_critic=self.eta_critic,
            lr_schedule=None if self.decay_updates is None else LinearDecay(self.decay_updates),
            reward_scale={"rms": ReturnRMS(), "std": ReturnStd(), None: None}[self.reward_scale],
            observation_norm=ObservationNormalizer() if self.normalize_observations else None,
            censored_actions=self.censored_actions,
            state_dependent_std=self.state_dependent_std,
            meta_rl=self.meta_rl,
        )


@dataclasses.dataclass(frozen=True)
class PPOPart:
    """`PPO`'s options; `build` makes one learner from a cell."""

    rollout_length: int = field_default(PPO, "rollout_length")
    epochs: int = field_default(PPO, "epochs")
    minibatches: int = field_default(PPO, "minibatches")
    gamma: float = field_default(PPO, "gamma")
    gae_lambda: float = field_default(PPO, "gae_lambda")
    clip_eps: float = field_default(PPO, "clip_eps")
    clip_value: bool = field_default(PPO, "clip_value")
    vf_coef: float = field_default(PPO, "vf_coef")
    ent_coef: float = field_default(PPO, "ent_coef")
    lr: float = field_default(PPO, "lr")
    max_grad_norm: float | None = field_default(PPO, "max_grad_norm")
    scale_rewards: bool = field_default(PPO, "scale_rewards")
    meta_rl: bool = field_default(PPO, "meta_rl")

    def build(self, cell: AbstractCell) -> PPO:
        return PPO(cell=cell, **dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class RunParts:
    """Everything a run builds: environment, cell, estimator, learner and loop."""

    env: EnvPart
    cell: CellPart
    estimator: EstimatorPart
    learner: RTRRLPart | PPOPart
    loop: LoopConfig

    def learner_factory(self, env: envs.AbstractEnvironment) -> Callable[[PRNGKey], RTRRL | PPO]:
        """``key -> learner``: each seed draws its own cell (and feedback matrices) from its
        key; for RTRRL the key splits into the cell's and the feedback's."""
        input_size = envs.meta_rl_input_size(env) if self.learner.meta_rl else env.observation_size
        learner = self.learner  # a local, so that the isinstance check narrows its type
        if isinstance(learner, PPOPart):
            return lambda key: learner.build(self.cell.build(input_size, key=key))

        def make(key: PRNGKey) -> RTRRL:
            cell_key, feedback_key = jax.random.split(key)
            cell = self.cell.build(input_size, key=cell_key)
            return learner.build(cell, self.estimator.build(), key=feedback_key)

        return make
