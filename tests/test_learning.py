"""Learning checks on tasks the paper solved (Lemmel & Grosu 2025, results table).

Paper defaults (32 neurons, RFLO, batch 1, Table 1 hyperparameters) unless a case says
otherwise; two seeds trained together in one compiled program. Each case asserts that *every*
seed's best evaluation return reaches the threshold within the step budget; the thresholds
are the issue's and are never lowered. The budgets are a few times what the runs needed when
they were recorded (see the issue notes). A seed stops at its first evaluation that reaches
the threshold (``target_return``): the best return only grows, so running on could not
change the verdict. There is no early stopping on a plateau, so a seed that plateaus before
it learns runs its whole budget.
"""

import dataclasses

import numpy as np
import pytest

from rtrrl.app.config import TrainConfig, build_algorithm, build_env
from rtrrl.training import train

# Long training runs: compiled as users compile (tests/_fast_compile.py).
pytestmark = [pytest.mark.slow, pytest.mark.optimized]


@dataclasses.dataclass(frozen=True)
class Case:
    config: TrainConfig
    threshold: float


CASES = {
    "CartPole-v1": Case(TrainConfig(env="CartPole-v1", steps=400_000, seeds=2), 475.0),
    "CartPole-vel": Case(TrainConfig(env="CartPole-vel", steps=400_000, seeds=2), 475.0),
    "MemoryChain-8": Case(
        TrainConfig(
            env="MemoryChain-bsuite",
            env_option=("memory_length=8",),
            steps=300_000,
            seeds=2,
            eval_envs=32,
            eval_steps=40,
        ),
        0.9,
    ),
    "StatelessCartPole": Case(
        TrainConfig(env="StatelessCartPole", steps=800_000, seeds=2, eval_steps=200), 0.9
    ),
    "RepeatPreviousEasy-LRU": Case(
        TrainConfig(
            env="popgym-RepeatPreviousEasy-v0",
            cell="lru",
            estimator="rtrl",
            steps=800_000,
            seeds=2,
            eval_steps=60,
        ),
        0.9,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_reaches_paper_level(name):
    case = CASES[name]
    env = build_env(case.config)
    algorithm = build_algorithm(case.config, env)
    # No early stopping on a plateau: the paper's patience of 20 evaluations saves compute in
    # the benchmarks, but it also ends a seed that sits on a plateau before it learns
    # (StatelessCartPole seed 1: 0.85 at 90k, stopped at 290k; 1.0 at 450k). A seed that has
    # passed the threshold is done.
    loop = dataclasses.replace(case.config.loop(), patience=None, target_return=case.threshold)
    result = train(algorithm, env, loop, progress=False)
    best = np.asarray(result.best_eval_return)
    report = (
        f"{name}: best eval per seed {best.tolist()} at steps {result.best_step.tolist()}, "
        f"threshold {case.threshold}, {result.total_steps} steps, {result.run_seconds:.0f} s"
    )
    print(report)
    assert np.all(best >= case.threshold), report


def test_acrobot_is_solved_by_the_default_preset_and_not_by_the_papers():
    """Acrobot-v1, RFLO CTRNN-32, 300k steps, 3 seeds: under the default preset the median of
    the seeds' *final* evaluations (16 episodes each) is >= -100 (Gym's threshold for the
    task). The paper's learner (``--preset paper``) stays at the 500-step floor: its critic
    drives every neuron into saturation (``benchmarks/results/learning_notes.md``)."""
    finals = {}
    for preset in ("default", "paper"):
        config = TrainConfig(
            env="Acrobot-v1", steps=300_000, seeds=3, eval_envs=16, preset=preset, patience=None
        )
        env = build_env(config)
        result = train(build_algorithm(config, env), env, config.loop(), progress=False)
        finals[preset] = np.asarray(result.final_eval_return)
    report = f"final eval per seed: { ({k: v.tolist() for k, v in finals.items()}) }"
    print(report)
    assert np.median(finals["default"]) >= -100.0, report
    assert np.median(finals["paper"]) <= -400.0, report
