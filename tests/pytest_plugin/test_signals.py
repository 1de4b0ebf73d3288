"""SIGTERM and SIGHUP interrupt a session as Ctrl-C does (pytest_plugin/signals.py)."""

from __future__ import annotations

import os
import signal

import pytest

from pytest_edgesim.pytest_plugin.signals import interrupt_on_termination


def test_a_termination_signal_raises_keyboard_interrupt_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        restore = interrupt_on_termination()
        with pytest.raises(KeyboardInterrupt, match="SIGTERM received"):
            os.kill(os.getpid(), signal.SIGTERM)
        restore()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_handler_someone_else_installed_is_left_alone():
    before = signal.getsignal(signal.SIGHUP)

    def theirs(signum, frame):
        pass

    signal.signal(signal.SIGHUP, theirs)
    try:
        restore = interrupt_on_termination()
        assert signal.getsignal(signal.SIGHUP) is theirs
        restore()
        assert signal.getsignal(signal.SIGHUP) is theirs
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_session_interrupted_by_sigterm_reports_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os, signal

        def test_terminated(edgesim_seed):
            os.kill(os.getpid(), signal.SIGTERM)
        """
    )
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*KeyboardInterrupt: SIGTERM received*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED
