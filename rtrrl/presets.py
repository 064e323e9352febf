"""Named settings of the RTRRL learner: ``"default"`` (this library's) and ``"paper"``.

Both presets share the paper's Table 1 hyperparameters (32 neurons, γ = 0.99, λ = 0.99, Adam
with step size 1e-3 for every group, η_A = 1, η_H = 1e-5, gradient clip 1.0): those are
`rtrrl.RTRRL`'s field defaults. They differ in how the learner's inputs are normalised and in
the Gaussian head of continuous actions:

| setting | ``"default"`` | ``"paper"`` |
|---|---|---|
| ``reward_scale`` | `ReturnRMS()`: rewards / RMS of the return | `ReturnStd()`: rewards / std of the return |
| ``observation_norm`` | `ObservationNormalizer()`: running mean/std | ``None``: raw observations |
| ``censored_actions`` | ``True``: log-prob of the executed, clipped action | ``False``: of the raw sample |
| ``state_dependent_std`` | ``False``: a learned log-scale vector | ``True``: log-scale read from the cell |
| ``lr_schedule`` | `LinearDecay(total_updates)`: step sizes fall linearly to 0 at the end | ``None``: constant |

``"default"`` is what `RTRRL` uses when these fields are not given, except the step-size
decay: it needs the run's length, so `RTRRL`'s own default is constant step sizes and
``preset("default", total_updates=...)`` adds the decay (``rtrrl train`` passes the updates
of its ``--steps``). ``"paper"`` reproduces the paper's learner. ``benchmarks/results/stability.md`` compares the two on six tasks, and
``benchmarks/results/learning_notes.md`` explains each difference.

Usage: ``rtrrl.RTRRL(cell=..., estimator=..., **rtrrl.presets.preset("paper"))``, or
``**rtrrl.presets.preset("default", total_updates=1_000_000)`` for a run of a million learner
updates; on the command line, ``rtrrl train --preset paper``.
"""

from typing import Any

from .agent import LinearDecay, ObservationNormalizer, ReturnRMS, ReturnStd

NAMES = ("default", "paper")


def preset(name: str, *, total_updates: int | None = None) -> dict[str, Any]:
    """The `RTRRL` keyword arguments of preset `name` (fresh objects on every call).

    **Arguments:**

    - ``name``: one of `NAMES`.
    - ``total_updates``: the learner updates the run will make (env-steps per environment).
      The ``"default"`` preset then lowers every step size linearly to zero over them
      (``lr_schedule=LinearDecay(total_updates)``); ``None`` leaves the step sizes constant,
      for runs without a fixed length. The ``"paper"`` preset ignores it (constant steps).

    Raises:
        ValueError: `name` is not one of `NAMES`.
    """
    if name == "default":
        schedule = {} if total_updates is None else {"lr_schedule": LinearDecay(total_updates)}
        return dict(
            reward_scale=ReturnRMS(),
            observation_norm=ObservationNormalizer(),
            censored_actions=True,
            state_dependent_std=False,
            **schedule,
        )
    if name == "paper":
        return dict(
            reward_scale=ReturnStd(),
            observation_norm=None,
            censored_actions=False,
            state_dependent_std=True,
        )
    raise ValueError(f"Unknown preset {name!r}: use one of {', '.join(NAMES)}.")
