"""Checks of `RTRRL`'s arguments, run when it is built: every error names the field."""

import math
import numbers
from typing import Any

import jax
import jax.core  # `jax.core.Tracer`: a submodule, imported by name for type checkers
import jax.numpy as jnp
import optax

from ..agent import AbstractRewardScale, ObservationNormalizer
from ..cells import AbstractCell
from ..estimators import AbstractGradientEstimator, key_argument
from ..heads import AbstractActor, AbstractFeedback, Critic
from ..traces import AbstractTrace

# Hyperparameters that must be finite real numbers (None allowed where the field allows it).
_REAL_FIELDS = (
    "gamma",
    "lambda_actor",
    "lambda_critic",
    "lambda_cell",
    "lr_actor",
    "lr_critic",
    "lr_cell",
    "eta_actor",
    "eta_critic",
    "eta_entropy",
    "max_grad_norm",
    "eta_average_reward",
)
_BOOL_FIELDS = ("average_reward", "meta_rl", "censored_actions", "state_dependent_std")
_TRACES = "AccumulatingTrace() or DutchTrace()"
# Module-valued fields: (name, accepted type, may be None, what the error asks for).
_MODULE_FIELDS = (
    ("feedback", AbstractFeedback, False, "Backprop() or FeedbackAlignment(key=...)"),
    ("critic_trace", AbstractTrace, False, _TRACES),
    ("actor_trace", AbstractTrace, False, "an AbstractTrace such as AccumulatingTrace()"),
    ("cell_trace", AbstractTrace, False, "an AbstractTrace such as AccumulatingTrace()"),
    ("reward_scale", AbstractRewardScale, True, "ReturnRMS(), ReturnStd() or None"),
    ("observation_norm", ObservationNormalizer, True, "ObservationNormalizer() or None"),
    (
        "optimizer",
        optax.GradientTransformation,
        True,
        "an optax transformation such as optax.adam(1e-3)",
    ),
    ("actor", AbstractActor, True, "an AbstractActor (CategoricalActor, GaussianActor) or None"),
    ("critic", Critic, True, "a Critic or None"),
)


def _is_finite_real(value: Any) -> bool:
    """A real number (Python, NumPy or a concrete JAX scalar; not a bool) that is finite."""
    if isinstance(value, bool) or not (
        isinstance(value, numbers.Real) or getattr(value, "shape", None) == ()
    ):
        return False
    try:
        return math.isfinite(float(value))
    except TypeError:  # a tracer (vmapped hyperparameters) or a complex number
        return isinstance(value, jax.core.Tracer)


def check_types(alg) -> None:
    """Every field holds a value of its kind (numbers finite, flags bool, modules typed)."""
    for name in _REAL_FIELDS:
        value = getattr(alg, name)
        if value is not None and not _is_finite_real(value):
            raise ValueError(f"RTRRL: `{name}` must be a finite number, got {value!r}.")
    for name in _BOOL_FIELDS:
        value = getattr(alg, name)
        if not isinstance(value, bool):
            raise TypeError(f"RTRRL: `{name}` must be True or False, got {value!r}.")
    for name, kind, optional, what in _MODULE_FIELDS:
        value = getattr(alg, name)
        if not (isinstance(value, kind) or (optional and value is None)):
            raise TypeError(f"RTRRL: `{name}` must be {what}, got {value!r}.")
    if not isinstance(alg.cell, AbstractCell):
        raise TypeError(f"RTRRL: `cell` must be an AbstractCell, got {type(alg.cell)}.")
    if not isinstance(alg.estimator, AbstractGradientEstimator):
        raise TypeError(
            f"RTRRL: `estimator` must be an AbstractGradientEstimator, got {type(alg.estimator)}."
        )


def check_ranges(alg) -> None:
    """Every hyperparameter lies in its range, and the schedule fits the optimiser."""
    for name in ("gamma", "lambda_actor", "lambda_critic", "lambda_cell"):
        value = getattr(alg, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"RTRRL: `{name}` must lie in [0, 1], got {value}.")
    for name in ("lr_actor", "lr_critic", "lr_cell"):
        value = getattr(alg, name)
        if not value > 0.0:
            raise ValueError(f"RTRRL: `{name}` must be > 0, got {value}.")
    for name in ("eta_actor", "eta_critic", "eta_entropy", "eta_average_reward"):
        value = getattr(alg, name)
        if not value >= 0.0:
            raise ValueError(f"RTRRL: `{name}` must be >= 0, got {value}.")
    if alg.lr_schedule is not None and (alg.optimizer is not None or not callable(alg.lr_schedule)):
        raise ValueError(
            "RTRRL: `lr_schedule` must be a function of the update count, and it scales "
            "the default optimiser's step sizes: with a custom `optimizer`, give the "
            "schedule to that optax optimiser instead."
        )
    if alg.max_grad_norm is not None and not alg.max_grad_norm > 0.0:
        raise ValueError(
            f"RTRRL: `max_grad_norm` must be > 0 (or None to disable), got {alg.max_grad_norm}."
        )


def check_parts_fit(alg) -> None:
    """The given heads read the cell's features, and the estimator can serve the cell."""
    for name in ("actor", "critic"):
        head = getattr(alg, name)
        # Both heads are linear in the features: the weight's last axis reads them.
        if head is not None and head.weight.shape[-1] != alg.cell.feature_size:
            raise ValueError(
                f"RTRRL: the {name} reads {head.weight.shape[-1]} features but the cell gives "
                f"{alg.cell.feature_size}. Build it with feature_size="
                f"{alg.cell.feature_size} (or leave `{name}=None`)."
            )
    # An estimator that cannot serve this cell raises here, naming both.
    x = jnp.zeros((alg.cell.input_size,), jnp.zeros(()).dtype)
    alg.estimator.init(
        alg.cell, alg.cell.init_hidden(), x, **key_argument(alg.estimator, jax.random.key(0))
    )
