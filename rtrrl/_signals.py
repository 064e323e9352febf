"""Ctrl-C, SIGTERM and SIGHUP, acted on where the run can save its work.

Schedulers (SLURM, Kubernetes) stop jobs with SIGTERM and a closed terminal sends SIGHUP:
both should save a checkpoint like Ctrl-C, not lose the run. And an exception raised
straight from a signal handler can land anywhere: in the middle of a file write, or in a
garbage-collection callback of JAX, which swallows it (Ctrl-C is then ignored and the run
goes on). So the handler only records the signal, and `StopRequests.check` raises it at the
points the caller chooses (between chunks, before compiling).
"""

import signal
import threading
from types import TracebackType

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP; a `KeyboardInterrupt`, so that every Ctrl-C path (checkpoint of the
    last completed chunk, a message) runs for it too.

    ``exit_code`` is the shell's convention for death by that signal: 128 + its number.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


class StopRequests:
    """Within ``with StopRequests() as stops:``, Ctrl-C, SIGTERM and SIGHUP are recorded, and
    ``stops.check()`` raises the first of them: `KeyboardInterrupt` for Ctrl-C, `Terminated`
    for the others. A second Ctrl-C raises at once (a way out if a check never comes).

    Only the main thread can own signal handlers; elsewhere the block changes nothing. A
    signal the process was started ignoring stays ignored: ``nohup rtrrl train`` keeps
    running when its terminal closes, and so does a job started with ``&`` on Ctrl-C.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                handler = signal.getsignal(s)
                if handler in (signal.SIG_IGN, None):
                    continue
                self._previous[s] = handler
                signal.signal(s, self._record)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _record(self, signum: int, frame: object) -> None:
        if signum == signal.SIGINT and self.signum is not None:
            raise KeyboardInterrupt
        if self.signum is None:
            self.signum = signum

    def check(self) -> None:
        """Raise the recorded stop request, if any."""
        if self.signum is None:
            return
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(self.signum)
