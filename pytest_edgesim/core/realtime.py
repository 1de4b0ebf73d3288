"""The wall-clock coordinator for the statistical tier.

The same engine as :class:`~pytest_edgesim.core.engine.Coordinator`, with one override: before
the clock moves to an event's time, :meth:`RealtimeCoordinator.pace` waits until that
moment has come on the wall clock (scaled by ``time_scale``: 2.0 runs twice as fast as
real time). This is the relation SimPy's ``simpy.rt`` has to ``simpy.core``. Events that
are already late run at once; ``max_lag_s`` records the worst lateness, so a report can say
when the machine could not keep up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pytest_edgesim.core.engine import Coordinator
from pytest_edgesim.core.units import TICKS_PER_SECOND


class RealtimeCoordinator(Coordinator):
    paced = True

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        super().__init__()
        self.time_scale = time_scale
        self._clock = clock
        self._sleep = sleep
        self._origin: float | None = None
        self.max_lag_s = 0.0

    def start(self) -> None:
        """Fix the wall-clock moment that virtual time 0 corresponds to (else: the first event)."""
        self._origin = self._clock() - self.now / TICKS_PER_SECOND / self.time_scale

    def wall_time_of(self, ticks: int) -> float:
        if self._origin is None:
            self.start()
        assert self._origin is not None
        return self._origin + ticks / TICKS_PER_SECOND / self.time_scale

    def ticks_at(self, wall: float) -> int:
        """Virtual time (ticks) corresponding to a wall-clock reading of ``clock``."""
        if self._origin is None:
            self.start()
        assert self._origin is not None
        return round((wall - self._origin) * self.time_scale * TICKS_PER_SECOND)

    def pace(self, time: int) -> None:
        due = self.wall_time_of(time)
        remaining = due - self._clock()
        if remaining > 0:
            self._sleep(remaining)
        elif -remaining > self.max_lag_s:
            self.max_lag_s = -remaining
