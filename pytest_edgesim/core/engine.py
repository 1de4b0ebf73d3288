"""The discrete-event coordinator: a virtual clock and one event queue.

Events are ordered by ``(time, sequence)``, where ``sequence`` counts insertions. The order
is total and stable: two events at the same tick run in the order they were scheduled,
never in an order that depends on object identity or hashing. Time is an integer number of
ticks (microseconds, see :mod:`pytest_edgesim.core.units`).

The wall-clock tier reuses this engine: :class:`Coordinator` calls :meth:`pace` before
each event, which does nothing here and sleeps until the event's wall-clock moment in
:class:`pytest_edgesim.core.realtime.RealtimeCoordinator` (as SimPy's ``rt`` module does).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any, ClassVar

from pytest_edgesim.errors import SimulationError, UsageError

Callback = Callable[[Any], None]


class Coordinator:
    """Owns virtual time and runs callbacks in ``(time, sequence)`` order."""

    paced: ClassVar[bool] = False

    def __init__(self) -> None:
        self.now: int = 0
        self.events_processed: int = 0
        self._queue: list[tuple[int, int, Callback, Any]] = []
        self._sequence = 0  # insertions so far: the tie-break at equal times
        self._stop_requested = False

    # scheduling -------------------------------------------------------------------------
    def schedule_at(self, time: int, callback: Callback, arg: Any = None) -> None:
        """Run ``callback(arg)`` at virtual time ``time`` (ticks, not before now)."""
        if time < self.now:
            raise SimulationError(
                f"cannot schedule at t={time} ticks: virtual time is already {self.now}"
            )
        self._sequence = sequence = self._sequence + 1
        heappush(self._queue, (time, sequence, callback, arg))

    def schedule_in(self, delay: int, callback: Callback, arg: Any = None) -> None:
        """Run ``callback(arg)`` ``delay`` ticks from now."""
        self.schedule_at(self.now + delay, callback, arg)

    def peek(self) -> int | None:
        """The time of the next event, or ``None`` when the queue is empty."""
        return self._queue[0][0] if self._queue else None

    @property
    def pending(self) -> int:
        return len(self._queue)

    # running ----------------------------------------------------------------------------
    def step(self) -> bool:
        """Run the next event. Returns ``False`` when there was none."""
        if not self._queue:
            return False
        time, _, callback, arg = heappop(self._queue)
        if self.paced:
            self.pace(time)
        self.now = time
        self.events_processed += 1
        callback(arg)
        return True

    def stop(self) -> None:
        """Ask a running :meth:`run` to return after the current event (time stays there)."""
        self._stop_requested = True

    def run(self, until: int | None = None, *, inclusive: bool = True) -> int:
        """Run every event with time <= ``until`` (< ``until`` when not ``inclusive``);
        then the clock reads ``until``.

        With ``until=None`` the run goes on until the queue is empty. Returns the number of
        events processed by this call. The coordinator can be run again afterwards: this is
        how a test pauses a scenario, changes something, and continues.
        """
        if until is not None and until < self.now:
            raise UsageError(f"cannot run until t={until}: virtual time is already {self.now}")
        queue = self._queue
        pop = heappop
        bounded = until is not None
        limit = 0 if until is None else until if inclusive else until - 1
        paced = self.paced
        processed = 0
        self._stop_requested = False
        try:
            if paced:
                while queue and (not bounded or queue[0][0] <= limit):
                    time, _, callback, arg = pop(queue)
                    self.pace(time)
                    self.now = time
                    processed += 1
                    callback(arg)
                    if self._stop_requested:
                        return processed
            else:
                while queue:
                    event = pop(queue)
                    time = event[0]
                    if bounded and time > limit:
                        heappush(queue, event)  # not due: back where it was in the order
                        break
                    self.now = time
                    processed += 1
                    event[2](event[3])
                    if self._stop_requested:
                        return processed
        finally:
            self.events_processed += processed
        if until is not None:
            if paced:
                self.pace(until)
            self.now = until
        return processed

    def advance_to(self, time: int) -> int:
        """Run every event up to and including ``time`` and leave the clock there."""
        return self.run(until=time)

    def pace(self, time: int) -> None:
        """Hook for the wall-clock tier: called before the clock moves to ``time``."""
