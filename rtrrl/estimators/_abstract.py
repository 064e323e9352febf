"""The interface every online gradient estimator implements."""

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Features, Float, Grads, Hidden, Input, PRNGKey, Scalar
from ..cells import AbstractCell
from ._common import check_cotangents, stack_rows

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    # A bare `AbstractGradientEstimator` is `AbstractGradientEstimator[Any]` to a type checker.
    _State = TypeVar("_State", default=Any)
else:
    _State = TypeVar("_State")


class AbstractGradientEstimator(eqx.Module, Generic[_State]):
    """Carries an estimate of the Jacobian ``Ĵ_t ≈ d output(h_t) / dθ`` forward in time.

    The protocol mirrors Diffrax's ``solver.init / solver.step``: state is returned, never
    mutated, and each estimator has its own typed state Module.

    - ``state = est.init(cell, hidden, x)``: the state for an episode starting at ``hidden``
      (usually ``cell.init_hidden()``), before ``x`` is read. Raises a `ValueError` naming both
      the estimator and the cell if this estimator cannot serve the cell.
    - ``next_hidden, state = est.step(cell, hidden, x, state)``: advances the cell by one step
      and the estimator with it.
    - ``grads = est.gradient(cell, state, cotangent)``: the estimate of
      ``(d cell.output(h_t) / dθ)ᵀ · cotangent`` for the latest ``h_t``, a PyTree shaped like
      ``eqx.filter(cell, eqx.is_inexact_array)``.
    - ``est.gradient_norm_squared(cell, state, cotangent)``: ``‖gradient(...)‖₂²`` (the learner's
      gradient clipping needs it every step). The default forms the gradient; an estimator
      whose gradient has structure overrides it to skip that (`RFLO`).
    - ``grads = est.gradients(cell, state, cotangents)``: `gradient` for each row of a stacked
      ``(K, features)`` cotangent, every leaf with a leading ``K`` axis. The default calls
      `gradient` once per row; an estimator that can share work between the rows overrides it
      and sets ``shares_cotangent_work = True`` (`TruncatedBPTT`: one forward unroll for all
      rows), and `rtrrl.RTRRL` then asks for all its cotangents in one call.
    - ``grads = est.mean_gradient(cell, states, cotangents)``: the mean of `gradient` over a
      batch, ``(1/B) Σ_b gradient(cell, states_b, c_b)``, for states and ``(B, features)``
      cotangents with a leading batch axis ``B``. The default vmaps `gradient` and averages;
      an estimator that forms the mean more cheaply says so in `batches_gradient_mean`
      (LocalMSE on a CTRNN: one GEMM instead of ``B`` outer products; the LRU's kernels: two
      for the readout), and `rtrrl.RTRRL` then asks it for the batch mean of the entropy term
      instead of one gradient per environment.

    All methods are pure and compose with `jax.jit`, `jax.vmap` and `jax.lax.scan`.

    **Randomness.** An estimator that draws random numbers (UORO's random signs, for one)
    sets the class attribute ``stochastic = True``. Its ``init`` and ``step`` then receive a
    keyword argument ``key``, a fresh PRNG key for that one call, and must use it rather than
    a key kept in the state (a key kept in the state would repeat its noise every episode,
    because learners call ``init`` at every episode start, and would be shared by every
    vmapped seed and environment). The learners make these keys:

    - `rtrrl.RTRRL` folds them out of the key of each (seed, environment, step), the one
      that samples that step's action: ``fold_in(fold_in(k, 1), 0)`` for ``init`` and
      ``fold_in(fold_in(k, 1), 1)`` for ``step``. They are independent across seeds,
      environments, episodes and steps, a pure function of the run's seed (so a resumed run
      draws the same numbers), and the action keys stay as they were;
    - `rtrrl.fit_sequence` splits the ``key`` it is given into one key per step.

    Deterministic estimators (``stochastic = False``, the default: `RTRL`, `RFLO`, `LocalMSE`,
    `TruncatedBPTT`, `Frozen`) never receive a key from the learners, so one written without
    a ``key`` parameter works unchanged; the built-in ones accept ``key=None`` and ignore it.
    """

    stochastic: ClassVar[bool] = False
    """Whether ``init`` and ``step`` draw random numbers (and so need their ``key``)."""

    shares_cotangent_work: ClassVar[bool] = False
    """Whether `gradients` costs less than one `gradient` per cotangent. Learners call
    `gradients` once for all their cotangents (and take the clipping norm from the gradient it
    formed) only when it does; otherwise they keep one `gradient` call per cotangent."""

    @abc.abstractmethod
    def init(
        self, cell: AbstractCell, hidden: Hidden, x: Input, *, key: PRNGKey | None = None
    ) -> _State:
        """Fresh estimator state for an episode starting at `hidden`."""

    @abc.abstractmethod
    def step(
        self,
        cell: AbstractCell,
        hidden: Hidden,
        x: Input,
        state: _State,
        *,
        key: PRNGKey | None = None,
    ) -> tuple[Hidden, _State]:
        """Advance the cell and the estimator by one step."""

    @abc.abstractmethod
    def gradient(self, cell: AbstractCell, state: _State, cotangent: Features) -> Grads:
        """Estimated ``(d output(h_t) / dθ)ᵀ · cotangent``, shaped like the cell's parameters."""

    def gradients(
        self, cell: AbstractCell, state: _State, cotangents: Float[Array, "rows features"]
    ) -> Grads:
        """`gradient` for each row of `cotangents` (``(K, features)``), stacked: a PyTree shaped
        like ``eqx.filter(cell, eqx.is_inexact_array)`` with a leading ``K`` axis on each leaf.

        The default calls `gradient` once per row, so its rows equal `gradient`'s exactly.
        """
        check_cotangents(self, "gradients", cell, cotangents)
        rows = [self.gradient(cell, state, row) for row in cotangents]
        return stack_rows(rows)

    def batches_gradient_mean(self, cell: AbstractCell) -> bool:
        """Whether `mean_gradient` for `cell` costs less than one `gradient` per batch row
        (the default's cost). Learners form a batch mean of gradients through `mean_gradient`
        only when it does, so that everyone else's updates keep their order of additions."""
        del cell
        return False

    def mean_gradient(
        self, cell: AbstractCell, state: _State, cotangents: Float[Array, "batch features"]
    ) -> Grads:
        """``(1/B) Σ_b gradient(cell, state_b, cotangents_b)``: `state` is a batch of states (a
        leading axis ``B`` on every leaf, as `jax.vmap` of `init` makes) and `cotangents` has
        shape ``(B, features)``. A PyTree shaped like ``eqx.filter(cell, eqx.is_inexact_array)``.

        The default vmaps `gradient` over the batch and takes the mean of each leaf.
        """
        check_cotangents(self, "mean_gradient", cell, cotangents)
        grads = jax.vmap(self.gradient, in_axes=(None, 0, 0))(cell, state, cotangents)
        return jax.tree.map(lambda leaf: jnp.mean(leaf, axis=0), grads)

    def gradient_norm_squared(
        self, cell: AbstractCell, state: _State, cotangent: Features
    ) -> Scalar:
        """``‖gradient(cell, state, cotangent)‖₂²`` over all parameters."""
        leaves = jax.tree.leaves(self.gradient(cell, state, cotangent))
        # Starts from a zero of the cotangent's dtype: a cell without parameters gives 0.
        return sum((jnp.sum(leaf**2) for leaf in leaves), jnp.zeros((), cotangent.dtype))


def key_argument(estimator: AbstractGradientEstimator, key: PRNGKey | None) -> dict[str, Any]:
    """``{"key": key}`` for a stochastic `estimator`, else ``{}``: the keyword arguments a
    learner passes to its ``init`` and ``step`` (deterministic estimators get no key, so one
    written without a ``key`` parameter still works)."""
    return {"key": key} if estimator.stochastic else {}
