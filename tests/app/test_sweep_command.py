"""``rtrrl sweep``: sweep files, sweep folders, and resuming an interrupted sweep."""

import json

import numpy as np
import pytest

from rtrrl.app import sweep as sweep_module
from rtrrl.app.checkpoint import read_checkpoint_header
from rtrrl.app.cli import main
from rtrrl.app.sweep import _groups, run_sweep
from rtrrl.app.sweep_spec import load_sweep_file
from tests._training_helpers import (
    TINY,
    persistent_compilation_cache,
    read_rows,
    without_timing,
)

STEPS = 1500
BASE = {**TINY, "steps": STEPS, "seeds": 2, "env": "CartPole-v1"}
RUN_FILES = {"config.json", "metrics.csv", "summary.json", "learning_curve.png", "checkpoint.rtrrl"}


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(tmp_path_factory):
    # The interrupted, resumed and uninterrupted sweeps compile one equal program.
    with persistent_compilation_cache(tmp_path_factory.mktemp("jax-cache")):
        yield


def _write(path, text):
    path.write_text(text)
    return path


def _sweep_file(tmp_path, section="grid:\n  lr_cell: [1e-3, 3e-3]\n", **base):
    lines = [f"{k}: {json.dumps(v)}" for k, v in (BASE | base).items()]
    return _write(tmp_path / "sweep.yaml", "\n".join(lines) + "\n" + section)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """``rtrrl sweep --config`` of 2 step sizes × 2 seeds, never interrupted."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    out = tmp / "sweep"
    assert main(["sweep", "--config", str(_sweep_file(tmp)), "--out", str(out)]) == 0
    return out


def test_a_sweep_folder_holds_a_run_folder_per_configuration_and_the_report(uninterrupted):
    record = json.loads((uninterrupted / "sweep.json").read_text())
    assert record["groups"] == [[0, 1]]
    for run in record["runs"]:
        assert {p.name for p in (uninterrupted / run).iterdir()} >= RUN_FILES
        summary = json.loads((uninterrupted / run / "summary.json").read_text())
        assert summary["num_compilations"] == 1 and summary["seeds"] == [0, 1]
        assert len(read_rows(uninterrupted / run)) == 2 * STEPS // 500
    rows = (uninterrupted / "sweep.csv").read_text().splitlines()
    assert rows[0].startswith("index,run,lr_cell,final_median,final_min,final_max,best_median")
    assert len(rows) == 3
    table = (uninterrupted / "sweep.md").read_text()
    assert "| lr_cell | final return | best return | run |" in table
    assert (uninterrupted / "sweep.png").stat().st_size > 0
    # Each run folder is an ordinary one: `rtrrl eval` reads it.
    assert main(["eval", "--run", str(uninterrupted / record["runs"][1]), "--episodes", "1"]) == 0


def test_an_interrupted_sweep_resumes_to_the_uninterrupted_one(
    uninterrupted, tmp_path, monkeypatch
):
    """A Ctrl-C after the first chunk saves the group's checkpoint; ``--resume`` then gives
    the uninterrupted sweep's metrics (but for timings) and bitwise equal states."""
    out = tmp_path / "sweep"
    original = sweep_module.train_swept

    def interrupted(*args, on_chunk, **kwargs):
        def stop_after_first(states, book):
            on_chunk(states, book)
            raise KeyboardInterrupt

        return original(*args, on_chunk=stop_after_first, **kwargs)

    monkeypatch.setattr(sweep_module, "train_swept", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(_sweep_file(tmp_path), out=out, progress=False)
    assert read_checkpoint_header(out / "group-0.rtrrl")[0]["progress"]["chunk"] == 1
    monkeypatch.setattr(sweep_module, "train_swept", original)
    assert main(["sweep", "--resume", str(out)]) == 0
    record = json.loads((out / "sweep.json").read_text())
    for run in record["runs"]:
        assert without_timing(read_rows(out / run)) == without_timing(
            read_rows(uninterrupted / run)
        )
    mine, theirs = (read_checkpoint_header(d / "group-0.rtrrl")[1] for d in (out, uninterrupted))
    assert mine == theirs  # the serialised states, byte for byte
    # Rerunning a finished sweep's command compiles nothing and changes no result.
    again = run_sweep(None, resume=out, progress=False)
    assert again.num_compilations == [0]
    assert without_timing(read_rows(out / record["runs"][0])) == without_timing(
        read_rows(uninterrupted / record["runs"][0])
    )


def test_structural_options_make_groups_and_continuous_ones_share_one(tmp_path):
    section = "grid:\n  lr_cell: [1e-3, 3e-3]\n  hidden_size: [4, 6]\n  gamma: [0.9]\n"
    spec = load_sweep_file(_sweep_file(tmp_path, section))
    assert [c["hidden_size"] for c in spec.configurations] == [4, 6, 4, 6]
    assert _groups(spec) == [[0, 2], [1, 3]]


def test_a_random_sample_is_seeded_and_log_uniform_within_its_bounds(tmp_path):
    section = (
        "random:\n  samples: 20\n  seed: 3\n  lr_cell: {log_uniform: [1e-4, 1e-2]}\n"
        "  lambda_cell: {uniform: [0.8, 0.99]}\n  cell: [ctrnn, lru]\n"
    )
    spec = load_sweep_file(_sweep_file(tmp_path, section))
    again = load_sweep_file(_sweep_file(tmp_path, section))
    assert spec.configurations == again.configurations and len(spec.configurations) == 20
    lr = np.array([c["lr_cell"] for c in spec.configurations])
    assert lr.min() >= 1e-4 and lr.max() <= 1e-2
    # Log-uniform: about half the draws below the geometric midpoint 1e-3.
    assert 4 <= (lr < 1e-3).sum() <= 16
    assert {c["cell"] for c in spec.configurations} == {"ctrnn", "lru"}
    other = load_sweep_file(_sweep_file(tmp_path, section.replace("seed: 3", "seed: 4")))
    assert other.configurations != spec.configurations


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grid:\n  lr_cel: [1e-3]\n", "unknown option 'lr_cel'. Did you mean lr_cell"),
        ("hiden_size: 4\ngrid:\n  lr_cell: [1e-3]\n", "Did you mean hidden_size"),
        ("grid:\n  lr_cell: 1e-3\n", "must be a non-empty list"),
        ("grid:\n  lambda_cell: [1.5]\n", "configuration 0 (lambda_cell=1.5)"),
        ("grid:\n  seeds: [1, 2]\n", "cannot be swept"),
        ("grid:\n  fast_cpu_codegen: [false, true]\n", "set once for the sweep's process"),
        ("lr_cell: 1e-3\n", "exactly one of `grid:`"),
        ("random:\n  samples: 2\n  lr_cell: {log_uniform: [0, 1]}\n", "low > 0"),
        ("random:\n  samples: 2\n  lr_cell: {loguniform: [1e-4, 1]}\n", "'log_uniform'"),
        ("random:\n  lr_cell: [1e-3]\n", "`samples` must be an integer"),
        ("grid: [1, 2]\n", "must map option names"),
    ],
)
def test_a_bad_sweep_file_is_one_error_line_and_status_2(tmp_path, capsys, text, message):
    path = _write(tmp_path / "bad.yaml", "env: CartPole-v1\n" + text)
    assert main(["sweep", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not (tmp_path / "out").exists()


def test_a_folder_holding_another_sweep_is_refused(uninterrupted, tmp_path, capsys):
    other = _sweep_file(tmp_path, "grid:\n  lr_cell: [1e-2, 3e-3]\n")
    assert main(["sweep", "--config", str(other), "--out", str(uninterrupted)]) == 2
    assert "holds another sweep" in capsys.readouterr().err
