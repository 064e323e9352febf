"""SIGTERM and SIGHUP handled like Ctrl-C: schedulers (SLURM, Kubernetes) stop jobs with
SIGTERM, and a closed terminal sends SIGHUP; both should save a checkpoint, not lose work."""

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM or SIGHUP; a `KeyboardInterrupt`, so that every
    Ctrl-C path (checkpoint of the last completed chunk, a message) runs for it too.

    ``exit_code`` is the shell's convention for death by that signal: 128 + its number.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` (main thread only; elsewhere
    Python cannot install handlers, and the block changes nothing). A signal the process was
    started ignoring stays ignored: ``nohup rtrrl train`` keeps running when its terminal
    closes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        s: signal.getsignal(s) for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN
    }

    def handler(signum, frame):
        for s in STOP_SIGNALS:  # a second signal must not cut the checkpoint's save short
            signal.signal(s, signal.SIG_IGN)
        raise Terminated(signum)

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
