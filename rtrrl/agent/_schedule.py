"""Step-size schedules of the learner's default optimiser."""

from typing import cast

import equinox as eqx
import optax

from .._types import Array, Int, Scalar


class LinearDecay(eqx.Module):
    """``max(0, 1 - t / total_updates)``: every step size falls linearly to zero.

    A multiplier of all of `RTRRL`'s step sizes (``lr_actor``, ``lr_critic``, ``lr_cell``) at
    update ``t`` (one update per learner step; with ``num_envs`` environments a run of ``S``
    env-steps per seed makes ``S / num_envs`` updates). Annealing trades continued learning
    for a steadier end of the run; the paper uses none. Hashable by value, so learners with
    equal schedules share their compiled step.

    **Arguments:** ``total_updates``: the update at which the step sizes reach zero (>= 1).
    """

    total_updates: int = eqx.field(static=True)

    def __check_init__(self) -> None:
        if isinstance(self.total_updates, bool) or not (
            isinstance(self.total_updates, int) and self.total_updates >= 1
        ):
            raise ValueError(
                f"LinearDecay: `total_updates` must be an int >= 1, got {self.total_updates!r}."
            )

    def __call__(self, update: Int[Array, ""]) -> Scalar:
        # optax's schedule, wrapped in a module so that equal schedules compare equal (a bare
        # closure would make every learner a new static value, hence a recompile).
        # optax annotates the schedule's value as ArrayLike; given an array it returns one.
        return cast(Scalar, optax.linear_schedule(1.0, 0.0, self.total_updates)(update))
