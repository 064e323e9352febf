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

``"default"`` is what `RTRRL` uses when these fields are not given; ``"paper"`` reproduces the
paper's learner. ``benchmarks/results/stability.md`` compares the two on six tasks, and
``benchmarks/results/learning_notes.md`` explains each difference.

Usage: ``rtrrl.RTRRL(cell=..., estimator=..., **rtrrl.presets.preset("paper"))``; on the
command line, ``rtrrl train --preset paper``.
"""

from typing import Any

from .agent import ObservationNormalizer, ReturnRMS, ReturnStd

NAMES = ("default", "paper")


def preset(name: str) -> dict[str, Any]:
    """The `RTRRL` keyword arguments of preset `name` (fresh objects on every call).

    Raises:
        ValueError: `name` is not one of `NAMES`.
    """
    if name == "default":
        return dict(
            reward_scale=ReturnRMS(),
            observation_norm=ObservationNormalizer(),
            censored_actions=True,
            state_dependent_std=False,
        )
    if name == "paper":
        return dict(
            reward_scale=ReturnStd(),
            observation_norm=None,
            censored_actions=False,
            state_dependent_std=True,
        )
    raise ValueError(f"Unknown preset {name!r}: use one of {', '.join(NAMES)}.")
