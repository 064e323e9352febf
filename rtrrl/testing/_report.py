"""What `check_estimator` returns (`EstimatorReport`) and raises (`EstimatorCheckError`), and
the bookkeeping of its checks."""

import dataclasses
from typing import Any

_MESSAGE_LIMIT = 1000


@dataclasses.dataclass(frozen=True)
class EstimatorReport:
    """What `check_estimator` found.

    - ``relative_error``: ``‖ĝ - g‖₂ / ‖g‖₂`` of the summed estimate ``ĝ`` against BPTT's ``g``;
    - ``max_relative_error``: the largest ``|ĝ_i - g_i|`` at the scale ``max|g|`` of its leaf
      (what ``rtol`` bounds when ``exact=True``); ``worst_component`` names that entry;
    - ``cosine_similarity``: ``⟨ĝ, g⟩ / (‖ĝ‖ ‖g‖)``: 1 for an exact estimator, near 1 for a
      good approximation, near 0 for an unrelated direction;
    - ``checks``: each check's result, ``True`` (passed), ``False`` (failed) or ``None``
      (skipped, because a check it needs failed); ``messages`` says why for the others.

    The errors are ``nan`` when the sequence could not be run.
    """

    estimator: str
    cell: str
    length: int
    dtype: str
    relative_error: float
    max_relative_error: float
    cosine_similarity: float
    worst_component: str
    checks: dict[str, bool | None]
    messages: dict[str, str]

    @property
    def passed(self) -> bool:
        """No check failed."""
        return all(result is not False for result in self.checks.values())

    @property
    def failures(self) -> dict[str, str]:
        """The failed checks and what is wrong."""
        return {name: self.messages[name] for name, ok in self.checks.items() if ok is False}

    def __str__(self) -> str:
        failed = self.failures
        lines = [
            f"check_estimator({self.estimator} on {self.cell}, T={self.length}, {self.dtype}): "
            + (f"{len(failed)} of {len(self.checks)} checks failed" if failed else "passed")
        ]
        indent = "\n      "
        lines += [
            f"  FAILED {name}: {indent.join(line for line in message.splitlines() if line.strip())}"
            for name, message in failed.items()
        ]
        lines += [
            f"  skipped {name}: {self.messages[name]}"
            for name, ok in self.checks.items()
            if ok is None
        ]
        passed = [name for name, ok in self.checks.items() if ok]
        lines.append(f"  passed: {', '.join(passed) or 'none'}")
        lines.append(
            f"  against BPTT: relative error {self.relative_error:.3g}, max relative error "
            f"{self.max_relative_error:.3g}, cosine similarity {self.cosine_similarity:.6f} "
            f"(worst entry {self.worst_component})"
        )
        return "\n".join(lines)


class EstimatorCheckError(AssertionError):
    """A check of `rtrrl.testing` failed; ``report`` holds everything that was measured."""

    def __init__(self, message: str, report: Any):
        super().__init__(message)
        self.report = report


class Checks:
    """Results in order: each check passes (``None`` from it), fails (a message, or an
    exception it raised), or is skipped because a check it needs did not pass."""

    def __init__(self) -> None:
        self.results: dict[str, bool | None] = {}
        self.messages: dict[str, str] = {}

    def record(self, name: str, problem: str | None) -> bool:
        self.results[name] = problem is None
        if problem is not None:
            self.messages[name] = problem[:_MESSAGE_LIMIT]
        return problem is None

    def run(self, name: str, check: Any, *, needs: tuple[str, ...] = ()) -> bool:
        missing = [n for n in needs if not self.results.get(n)]
        if missing:
            self.results[name] = None
            self.messages[name] = f"needs {', '.join(missing)}"
            return False
        try:
            problem = check()
        except AssertionError as error:
            problem = str(error).strip()
        except Exception as error:  # noqa: BLE001 (reported as this check's failure)
            problem = f"raised {type(error).__name__}: {error}"
        return self.record(name, problem)
