"""The estimator of a cell that never learns: the echo-state ablation."""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Features, Grads, Hidden, Input, PRNGKey, Scalar
from ..cells import AbstractCell
from ._abstract import AbstractGradientEstimator
from ._common import check_cotangent, check_step_inputs


class Frozen(AbstractGradientEstimator[None]):
    """Runs the cell and reports a zero gradient: the cell keeps its initial parameters.

    ``step`` is ``h_t = cell(h_{t-1}, x_t)`` with no state (``None``), and ``gradient`` is
    zero for every parameter, so a learner built on it trains only its heads on a fixed random
    recurrent network (an echo-state network, when the cell is a CTRNN). It serves any cell
    and costs nothing beyond the forward step.
    """

    def init(
        self, cell: AbstractCell, hidden: Hidden, x: Input, *, key: PRNGKey | None = None
    ) -> None:
        del key
        check_step_inputs(self, "init", cell, hidden, x)
        return None

    def step(
        self,
        cell: AbstractCell,
        hidden: Hidden,
        x: Input,
        state: None,
        *,
        key: PRNGKey | None = None,
    ) -> tuple[Hidden, None]:
        del state, key
        check_step_inputs(self, "step", cell, hidden, x)
        return cell(hidden, x), None

    def gradient(self, cell: AbstractCell, state: None, cotangent: Features) -> Grads:
        del state
        check_cotangent(self, "gradient", cell, cotangent)
        return jax.tree.map(jnp.zeros_like, eqx.filter(cell, eqx.is_inexact_array))

    def gradient_norm_squared(self, cell: AbstractCell, state: None, cotangent: Features) -> Scalar:
        del state
        check_cotangent(self, "gradient_norm_squared", cell, cotangent)
        return jnp.zeros((), cotangent.dtype)
