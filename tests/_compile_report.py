"""``pytest --compile-report N``: where the suite's time goes, in XLA compilations per test.

Most of the suite's time is compiling (``_fast_compile``). With this option every test phase
(setup, call, teardown) counts the XLA compilations of its own process and their seconds,
from JAX's monitoring events:

- ``/jax/core/compile/backend_compile_duration``: one per program XLA compiles (a load from
  the persistent compilation cache does not count);
- ``/jax/core/compile/jaxpr_trace_duration`` and ``jaxpr_to_mlir_module_duration``: tracing
  and lowering, Python's share of a compilation.

The counts travel with the test reports (``user_properties``), so they also work under
pytest-xdist, and the summary at the end lists the N tests that compiled longest beside the
totals. Compilations inside the ``rtrrl`` subprocesses that some tests start are not seen
(those tests' time is their subprocesses': see ``--durations``).
"""

import dataclasses

import jax
import pytest

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
TRACE_AND_LOWER = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
)
PROPERTY = "compilations"


@dataclasses.dataclass
class _Since:
    """Compilations and seconds since the last `take`."""

    count: int = 0
    compile_s: float = 0.0
    trace_s: float = 0.0

    def __call__(self, event: str, duration: float, **kwargs) -> None:
        if event == BACKEND_COMPILE:
            self.count += 1
            self.compile_s += duration
        elif event in TRACE_AND_LOWER:
            self.trace_s += duration

    def take(self) -> tuple[int, float, float]:
        taken = (self.count, self.compile_s, self.trace_s)
        self.count, self.compile_s, self.trace_s = 0, 0.0, 0.0
        return taken


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--compile-report",
        type=int,
        default=0,
        metavar="N",
        help="list the N tests that spent the most time in XLA compilation, with counts",
    )


def pytest_configure(config: pytest.Config) -> None:
    top = config.getoption("compile_report")
    if top:
        config.pluginmanager.register(CompileReport(top), "compile-report")


class CompileReport:
    """Counts each test phase's compilations (in the process that runs it) and sums them per
    test where the reports arrive (the xdist controller, or the only process)."""

    def __init__(self, top: int):
        self.top = top
        self.since = _Since()
        self.totals: dict[str, list[float]] = {}  # nodeid -> [count, compile s, trace s, test s]
        jax.monitoring.register_event_duration_secs_listener(self.since)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        count, compile_s, trace_s = self.since.take()
        outcome.get_result().user_properties.append((PROPERTY, [count, compile_s, trace_s]))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == PROPERTY:
                total = self.totals.setdefault(report.nodeid, [0, 0.0, 0.0, 0.0])
                for i, v in enumerate(value):
                    total[i] += v
                total[3] += report.duration

    def pytest_terminal_summary(self, terminalreporter) -> None:
        write = terminalreporter.write_line
        terminalreporter.section(f"XLA compilations: the {self.top} tests that compiled longest")
        write(f"{'compile s':>10} {'count':>6} {'trace s':>8} {'test s':>7}  test")
        ranked = sorted(self.totals.items(), key=lambda item: -item[1][1])
        for nodeid, (count, compile_s, trace_s, test_s) in ranked[: self.top]:
            write(f"{compile_s:10.1f} {count:6d} {trace_s:8.1f} {test_s:7.1f}  {nodeid}")
        count, compile_s, trace_s, test_s = (
            sum(t[i] for t in self.totals.values()) for i in range(4)
        )
        write(
            f"all {len(self.totals)} tests: {count} compilations, {compile_s:.0f} s compiling and "
            f"{trace_s:.0f} s tracing and lowering, of {test_s:.0f} s in tests (in-process only)"
        )
