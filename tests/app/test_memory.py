"""Runs too large for the machine are refused before anything is compiled or written, with
one error line that names the flag to lower (`rtrrl.app.memory`)."""

import jax
import pytest
from _training_helpers import TINY_FLAGS

from rtrrl import prng
from rtrrl.app import memory
from rtrrl.app.cli import main
from rtrrl.app.config import TrainConfig, build_algorithm, build_env

GIB = 2**30


@pytest.fixture
def sixteen_gib(monkeypatch):
    """The machine reports 16 GiB available, whatever it really has."""
    monkeypatch.setattr(memory, "available_bytes", lambda: 16 * GIB)


@pytest.mark.parametrize(
    ("flags", "part", "advice"),
    [
        (["--eval-envs", "100000000"], "evaluation", "--eval-envs"),
        (["--estimator", "tbptt", "--window", "1000000000"], "training state", "--window"),
        (["--hidden-size", "100000"], "training state", "--hidden-size"),
        (["--eval-every", "1000000000000"], "keys of one chunk", "--eval-every"),
        (
            ["--algo", "ppo", "--cell", "lstm", "--rollout-length", "1000000000"],
            "PPO rollout segment",
            "--rollout-length",
        ),
    ],
)
def test_a_run_too_large_for_memory_is_refused_naming_the_flag(
    sixteen_gib, tmp_path, capsys, flags, part, advice
):
    out = tmp_path / "run"
    assert main(["train", *flags, "--steps", "1000", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: This run needs at least ")
    assert f"The largest part is the {part}: lower " in err and advice in err
    assert "16 GiB is available" in err
    assert not out.exists()


def test_the_estimate_of_an_ordinary_run_is_small_and_counts_each_part(sixteen_gib):
    config = TrainConfig(steps=1000, num_envs=4, seeds=2)
    env = build_env(config)
    make = build_algorithm(config, env)  # checks the memory too: it passes here
    one = jax.eval_shape(lambda key: make(key).init(key, env, num_envs=1), prng.key(0))
    parts = memory.estimate(config, env, make, one, 1)
    assert set(parts) == {"training state", "keys of one chunk", "evaluation"}
    assert all(0 < size < 64 * 2**20 for size in parts.values())
    # Twice the environments: more training state; twice the seeds: twice every part.
    more_envs = memory.estimate(TrainConfig(steps=1000, num_envs=8, seeds=2), env, make, one, 1)
    assert more_envs["training state"] > parts["training state"]
    more_seeds = memory.estimate(TrainConfig(steps=1000, num_envs=4, seeds=4), env, make, one, 1)
    assert more_seeds == {name: 2 * size for name, size in parts.items()}


def test_a_machine_that_reports_no_memory_skips_the_check(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    out = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--steps", "500", "--out", str(out)]) == 0
