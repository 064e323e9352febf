"""Smoke test of `benchmarks/estimators.py`: it runs end to end and reports what it promises.

Only the structure of the output is checked, never a timing: speed depends on the machine.
The suite runs in float64 (conftest), so the benchmark is asked for float64 here.
"""

import math

import pytest
from _benchmark_scripts import load_script, printed_report

ESTIMATORS = ("RTRL", "RFLO", "LocalMSE", "TruncatedBPTT")


@pytest.fixture(scope="module")
def bench():
    return load_script("estimators")


def test_quick_run_writes_table_json_and_plot(bench, tmp_path, capsys):
    argv = [
        "--quick",
        "--sizes", "2", "3",
        "--batches", "1", "2",
        "--repeats", "1",
        "--rounds", "2",
        "--dtype", "float64",
        "--out", str(tmp_path),
    ]  # fmt: skip
    results = bench.main(argv)

    printed = printed_report(capsys.readouterr().out, results, tmp_path / "estimators.json")
    assert (tmp_path / "estimators.png").read_bytes().startswith(b"\x89PNG")
    table = (tmp_path / "estimators.md").read_text()
    assert "| N |" in table and "fitted slope" in table and "Command:" in table

    for key in ("platform", "cpu_count", "jax", "backend"):
        assert key in printed["machine"]
    rows = printed["rows"]
    assert {(r["kind"], r["batch"], r["hidden_size"]) for r in rows} == {
        (e, b, n) for e in ESTIMATORS for b in (1, 2) for n in (2, 3)
    }
    for row in rows:
        assert "skipped" not in row
        assert row["repeats"] == 2  # one call in each of the two rounds
        assert 0 < row["best_us"] <= row["median_us"]
        assert row["state_bytes"] == row["batch"] * row["state_bytes_per_example"] > 0
    assert len(printed["fits"]) == len(ESTIMATORS) * 2
    assert all(math.isfinite(f["fit"]["slope"]) for f in printed["fits"])


def test_state_bytes_follow_the_estimators_complexity(bench):
    """RTRL stores N × P (its dense form also kept the N hidden values), RFLO
    N × (I + N + 1) + N, LocalMSE 2N + I + N + 1, TBPTT window × (N + I)."""
    import jax
    import jax.numpy as jnp

    n, i, window = 5, 3, 4
    cell = bench.make_cell(i, n, jnp.dtype("float64"), jax.random.key(0))
    params = n * (i + n + 1) + n
    expected = {
        "RTRL": 8 * n * params,  # the structured influence (N, P) of a CTRNN, nothing more
        "RFLO": 8 * params,
        # Its rank-one immediate Jacobian kept factored: gain (N), input ξ (I + N + 1), τ (N).
        "LocalMSE": 8 * (n + (i + n + 1) + n),
        "TruncatedBPTT": 8 * (n + window * (n + i)) + 4,
    }
    for name, size in expected.items():
        assert bench.state_bytes(bench.make_estimator(name, window), cell) == size, name


def test_skips_sizes_projected_too_slow(bench):
    import jax

    config = bench.Config(sizes=(2,), batches=(1,), max_step_s=1.0, out=None)
    row, call = bench.measure(config, "RTRL", 2, 1, projected_s=5.0, key=jax.random.key(0))
    assert call is None and "projected" in row["skipped"]
