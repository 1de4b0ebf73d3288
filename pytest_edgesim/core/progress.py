"""Where long waits say how they are getting on: one process-wide sink.

Code that makes a user wait (an image build, a Debian base made without a registry) reports
here; whoever shows it sets the sink: the pytest plugin (lines in the terminal, quiet under
``-q``) and the ``edgesim`` command (lines on stderr, none with ``--quiet``). With no sink,
reports go nowhere. Each report is a line and whether it is a *phase* (worth a line of its
own: "building edgesim/gateway:...", a build's "Step 3/9 : RUN ...") or a *detail* (every
other line of a build's output, for whoever wants all of it).

Nothing on the deterministic path reports here.
"""

from __future__ import annotations

from collections.abc import Callable

#: a sink: ``(line, is_phase)``
Sink = Callable[[str, bool], None]

_sink: Sink | None = None


def set_sink(sink: Sink | None) -> Sink | None:
    """Send reports to ``sink`` (None: nowhere); returns the sink it replaces."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def phase(line: str) -> None:
    """Report a step worth a line of its own."""
    if _sink is not None:
        _sink(line, True)


def detail(line: str) -> None:
    """Report a line of detail (a build's output)."""
    if _sink is not None:
        _sink(line, False)
