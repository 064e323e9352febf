"""Smoke test of `benchmarks/gradient_quality.py`: it runs end to end and its numbers mean
what it says (exact RTRL against itself is perfect; an approximation is not). No timing is
checked: speed depends on the machine."""

import json

from _benchmark_scripts import benchmark_scripts


def test_quick_run_writes_a_table_json_and_plot(tmp_path, capsys):
    with benchmark_scripts(("gradient_quality",)) as modules:
        bench = modules["gradient_quality"]
        argv = ["--quick", "--sizes", "3", "--steps", "12", "--out", str(tmp_path)]
        argv += ["--estimators", "rtrl", "rflo", "not-an-estimator"]
        results = bench.main(argv)
    out = capsys.readouterr().out
    assert "| N | cell | estimator |" in out and "not-an-estimator: not registered" in out
    json_line = next(line for line in out.splitlines() if line.startswith("JSON: "))
    assert json.loads(json_line[6:])["rows"] == results["rows"]
    for suffix in (".md", ".json", ".png"):
        assert (tmp_path / f"gradient_quality{suffix}").stat().st_size > 0
    rows = {(r["cell"], r["estimator"]): r for r in results["rows"]}
    assert set(rows) == {(c, e) for c in ("untrained", "trained") for e in ("rtrl", "rflo")}
    for kind in ("untrained", "trained"):
        exact, rflo = rows[(kind, "rtrl")], rows[(kind, "rflo")]
        assert exact["cosine"] > 1 - 1e-6 and exact["relative_error"] < 1e-5
        assert rflo["relative_error"] > 1e-3 and rflo["cosine"] < exact["cosine"]
        assert rflo["state_bytes"] < exact["state_bytes"]
        assert exact["seconds_per_step"] > 0
