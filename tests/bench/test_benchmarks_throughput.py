"""Smoke test of `benchmarks/throughput.py`: it runs end to end and reports what it promises.

Only the structure of the output is checked, never a timing: speed depends on the machine.
"""

import pytest
from _benchmark_scripts import benchmark_scripts, printed_report


@pytest.fixture(scope="module")
def bench():
    # The script imports its sibling scripts (`envs`, `_experiments`) as top-level modules.
    with benchmark_scripts(("throughput",)) as modules:
        yield modules["throughput"]


def test_quick_run_writes_table_and_json(bench, tmp_path, capsys, monkeypatch):
    # Compiler flags change speed and rounding, so a report names them. This value is XLA's
    # default (harmless even if this were the first compilation of the process).
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_prefer_vector_width=256")
    argv = [
        "--methods", "RFLO", "TBPTT",
        "--batches", "1", "2",
        "--hidden-size", "4",
        "--window", "3",
        "--env-steps", "16",
        "--repeats", "1",
        "--out", str(tmp_path),
    ]  # fmt: skip
    record = bench.main(argv)

    printed = printed_report(capsys.readouterr().out, record, tmp_path / "throughput.json")
    table = (tmp_path / "throughput.md").read_text()
    assert "| learner | batch |" in table and "Command:" in table and "TBPTT(3)" in table
    assert printed["machine"]["xla_flags"] == "--xla_cpu_prefer_vector_width=256"
    assert "XLA_FLAGS `--xla_cpu_prefer_vector_width=256`" in table

    rows = printed["rows"]
    assert {(r["method"], r["batch"]) for r in rows} == {
        (m, b) for m in ("RFLO", "TBPTT(3)") for b in (1, 2)
    }
    for row in rows:
        assert row["steps"] == max(4, 16 // row["batch"])
        assert row["env_steps_per_s"] == pytest.approx(row["batch"] * 1e6 / row["step_us"])
        assert row["ratio"] == pytest.approx(row["step_us"] / row["floor_step_us"])
        assert row["env_steps_per_s"] >= row["median_env_steps_per_s"] > 0


def test_unknown_method_is_refused(bench):
    with pytest.raises(SystemExit):
        bench.main(["--methods", "SnAp-1", "--out", "-"])


def test_calls_are_timed_in_turns_round_after_round(bench):
    order = []
    ticks = iter(range(1000))

    def program(name, cost):
        def call(arg):
            order.append((name, arg))
            for _ in range(cost - 1):  # each call advances the clock by `cost` ticks in all
                next(ticks)
            return arg

        return call

    calls = [(program("a", 3), (1,)), (program("b", 5), (2,))]
    timings = bench.time_in_turns(calls, repeats=3, clock=lambda: next(ticks))

    # One warm-up call each, then three rounds in which a and b take turns.
    assert order == [("a", 1), ("b", 2)] + [("a", 1), ("b", 2)] * 3
    assert timings == [(3, 3), (5, 5)]
