"""``config.json`` records the values in use under ``"effective"`` (never ``null`` for a value
that is in use), and a run folder reads back as before: the entry is ignored by
`load_run_config`, and folders written without it still load."""

import json

import pytest

from rtrrl import envs
from rtrrl.app.config import TrainConfig
from rtrrl.app.effective import effective_settings
from rtrrl.app.runs import load_run_config


@pytest.mark.parametrize(("algo", "clip"), [("rtrrl", 1.0), ("ppo", 0.5)])
def test_unset_flags_are_recorded_with_the_value_in_use(algo, clip):
    config = TrainConfig(algo=algo, cell="gru" if algo == "ppo" else "ctrnn")
    assert config.max_grad_norm is None and config.eval_steps is None
    effective = effective_settings(config, envs.make("CartPole-v1"), "1 (small steps)")
    assert effective["max_grad_norm"] == clip
    # The loop's fallback: CartPole-v1 declares no `max_episode_steps` for it to read.
    assert effective["eval_steps"] == 1000
    assert effective["cpu_threads"] == "1 (small steps)"
    assert effective["learner"]["algo"] == algo
    assert effective["learner"]["max_grad_norm"] == clip
    assert effective["learner"]["gamma"] == config.gamma
    assert effective["env"] == {"id": "CartPole-v1", "options": {}}
    json.dumps(effective)  # plain JSON


def test_the_preset_and_explicit_flags_are_resolved():
    effective = effective_settings(
        TrainConfig(max_grad_norm=0.0, eval_steps=64), envs.make("CartPole-v1"), "all cores"
    )
    assert effective["max_grad_norm"] == 0.0  # off, in the flag's terms
    assert effective["learner"]["max_grad_norm"] is None  # off, in RTRRL's
    assert effective["eval_steps"] == 64
    learner = effective["learner"]
    assert (learner["reward_scale"], learner["normalize_observations"]) == ("rms", True)
    assert learner["decay_updates"] == TrainConfig().steps  # the default preset's decay
    assert effective["estimator"]["name"] == "rflo"
    assert effective["cell"]["hidden_size"] == 32


def _write(folder, config: TrainConfig, extra: dict) -> None:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config.to_json() | extra))


def test_load_run_config_ignores_the_effective_values_and_loads_folders_without_them(tmp_path):
    config = TrainConfig(hidden_size=8, out=tmp_path / "new")
    effective = effective_settings(config, envs.make("CartPole-v1"), "1")
    _write(tmp_path / "new", config, {"effective": effective})
    _write(tmp_path / "old", config, {})
    new, old = load_run_config(tmp_path / "new"), load_run_config(tmp_path / "old")
    assert new == old == config.resolved()  # config.json holds the preset's settings filled in
    assert new.fingerprint() == config.fingerprint()
    # Another unknown key is still refused.
    _write(tmp_path / "typo", config, {"efective": effective})
    with pytest.raises(ValueError, match="efective"):
        load_run_config(tmp_path / "typo")
