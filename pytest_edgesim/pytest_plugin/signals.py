"""SIGTERM and SIGHUP end a session the way Ctrl-C does.

A CI runner cancels a job with SIGTERM (then SIGKILL after a grace period), and a closed
terminal sends SIGHUP. Python's default for both is to die at once, which skips pytest's
teardown and ``pytest_unconfigure``, where edgesim removes the session's containers. While
a session runs, both raise :class:`KeyboardInterrupt` in the main thread instead, so the
session is interrupted, tears down its fixtures and cleans up as after Ctrl-C. A handler
someone else installed is left alone; the previous handlers come back at the end.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

#: the signals handled, where the platform has them
SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

Restore = Callable[[], None]


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")


def interrupt_on_termination() -> Restore:
    """Make SIGTERM and SIGHUP interrupt the session; returns what puts the old handlers
    back. Does nothing outside the main thread or for a signal that already has a handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}
    for signum in SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            previous[signum] = signal.signal(signum, _interrupt)

    def restore() -> None:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is _interrupt:
                signal.signal(signum, handler)

    return restore
