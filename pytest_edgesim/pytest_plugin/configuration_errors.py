"""Telling a user's configuration error from a failure of the behaviour under test.

An invalid scenario, an image that cannot be had or a required Docker engine that does not
answer stops a test the same way on every seed and every trial: the plugin reports it as an
ERROR with its message alone, a statistical test ends at that trial, and the JSON report
says ``error``.
"""

from __future__ import annotations

import sys

import pytest

#: a report attribute (it travels to the xdist controller with the report): the test was
#: stopped by a configuration error (see :func:`configuration_error`)
CONFIGURATION_ERROR = "edgesim_configuration_error"


def configuration_error(error: BaseException) -> bool:
    """Whether ``error`` is the user's configuration, not the behaviour under test: an invalid
    scenario (:class:`~pytest_edgesim.errors.ScenarioError`), a required component that is
    not here (:class:`~pytest_edgesim.errors.RequirementError`), a gateway container that
    never becomes ready (:class:`~pytest_edgesim.errors.SetupError`) or an image that cannot
    be had (:class:`~pytest_edgesim.docker.images.ImageError`: missing, or its build fails)."""
    from pytest_edgesim.errors import RequirementError, ScenarioError, SetupError

    if isinstance(error, (ScenarioError, RequirementError, SetupError)):
        return True
    # an ImageError was raised by that module, so it is loaded if the error is one
    images = sys.modules.get("pytest_edgesim.docker.images")
    return images is not None and isinstance(error, images.ImageError)


def is_configuration_error(report: pytest.TestReport) -> bool:
    """Whether ``report`` is of a phase that a configuration error stopped."""
    return bool(getattr(report, CONFIGURATION_ERROR, False))


def configuration_error_text(nodeid: str, error: BaseException) -> str:
    """The report of a configuration error: its message, and the notes attached to it (a
    Hypothesis falsifying example is one: without it the failing input would be lost)."""
    notes = getattr(error, "__notes__", None) or []
    return "\n".join([f"{nodeid}: {error}", *map(str, notes)])
