"""Eligibility traces of TD(λ): accumulating and dutch (true online TD(λ)).

A trace is a PyTree shaped like the parameters it belongs to. Each step it decays by
``γλ`` and takes in the gradient of this step; the learner then moves the parameters along
the trace's *direction* (an ascent direction, handed to the optimiser negated). Traces
reset to zero at episode ends (the learner does that with `init`-shaped zeros).
"""

import abc
from typing import Any, cast

import equinox as eqx
import jax
import jax.numpy as jnp

from ._types import PyTree, Scalar


def _tree_vdot(a: PyTree[Any], b: PyTree[Any]) -> Scalar:
    total = sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    return cast(Scalar, total)  # `sum`'s start 0 is only returned for an empty tree


class AbstractTrace(eqx.Module):
    """How a critic's eligibility trace is updated and turned into an update direction."""

    def init(self, like: PyTree[Any]) -> PyTree[Any]:
        """A zero trace shaped like `like` (the parameters it belongs to)."""
        return jax.tree.map(jnp.zeros_like, like)

    @abc.abstractmethod
    def update(
        self, trace: PyTree[Any], grad: PyTree[Any], decay: Scalar | float, step_size: float
    ) -> PyTree[Any]:
        """The trace after this step, given ``∇v̂`` of this step and ``decay = γλ``."""

    @abc.abstractmethod
    def direction(
        self,
        trace: PyTree[Any],
        grad: PyTree[Any],
        td_error: Scalar,
        value: Scalar,
        previous_value: Scalar,
    ) -> PyTree[Any]:
        """The ascent direction for the parameters (before the step size)."""


class AccumulatingTrace(AbstractTrace):
    """``e ← γλ e + ∇v̂``; direction ``δ e`` (Sutton & Barto 2018, §12.2)."""

    def update(
        self,
        trace: PyTree[Any],
        grad: PyTree[Any],
        decay: Scalar | float,
        step_size: Scalar | float,
    ) -> PyTree[Any]:
        del step_size
        return jax.tree.map(lambda e, g: decay * e + g, trace, grad)

    def direction(
        self,
        trace: PyTree[Any],
        grad: PyTree[Any],
        td_error: Scalar | float,
        value: Scalar | float,
        previous_value: Scalar | float,
    ) -> PyTree[Any]:
        del grad, value, previous_value
        return jax.tree.map(lambda e: td_error * e, trace)


class DutchTrace(AbstractTrace):
    """True online TD(λ) for a linear critic (van Seijen et al. 2016, JMLR 17(145)).

    With features ``x = ∇v̂`` (exact for a linear critic), step size ``α`` and ``decay = γλ``:

        e ← γλ e + (1 - α γλ eᵀx) x
        Δθ = α [(δ + V - V_old) e - (V - V_old) x]

    where ``V = v̂(x_t)`` under the current parameters and ``V_old`` is the bootstrap value of
    the same state computed one step earlier (zero at an episode's start). The second term is
    the value correction that makes the forward and backward views agree exactly under SGD;
    under Adam it remains the paper's "dutch" variant.
    """

    def update(
        self,
        trace: PyTree[Any],
        grad: PyTree[Any],
        decay: Scalar | float,
        step_size: Scalar | float,
    ) -> PyTree[Any]:
        scale = 1.0 - step_size * decay * _tree_vdot(trace, grad)
        return jax.tree.map(lambda e, g: decay * e + scale * g, trace, grad)

    def direction(
        self,
        trace: PyTree[Any],
        grad: PyTree[Any],
        td_error: Scalar | float,
        value: Scalar | float,
        previous_value: Scalar | float,
    ) -> PyTree[Any]:
        correction = value - previous_value
        return jax.tree.map(lambda e, x: (td_error + correction) * e - correction * x, trace, grad)
