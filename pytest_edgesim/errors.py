"""Exception types for mistakes a user can make (as opposed to internal invariants)."""

from __future__ import annotations


class EdgesimError(Exception):
    """Base class of every error pytest-edgesim raises on purpose."""


class ScenarioError(EdgesimError):
    """A scenario (file, dict, override or builder call) is invalid.

    ``problems`` holds one line per problem, each saying where (file, line, field path)
    and what is wrong; ``str()`` joins them so the exception reads well on its own.
    """

    def __init__(self, problems: list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


class SimulationError(EdgesimError):
    """A run cannot go on: a call at the wrong time, or a node that broke the node contract."""


class UsageError(SimulationError, ValueError):
    """A test used the API wrongly (``set_link(loss=1.5)``, ``partition("nosuch", ...)``,
    ``record(nan)``, running to a time already past): the test is wrong, not the system
    under test. The plugin ends the test as an ERROR with this traceback, never as a failed
    trial. (A :class:`SimulationError` and a :class:`ValueError`, as these calls raised
    before.)"""


class RequirementError(EdgesimError):
    """Something a test needs is missing where the run requires it
    (``--edgesim-docker=require`` and no engine answers): the same on every seed and trial."""


class SetupError(EdgesimError):
    """A component a test needs could not be set up (a gateway container that never becomes
    ready): a set-up error, the same on every seed and trial, never a failed trial."""


class FaultError(EdgesimError):
    """A fault (stop, start, restart, kill, pause, resume, disconnect, reconnect) cannot be
    done: an unknown node, a node that cannot undergo it, an impossible transition (starting
    a running node), or the engine refused it (the message says which and why)."""


class FaultUsageError(FaultError, UsageError):
    """A fault the test asked for wrongly: an unknown node or fault, a node that cannot
    undergo it, an impossible transition (starting a running node), a bad duration. A
    :class:`FaultError` (as before) and a :class:`UsageError` (so the test is an error)."""
