"""Smoke tests of benchmarks/stability.py, diagnosis.py and early_stopping.py, and the
statistics they report (on hand-made curves).

The runs are tiny (4 neurons, 2 seeds, a few thousand steps) and only keep the scripts from
rotting: they must write their reports and skip finished cells when run again.
"""

import json

import numpy as np
import pytest
from _benchmark_scripts import benchmark_scripts


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "jax-compilation-cache"
    with benchmark_scripts(("stability", "diagnosis", "early_stopping"), cache) as modules:
        yield modules


def test_stability_writes_its_report_and_skips_finished_cells(scripts, tmp_path):
    stability = scripts["stability"]
    prefix = tmp_path / "stability"
    kwargs = dict(
        tasks=["MemoryChain-32"],
        methods=["default-rflo", "paper-rflo"],
        steps=2_000,
        seeds=2,
        prefix=prefix,
        progress=False,
        overrides=dict(hidden_size=4, eval_every=1_000),
    )
    stability.run_stability(**kwargs)
    for suffix in (".json", ".md", ".png"):
        assert prefix.with_suffix(suffix).exists(), suffix
    data = json.loads(prefix.with_suffix(".json").read_text())
    record = data["cells"]["MemoryChain-32|default-rflo"]
    assert record["config"]["preset"] == "default" and record["config"]["patience"] is None
    assert data["cells"]["MemoryChain-32|paper-rflo"]["config"]["reward_scale"] == "std"
    text = prefix.with_suffix(".md").read_text()
    assert "default preset, RFLO" in text and "paper preset, RFLO" in text
    store = stability.run_stability(**kwargs)
    assert store.meta["invocations"][-1]["cells_skipped"] == 2


def test_stability_numbers_on_hand_made_curves(scripts):
    stability = scripts["stability"]
    record = {
        "steps": [10, 20, 30, 40],
        "eval_returns": [[0.0, 0.2], [1.0, 0.5], [0.5, 0.96], [1.0, 0.1]],
        "best_eval_return": [1.0, 0.96],
        "final_eval_return": [1.0, 0.1],
    }
    task = stability.TASKS["MemoryChain-32"]  # threshold 0.95
    assert stability.first_reach(record, 0.95) == [20.0, 30.0]
    numbers = stability.cell_numbers(record, task)
    assert numbers["final_solved"] == 0.5 and numbers["stability"] == 3 / 8
    assert numbers["reach_steps"] == 25.0 and numbers["reached"] == 1.0
    never = dict(record, eval_returns=[[0.0, 0.2]] * 4)
    assert np.isinf(stability.cell_numbers(never, task)["reach_steps"])


def test_early_stopping_rules_on_hand_made_curves(scripts):
    early = scripts["early_stopping"]
    curve = np.array([0.0, 1.0, 0.5, 0.5, 0.5, 2.0, 0.0, 0.0])
    np.testing.assert_allclose(early.smoothed(curve, 2), [0.0, 0.5, 0.75, 0.5, 0.5, 1.25, 1.0, 0.0])
    assert early.stop_index(curve, None, 1) == 7  # never stops
    assert early.stop_index(curve, 3, 1) == 4  # best at 1, three evaluations without a new one
    assert early.stop_index(curve, 4, 1) == 7  # the new best at 5 comes in time
    # Smoothing: the mean of two rises at 2 and 5, then falls for 2 evaluations.
    assert early.stop_index(curve, 2, 2) == 4


def test_diagnosis_writes_its_report(scripts, tmp_path, monkeypatch):
    diagnosis = scripts["diagnosis"]
    monkeypatch.setattr(diagnosis, "STEPS", 2_000)
    monkeypatch.setattr(diagnosis, "SEEDS", 2)
    monkeypatch.setattr(diagnosis, "EVAL_EVERY", 1_000)
    monkeypatch.setattr(diagnosis, "REPLAY_STEPS", 5)
    prefix = tmp_path / "diagnosis"
    diagnosis.main(["--variants", "paper", "--out", str(prefix)])
    text = prefix.with_suffix(".md").read_text()
    assert "the paper's learner (reference)" in text and "on the value-lowering side" in text
    record = json.loads(prefix.with_suffix(".json").read_text())["cells"]["paper"]
    assert record["config"]["diagnostics"] and len(record["replay"]["saturated"]) == 2
