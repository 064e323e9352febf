"""`pytest --compile-report N` counts each test's XLA compilations (tests/_compile_report.py).

It reads JAX's monitoring events by name: if JAX renamed them, the report would print zeros
without failing, so this runs it on a small test file in a pytest subprocess and checks that
it saw compilations.
"""

import pathlib
import re
import subprocess
import sys

TESTS = pathlib.Path(__file__).resolve().parent


def test_report_lists_the_tests_that_compiled_longest_with_their_counts():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "--compile-report",
            "2",
            str(TESTS / "test_traces.py"),
        ],
        capture_output=True,
        text=True,
        cwd=TESTS.parent,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "XLA compilations: the 2 tests that compiled longest" in out
    rows = re.findall(r"^\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(tests/\S+)$", out, re.M)
    assert len(rows) == 2, out
    assert all(int(count) > 0 for _, count, _, _, _ in rows), out
    compile_s = [float(row[0]) for row in rows]
    assert compile_s == sorted(compile_s, reverse=True), out
    total = re.search(r"^all (\d+) tests: (\d+) compilations", out, re.M)
    assert (
        total is not None
        and int(total[1]) > 2
        and int(total[2]) >= sum(int(row[1]) for row in rows)
    ), out
