"""Running one test item's phases more than once: the only place the plugin uses pytest's
private API.

A statistical test is N trials of one item, each a full setup / call / teardown with fresh
function-scoped fixtures, logged as one test. pytest has no public hook for that, so this
module does what ``_pytest.runner.runtestprotocol`` does for one run, without logging, as
pytest-rerunfailures and pytest-repeat do: ``call_and_report`` for a phase, and a fresh
``FixtureRequest`` before each trial (``_initrequest``) that is dropped after it; and the
``xfail`` mark pytest evaluated for the run (:func:`xfail_in_force`), so that the trials'
verdict, not one trial, meets it. When pytest changes these, this is the module to change.
"""

from __future__ import annotations

from typing import Any

import pytest


def begin_run(item: pytest.Function) -> None:
    """Give ``item`` a fresh fixture request and no captured output before one run."""
    if not item._request:  # type: ignore[truthy-function]
        item._initrequest()
    item._report_sections = []  # each run's captured output on its own reports


def run_phase(
    item: pytest.Item, when: str, nextitem: pytest.Item | None = None
) -> pytest.TestReport:
    """Run ``setup``, ``call`` or ``teardown`` of ``item`` and make its report, logging
    nothing (``nextitem``: how far a teardown goes)."""
    from _pytest.runner import call_and_report

    if when == "teardown":
        return call_and_report(item, "teardown", log=False, nextitem=nextitem)
    return call_and_report(item, when, log=False)  # type: ignore[arg-type]


def end_run(item: pytest.Function) -> None:
    """Drop the run's fixture request and values, so the next run sets them up afresh."""
    item._request = False  # type: ignore[assignment]
    item.funcargs = None  # type: ignore[assignment]


def clear_sections(item: pytest.Item) -> None:
    """Forget the output captured so far (before a report made after the runs)."""
    item._report_sections = []


def xfail_in_force(item: pytest.Item) -> Any:
    """The ``xfail`` mark pytest evaluated for the latest run of ``item`` (its ``reason``,
    ``strict`` and ``raises``), or None: no xfail mark applies, or ``--runxfail``."""
    from _pytest.skipping import xfailed_key

    if item.config.option.runxfail:
        return None
    return item.stash.get(xfailed_key, None)
