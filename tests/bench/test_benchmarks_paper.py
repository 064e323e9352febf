"""Smoke tests of the paper benchmarks (benchmarks/paper.py, memory_chain.py, ablations.py).

Each script's core runs one tiny cell (MemoryChain-16, RTRRL-RFLO with 4 neurons, 2 seeds,
2,000 steps) into a temporary folder and must write its JSON, Markdown and PNG; a second call
must skip the finished cell. No learning thresholds: this only keeps the scripts from rotting.

The three cells are the same configuration, so with the persistent compilation cache the
training program is compiled by the first test and loaded by the other two.
"""

import json
from pathlib import Path

import pytest
from _benchmark_scripts import benchmark_scripts

TINY = dict(steps=2_000, seeds=2, eval_every=1_000, progress=False, overrides=dict(hidden_size=4))


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "jax-compilation-cache"
    with benchmark_scripts(("paper", "memory_chain", "ablations"), cache) as modules:
        yield modules


def _check_outputs(prefix: Path, key: str) -> dict:
    for suffix in (".json", ".md", ".png"):
        assert prefix.with_suffix(suffix).exists(), suffix
    data = json.loads(prefix.with_suffix(".json").read_text())
    record = data["cells"][key]
    assert len(record["best_eval_return"]) == 2
    assert record["total_steps"] >= 2_000
    return data


def test_paper(scripts, tmp_path):
    paper = scripts["paper"]
    prefix = tmp_path / "paper"
    kwargs = dict(tasks=["MemoryChain-16"], methods=["rflo"], prefix=prefix, **TINY)
    paper.run_subset("full", **kwargs)
    data = _check_outputs(prefix, "MemoryChain-16|rflo")
    text = prefix.with_suffix(".md").read_text()
    assert "RTRRL RFLO CTRNN" in text and "(1.00)" in text  # ours beside the paper's number
    assert "## Not run" in text
    # Continuing skips the finished cell.
    store = paper.run_subset("full", **kwargs)
    assert store.meta["invocations"][-1]["cells_skipped"] == 1
    assert store.cells == data["cells"]


def test_memory_chain(scripts, tmp_path):
    prefix = tmp_path / "memory_chain"
    scripts["memory_chain"].run_sweep(lengths=[16], methods=["rflo"], prefix=prefix, **TINY)
    _check_outputs(prefix, "16|rflo")
    assert "| 16 |" in prefix.with_suffix(".md").read_text()


def test_ablations(scripts, tmp_path):
    prefix = tmp_path / "ablations"
    scripts["ablations"].run_ablations(
        tasks=["MemoryChain-16"], variants=["meta-rl"], prefix=prefix, **TINY
    )
    _check_outputs(prefix, "MemoryChain-16|meta-rl")
    assert "RTRRL (Meta-RL input, backprop)" in prefix.with_suffix(".md").read_text()
