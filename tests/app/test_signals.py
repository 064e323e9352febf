"""`StopRequests`: Ctrl-C, SIGTERM and SIGHUP are recorded and raised at the caller's checks
(the runs themselves are stopped in tests/test_faults.py and tests/app/test_resume.py)."""

import os
import signal

import pytest

from rtrrl.app._signals import StopRequests, Terminated

pytestmark = pytest.mark.skipif(os.name == "nt", reason="needs POSIX signals")


@pytest.mark.parametrize(
    ("signum", "raised", "code"),
    [(signal.SIGINT, KeyboardInterrupt, 130), (signal.SIGTERM, Terminated, 143)],
)
def test_a_signal_is_raised_at_the_next_check_not_where_it_arrives(signum, raised, code, capfd):
    # A background job of a non-interactive shell (CI, `make test &`) starts with SIGINT
    # ignored, and `StopRequests` leaves an ignored signal alone (tested below): give the
    # signal Python's usual handler for this test.
    usual = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
    original = signal.signal(signum, usual)
    try:
        with StopRequests() as stops:
            # Raised in this thread, so Python runs the handler before the next line (`os.kill`
            # may deliver it to another thread, and the main thread runs the handler later).
            signal.raise_signal(signum)  # nothing raised here: only recorded
            assert stops.signum == signum
            with pytest.raises(raised) as error:
                stops.check()
        assert getattr(error.value, "exit_code", 130) == code
        assert signal.getsignal(signum) is usual  # the handlers are put back
    finally:
        signal.signal(signum, original)
    assert "stopping as soon as the current compilation or chunk ends" in capfd.readouterr().err


def test_a_signal_ignored_at_the_start_stays_ignored():
    """``nohup rtrrl train`` must outlive its terminal (SIGHUP ignored by nohup)."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with StopRequests() as stops:
            os.kill(os.getpid(), signal.SIGHUP)
            stops.check()  # nothing recorded
            assert stops.signum is None
    finally:
        signal.signal(signal.SIGHUP, before)


def test_without_a_signal_the_check_does_nothing():
    with StopRequests() as stops:
        stops.check()
    assert stops.signum is None
