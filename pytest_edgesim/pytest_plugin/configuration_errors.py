"""Telling an error of the test (its configuration, its use of the API) from a failure of
the behaviour under test.

A trial ends as pass, fail (the system under test misbehaved) or error (the test or its
set-up is wrong). Errors are never trial outcomes: the test ends at the first one, as an
ERROR, a statistical test gets no pass-rate verdict, and the JSON report says ``error``.

- A configuration error (:func:`configuration_error`: an invalid scenario, an image that
  cannot be had, a required Docker engine that does not answer, a gateway that never
  becomes ready) is the same on every seed and trial: reported as its message alone.
- A usage error (:func:`usage_error`: a :class:`~pytest_edgesim.errors.UsageError` such as
  ``set_link(loss=1.5)``, or a Hypothesis health check or invalid argument) is reported with
  its traceback, which points at the line of the test that is wrong.
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


def usage_error(error: BaseException, *, edgesim_test: bool) -> bool:
    """Whether ``error`` says the test itself is written wrongly: a
    :class:`~pytest_edgesim.errors.UsageError`, or, in an edgesim test, Hypothesis'
    ``FailedHealthCheck`` or ``InvalidArgument`` (a ``@given`` test that uses
    ``edge_scenario`` fails a health check). Other tests' Hypothesis errors stay as pytest
    reports them."""
    from pytest_edgesim.errors import UsageError

    if isinstance(error, UsageError):
        return True
    if not edgesim_test:
        return False
    # a Hypothesis error was raised by Hypothesis, so it is loaded if the error is one
    hypothesis_errors = sys.modules.get("hypothesis.errors")
    return hypothesis_errors is not None and isinstance(
        error, (hypothesis_errors.FailedHealthCheck, hypothesis_errors.InvalidArgument)
    )


def is_configuration_error(report: pytest.TestReport) -> bool:
    """Whether ``report`` is of a phase that an error of the test stopped (a configuration
    or a usage error: the test is an ERROR, not a failure)."""
    return bool(getattr(report, CONFIGURATION_ERROR, False))


def configuration_error_text(nodeid: str, error: BaseException) -> str:
    """The report of a configuration error: its message, and the notes attached to it (a
    Hypothesis falsifying example is one: without it the failing input would be lost)."""
    notes = getattr(error, "__notes__", None) or []
    return "\n".join([f"{nodeid}: {error}", *map(str, notes)])
