"""``rtrrl plot``: a title from the runs' environments, each run's best mean marked, early
stops marked, and runs on different environments flagged (a warning, the environment in every
legend label). The run folders are written by hand: no training needed."""

import json

import numpy as np
import pytest

from rtrrl.app.cli import main
from rtrrl.app.config import TrainConfig
from rtrrl.app.plotting import learning_curve_figure, read_metrics
from rtrrl.app.runs import metrics_text


def _run_folder(folder, returns: dict[int, list[float]], *, stopped=None, **config):
    """A run folder with `returns` per seed (a seed's list may end early), its config.json
    and, when `stopped` is given, a summary.json saying which seeds stopped early."""
    folder.mkdir()
    seeds = sorted(returns)
    (folder / "config.json").write_text(json.dumps(TrainConfig(seed=seeds[0], **config).to_json()))
    rows = [
        {"step": 100 * (i + 1), "seed": seed, "eval_return": value, "train_return": 0.0,
         "td_error": 0.5, "steps_per_second": 1e4}
        for seed in seeds for i, value in enumerate(returns[seed])
    ]  # fmt: skip
    rows.sort(key=lambda row: (row["step"], row["seed"]))
    (folder / "metrics.csv").write_text(metrics_text(rows))
    if stopped is not None:
        summary = {"seeds": seeds, "stopped_early": [seed in stopped for seed in seeds]}
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def _labels(figure):
    (legend,) = figure.legends
    return [text.get_text() for text in legend.get_texts()]


def _marks(figure, marker):
    return [
        (float(line.get_xdata()[0]), float(line.get_ydata()[0]))
        for line in figure.axes[0].get_lines()
        if line.get_marker() == marker
    ]


def test_best_mean_and_early_stops_are_marked(tmp_path):
    run = _run_folder(tmp_path / "a", {0: [10.0, 30.0, 20.0, 25.0], 1: [12.0, 40.0]}, stopped={1})
    metrics = read_metrics(run)
    assert metrics["stopped_early"].tolist() == [False, True]
    figure = learning_curve_figure({"a": metrics}, environments={"a": "CartPole-v1"})
    assert figure.axes[0].get_title() == "CartPole-v1"
    # Seed 1 stopped at step 200 with 40: its value is held for the mean afterwards.
    assert _marks(figure, "o") == [(200.0, 35.0)]
    assert _marks(figure, "x") == [(200.0, 40.0)]
    assert _labels(figure) == [
        "a (2 seeds), best 35 at 200",
        "best mean",
        "early stop (one seed)",
    ]


def test_td_error_has_no_best_and_a_run_without_summary_no_early_stops(tmp_path):
    run = _run_folder(tmp_path / "a", {0: [1.0, 2.0]})
    metrics = read_metrics(run)
    assert "stopped_early" not in metrics
    figure = learning_curve_figure({"a": metrics}, metric="td_error", title="mine")
    assert figure.axes[0].get_title() == "mine"
    assert _marks(figure, "o") == [] and _marks(figure, "x") == []
    assert _labels(figure) == ["a (1 seed)"]


def test_plot_of_runs_on_different_environments_warns_and_names_them(tmp_path, capsys):
    a = _run_folder(tmp_path / "a", {0: [1.0, 2.0]}, env="CartPole-v1")
    b = _run_folder(
        tmp_path / "b", {0: [3.0, 1.0]}, env="MemoryChain-bsuite", env_option=("memory_length=8",)
    )
    figure_path = tmp_path / "both.png"
    assert main(["plot", str(a), str(b), "--out", str(figure_path)]) == 0
    captured = capsys.readouterr()
    (warning,) = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    assert "CartPole-v1" in warning and "MemoryChain-bsuite (memory_length=8)" in warning
    assert figure_path.is_file() and f"wrote {figure_path}" in captured.out
    environments = {"a": "CartPole-v1", "b": "MemoryChain-bsuite (memory_length=8)"}
    figure = learning_curve_figure(
        {"a": read_metrics(a), "b": read_metrics(b)}, environments=environments
    )
    title = " ".join(figure.axes[0].get_title().split())  # wrapped onto two lines
    assert title == "different environments: CartPole-v1 vs MemoryChain-bsuite (memory_length=8)"
    labels = _labels(figure)
    assert labels[0].startswith("a [CartPole-v1] (1 seed)")
    assert labels[1].startswith("b [MemoryChain-bsuite (memory_length=8)] (1 seed)")


def test_plot_of_runs_on_one_environment_gives_no_warning(tmp_path, capsys):
    a = _run_folder(tmp_path / "a", {0: [1.0, 2.0]})
    b = _run_folder(tmp_path / "b", {5: [3.0, 1.0]})
    assert main(["plot", str(a), str(b), "--out", str(tmp_path / "p.png")]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("summary", ["[]", "{}", '{"seeds": [7], "stopped_early": [true]}'])
def test_a_summary_that_does_not_fit_is_ignored(tmp_path, summary):
    run = _run_folder(tmp_path / "a", {0: [1.0, 2.0]})
    (run / "summary.json").write_text(summary)
    metrics = read_metrics(run)
    assert "stopped_early" not in metrics
    assert np.array_equal(metrics["steps"], [100, 200])


def test_plot_out_an_existing_folder_writes_the_figure_inside_it(tmp_path, capsys):
    run = _run_folder(tmp_path / "a", {0: [1.0, 2.0]})
    folder = tmp_path / "figures"
    folder.mkdir()
    assert main(["plot", str(run), "--out", str(folder)]) == 0
    assert (folder / "comparison.png").is_file()
    assert not (tmp_path / "figures.png").exists()
    assert capsys.readouterr().out.strip() == f"wrote {folder / 'comparison.png'}"
