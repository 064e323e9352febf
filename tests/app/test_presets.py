"""Presets (`rtrrl.presets`, ``--preset``) and learner diagnostics (``--diagnostics``).

- The ``default`` preset is exactly `RTRRL`'s field defaults, and ``paper`` differs from it
  in the documented settings only;
- `TrainConfig` resolves the preset into ``config.json``, single flags override it, runs
  saved before presets existed load as ``paper``, and their checkpoints' fingerprints still
  match (bit-identical results of the paper preset are checked by hand, see the notes);
- ``--diagnostics`` adds columns to ``metrics.csv`` and changes no other number.
"""

import contextlib
import dataclasses
import io
import json

import jax
import numpy as np
import pytest
from _training_helpers import TINY_FLAGS, persistent_compilation_cache, read_rows, tiny_config

from rtrrl import presets
from rtrrl.agent import LinearDecay, ObservationNormalizer, ReturnRMS, ReturnStd
from rtrrl.algorithms import RTRRL
from rtrrl.app.cli import main
from rtrrl.app.config import TrainConfig, build_algorithm, build_env
from rtrrl.app.runs import load_run_config
from rtrrl.cells import CTRNN
from rtrrl.estimators import RFLO
from rtrrl.training import METRIC_COLUMNS, train

# Compares two different programs (batched and unbatched, traced and constant, ...) bit for bit
# or to 1e-12: XLA's unoptimised float64 kernels, which the rest of the suite compiles with,
# differ between such programs by ~1e-8 (tests/_fast_compile.py).
pytestmark = pytest.mark.optimized


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(tmp_path_factory):
    with persistent_compilation_cache(tmp_path_factory.getbasetemp() / "jax-compilation-cache"):
        yield


def _learner(**kwargs) -> RTRRL:
    return RTRRL(cell=CTRNN(3, 4, key=jax.random.key(0)), estimator=RFLO(), **kwargs)


def test_default_preset_is_the_learners_defaults():
    plain, default = _learner(), _learner(**presets.preset("default"))
    for name in presets.preset("default"):
        assert getattr(default, name) == getattr(plain, name), name


def test_paper_preset_differs_in_the_documented_settings():
    paper = presets.preset("paper")
    assert paper == dict(
        reward_scale=ReturnStd(),
        observation_norm=None,
        censored_actions=False,
        state_dependent_std=True,
    )
    default = presets.preset("default")
    assert isinstance(default["reward_scale"], ReturnRMS)
    assert isinstance(default["observation_norm"], ObservationNormalizer)
    assert all(paper[name] != default[name] for name in paper)
    with pytest.raises(ValueError, match="Unknown preset 'papr': use one of default, paper"):
        presets.preset("papr")


def test_train_config_resolves_the_preset_and_flags_override_it():
    assert TrainConfig().to_json() == TrainConfig(preset="default").to_json()
    default = TrainConfig().to_json()
    assert (default["reward_scale"], default["normalize_observations"]) == ("rms", True)
    assert (default["censored_actions"], default["state_dependent_std"]) == (True, False)
    paper = TrainConfig(preset="paper").to_json()
    assert (paper["preset"], paper["reward_scale"], paper["normalize_observations"]) == (
        "paper",
        "std",
        False,
    )
    mixed = TrainConfig(preset="paper", normalize_observations=True).to_json()
    assert mixed["normalize_observations"] and mixed["reward_scale"] == "std"
    # The learner built from a config holds the resolved settings.
    config = TrainConfig(preset="paper", reward_scale="rms")
    learner = build_algorithm(config, build_env(config))(jax.random.key(0))
    assert isinstance(learner.reward_scale, ReturnRMS) and learner.observation_norm is None
    off = TrainConfig(scale_rewards=False)
    assert build_algorithm(off, build_env(off))(jax.random.key(0)).reward_scale is None


def test_fingerprint_of_the_paper_preset_is_that_of_runs_saved_before_presets(tmp_path):
    """A config.json without the preset entries (written before presets existed, when every
    run used the paper's settings) loads as ``paper``, and its fingerprint has none of the new
    entries, so the checkpoint header of such a run still matches."""
    new_keys = {"preset", "reward_scale", "normalize_observations", "censored_actions"}
    new_keys |= {"state_dependent_std", "eta_critic", "diagnostics", "lr_decay"}
    old = {k: v for k, v in TrainConfig(preset="paper").to_json().items() if k not in new_keys}
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = load_run_config(tmp_path)
    assert loaded.preset == "paper"
    assert not new_keys & set(loaded.fingerprint())
    assert {"reward_scale", "normalize_observations"} <= set(TrainConfig().fingerprint())
    # A default-preset folder written before the step-size decay existed ran constant steps.
    older = {k: v for k, v in TrainConfig().to_json().items() if k != "lr_decay"}
    (tmp_path / "config.json").write_text(json.dumps(older))
    assert load_run_config(tmp_path).preset_value("lr_decay") == "none"


def test_ppo_refuses_rtrrl_settings():
    with pytest.raises(ValueError, match=r"`normalize_observations` .* is an RTRRL setting"):
        TrainConfig(algo="ppo", normalize_observations=True)
    with pytest.raises(ValueError, match=r"`eta_critic` .* is an RTRRL setting"):
        TrainConfig(algo="ppo", eta_critic=0.5)


def test_cli_preset_paper_is_recorded_in_config_json(tmp_path):
    out = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert (
            main(["train", *TINY_FLAGS, "--steps", "500", "--preset", "paper", "--out", str(out)])
            == 0
        )
    saved = json.loads((out / "config.json").read_text())
    assert saved["preset"] == "paper" and saved["reward_scale"] == "std"
    assert saved["normalize_observations"] is False and saved["state_dependent_std"] is True


def test_diagnostics_add_columns_and_change_nothing_else():
    config = tiny_config(steps=1000, seeds=2)
    env = build_env(config)
    plain = train(build_algorithm(config, env), env, config.loop(), progress=False)
    loop = dataclasses.replace(config.loop(), diagnostics=True)
    watched = train(build_algorithm(config, env), env, loop, progress=False)
    np.testing.assert_array_equal(watched.eval_returns, plain.eval_returns)
    np.testing.assert_array_equal(watched.td_errors, plain.td_errors)
    for a, b in zip(
        jax.tree.leaves(watched.final_state), jax.tree.leaves(plain.final_state), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    row = watched.progress.rows[-1]
    expected = {"saturated", "value", "entropy", "reward_scale", "norm_cell", "tau_min"}
    expected |= {"tau_max", "direction_norm_cell", "step_cell", "trace_norm_cell"}
    assert expected <= set(row)
    assert 0.0 <= row["saturated"] <= 1.0 and row["tau_min"] >= 1.0
    assert all(np.isfinite(row[name]) for name in expected)
    assert set(plain.progress.rows[-1]) == set(METRIC_COLUMNS)


def test_cli_diagnostics_columns_follow_the_metric_columns(tmp_path):
    out = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert (
            main(["train", *TINY_FLAGS, "--steps", "500", "--diagnostics", "--out", str(out)]) == 0
        )
    rows = read_rows(out)
    assert list(rows[0])[: len(METRIC_COLUMNS)] == list(METRIC_COLUMNS)
    assert "saturated" in rows[0] and float(rows[0]["norm_cell"]) > 0


def test_lr_decay_builds_a_schedule_that_ends_at_the_budget():
    """The default preset (and ``--lr-decay linear``) gives `LinearDecay` over the run's
    updates (steps / num_envs), and the budget enters the fingerprint (a resume must keep it);
    ``--preset paper`` and ``--lr-decay none`` leave both out."""
    for config in (
        TrainConfig(steps=40_000, num_envs=4),
        TrainConfig(preset="paper", lr_decay="linear", steps=40_000, num_envs=4),
    ):
        learner = build_algorithm(config, build_env(config))(jax.random.key(0))
        assert learner.lr_schedule == LinearDecay(10_000)
        assert {"lr_decay", "steps"} <= set(config.fingerprint())
        assert config.to_json()["lr_decay"] == "linear"
    for config in (TrainConfig(preset="paper"), TrainConfig(lr_decay="none")):
        assert build_algorithm(config, build_env(config))(jax.random.key(0)).lr_schedule is None
        assert not {"lr_decay", "steps"} & set(config.fingerprint())
    assert presets.preset("default", total_updates=7)["lr_schedule"] == LinearDecay(7)
    assert "lr_schedule" not in presets.preset("paper", total_updates=7)
    with pytest.raises(ValueError, match="`total_updates` must be an int >= 1"):
        LinearDecay(0)
