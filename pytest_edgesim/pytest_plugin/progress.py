"""Progress while a user waits: image builds and statistical trials, in the terminal.

- Image builds (and the Debian base) report their steps through
  :mod:`pytest_edgesim.core.progress`; each step is a line, ``edgesim: building ...``,
  written past output capture as live logging is. An xdist worker has no terminal: it writes
  the line to its stderr, prefixed with its id (``[gw0] edgesim: ...``), which reaches the
  controller's terminal.
- A statistical test's trials: with ``-v``, a line per trial (``trial 3/20 (seed S):
  passed``); at the default verbosity on a terminal, one status line rewritten in place once
  the test has taken a second, which ends saying how many trials ran. Under xdist the controller
  shows each test when it ends (the workers' trials are not shown).

``-q`` shows none of it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_edgesim.core import progress as core_progress

#: a test's trials get a status line once they have taken this long (default verbosity)
STATUS_AFTER_S = 1.0

_previous_sink_key = pytest.StashKey[Any]()
_started_key = pytest.StashKey[float]()
_status_key = pytest.StashKey[bool]()
_done_key = pytest.StashKey[int]()


def _quiet(config: pytest.Config) -> bool:
    return int(config.get_verbosity()) < 0


def _worker_id(config: pytest.Config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput.get("workerid", "gw?"))


@contextlib.contextmanager
def _uncaptured(config: pytest.Config) -> Iterator[None]:
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield


def write_line(config: pytest.Config, line: str) -> None:
    """``line`` in the terminal now, past output capture (a worker: on its stderr)."""
    worker = _worker_id(config)
    with _uncaptured(config):
        if worker is not None:
            sys.stderr.write(f"[{worker}] {line}\n")
            sys.stderr.flush()
            return
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)


def configure(config: pytest.Config) -> None:
    """Show image builds' steps in this session (not under ``-q``)."""
    if _quiet(config):
        return

    def sink(line: str, is_phase: bool) -> None:
        if is_phase:
            write_line(config, f"edgesim: {line}")

    config.stash[_previous_sink_key] = core_progress.set_sink(sink)


def unconfigure(config: pytest.Config) -> None:
    if _previous_sink_key in config.stash:
        core_progress.set_sink(config.stash[_previous_sink_key])


def trial_finished(item: pytest.Item, done: int, budget: int, seed: int, outcome: str) -> None:
    """A statistical test's trial ``done`` of ``budget`` ended with ``outcome``."""
    config = item.config
    if _quiet(config) or _worker_id(config) is not None:
        return
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is None:
        return
    if config.get_verbosity() > 0:
        with _uncaptured(config):
            reporter.write_line(f"    trial {done}/{budget} (seed {seed}): {outcome}")
        return
    if not reporter.isatty():
        return
    started = item.stash.setdefault(_started_key, time.monotonic())
    if time.monotonic() - started < STATUS_AFTER_S:
        return
    with _uncaptured(config):
        if not item.stash.get(_status_key, False):
            reporter.ensure_newline()  # (the status has a line of its own)
            item.stash[_status_key] = True
        reporter.rewrite(f"{item.nodeid}: trial {done}/{budget}", erase=True)
        item.stash[_done_key] = done


def trials_over(item: pytest.Item) -> None:
    """End the status line of ``item``'s trials, if one was shown: it keeps how many trials
    ran, and the file's name starts the next line, where the test's outcome goes."""
    if not item.stash.get(_status_key, False):
        return
    item.stash[_status_key] = False
    reporter = item.config.pluginmanager.getplugin("terminalreporter")
    if reporter is None:
        return
    with _uncaptured(item.config):
        reporter.rewrite(f"{item.nodeid}: {item.stash[_done_key]} trials run", erase=True)
        reporter.write("\n")
        path = item.config.rootpath / item.nodeid.split("::")[0]
        reporter.write(os.path.relpath(path, reporter.startpath) + " ")
        reporter.currentfspath = path
