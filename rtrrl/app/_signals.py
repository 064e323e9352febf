"""Ctrl-C, SIGTERM and SIGHUP, acted on where a run can stop cleanly.

Schedulers (SLURM, Kubernetes) stop jobs with SIGTERM and a closed terminal sends SIGHUP:
both should save a checkpoint like Ctrl-C, not lose the run. Python's own handling of Ctrl-C
raises `KeyboardInterrupt` at whatever bytecode runs next, and that is not safe in a JAX
program: raised inside one of JAX's garbage-collection callbacks it is printed and
swallowed (the run goes on), and raised while XLA compiles or runs a program, the process
can exit with that work still going on in XLA's threads and die in their destructors
("pure virtual method called", exit 134 or 139). So the handler only records the signal,
and `StopRequests.check` raises it where the caller has nothing in flight: before and after
compiling, and between chunks.

Python runs a signal handler only when the main thread returns to the interpreter, which
it does not do during a compilation or a long chunk. A helper thread, woken through
`signal.set_wakeup_fd` the moment a signal arrives, says at once that the run will stop,
and on a second signal ends the process at once (``os._exit``: no Python or C++
clean-up that could meet XLA's running threads; every file of the run folder is written
atomically, so the folder keeps its last checkpoint).
"""

import contextlib
import os
import signal
import threading
from types import FrameType, TracebackType

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


def _describe(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class StopRequests:
    """Within ``with StopRequests() as stops:``, Ctrl-C, SIGTERM and SIGHUP are recorded, and
    ``stops.check()`` raises the first of them: `KeyboardInterrupt` for Ctrl-C, `Terminated`
    for the others. A second one ends the process at once with 128 + its number.

    Only the main thread can own signal handlers; elsewhere the block changes nothing. A
    signal the process was started ignoring stays ignored: ``nohup rtrrl train`` keeps
    running when its terminal closes, and so does a job started with ``&`` on Ctrl-C.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._wakeup: tuple[int, int] | None = None  # (read end, write end) of a pipe
        self._old_wakeup_fd = -1
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is not threading.main_thread():
            return self
        for s in STOP_SIGNALS:
            handler = signal.getsignal(s)
            if handler in (signal.SIG_IGN, None):  # ignored, or set outside Python: leave it
                continue
            self._previous[s] = handler
            signal.signal(s, self._record)
        if self._previous:
            self._start_watcher()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]  (what getsignal returned)
        self._previous = {}
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            os.close(self._wakeup[1])  # the watcher reads end-of-file and returns
            if self._watcher is not None:
                self._watcher.join(timeout=5)
            self._wakeup = self._watcher = None

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum

    def check(self) -> None:
        """Raise the recorded stop request, if any."""
        if self.signum is None:
            return
        if self.signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(self.signum)

    def _start_watcher(self) -> None:
        read, write = os.pipe()
        os.set_blocking(write, False)  # required by set_wakeup_fd; the reader blocks
        self._old_wakeup_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self._wakeup = (read, write)
        self._watcher = threading.Thread(
            target=self._watch, args=(read,), name="rtrrl-stop-signals", daemon=True
        )
        self._watcher.start()

    def _watch(self, read: int) -> None:
        """Runs in the helper thread: one byte (the signal's number) per signal received."""
        stops = tuple(self._previous)
        seen = 0
        try:
            while data := os.read(read, 64):
                for signum in data:
                    if signum not in stops:  # another signal with a Python handler
                        continue
                    seen += 1
                    if seen == 1:
                        _say(
                            f"\n{_describe(signum)}: stopping as soon as the current compilation "
                            "or chunk ends, with a checkpoint of the last completed chunk. "
                            "Once more to quit at once (the last saved checkpoint is kept).\n"
                        )
                    else:
                        _say(f"\n{_describe(signum)} again: quitting without saving.\n")
                        os._exit(128 + signum)
        finally:
            os.close(read)


def _say(text: str) -> None:
    """Write to standard error (descriptor 2) without Python's buffered stream, whose lock the
    main thread may hold (a progress bar writing)."""
    with contextlib.suppress(OSError):
        os.write(2, text.encode())
