"""A streaming latency sketch with a bounded relative error (DDSketch-style log buckets).

Memory grows with the spread of the values (one counter per bucket between the smallest
and largest value seen), never with how many values were added. Counters start at 16 bits
and widen to 64 the first time one would overflow: a network of 100,000 links keeps 100,000
sketches, most of which never count 65,535 values in one bucket. Any quantile it
reports lies within ``RELATIVE_ACCURACY`` (1 %) of a value that was really observed at that
rank; ``min``, ``max``, ``count`` and ``mean`` are exact.
"""

from __future__ import annotations

import math
from array import array
from math import ceil as _ceil
from math import log as _log
from typing import Final

from pytest_edgesim.core.metrics.summaries import LatencySummary

RELATIVE_ACCURACY: Final = 0.01
_GAMMA: Final = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_INV_LOG_GAMMA: Final = 1.0 / math.log(_GAMMA)
_NARROW: Final = "H"  # 16-bit counters while every bucket fits
_WIDE: Final = "Q"
# Every sketch starts with this one empty array and gets its own at its first value (see
# _grow); nothing ever writes to it. Many sketches never see a value: a sensor's own.
_NO_BUCKETS: array[int] = array(_NARROW)


class LatencySketch:
    """Integer latencies (ticks) in; exact count/min/max/mean and 1 %-accurate quantiles out."""

    __slots__ = ("_buckets", "_offset", "_zeros", "count", "maximum", "minimum", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.minimum = 0
        self.maximum = 0
        self._zeros = 0
        self._offset = 0
        self._buckets: array[int] = _NO_BUCKETS

    def add(self, value: int) -> None:
        self.total += value
        count = self.count
        self.count = count + 1
        if count:
            if value > self.maximum:
                self.maximum = value
            elif value < self.minimum:  # (minimum <= maximum: never both)
                self.minimum = value
        else:
            self.minimum = value
            if value > self.maximum:
                self.maximum = value
        if value <= 0:
            self._zeros += 1
            return
        position = _ceil(_log(float(value)) * _INV_LOG_GAMMA) - self._offset
        if position >= 0:
            try:
                self._buckets[position] += 1
                return
            except IndexError:
                pass
            except OverflowError:  # a 16-bit counter is full: widen them all, once
                self._widen()
                self._buckets[position] += 1
                return
        index = position + self._offset
        self._grow(index)
        self._buckets[index - self._offset] += 1  # a new bucket: 0 before, never overflows

    def _widen(self) -> None:
        if self._buckets.typecode != _WIDE:
            self._buckets = array(_WIDE, self._buckets)

    def _grow(self, index: int) -> None:
        buckets = self._buckets
        if not buckets:  # (maybe the shared _NO_BUCKETS: never grown in place)
            self._offset = index
            self._buckets = array(buckets.typecode, [0])
        elif index < self._offset:
            missing = self._offset - index
            self._buckets = array(buckets.typecode, bytes(buckets.itemsize * missing))
            self._buckets.extend(buckets)
            self._offset = index
        else:
            missing = index - self._offset - len(buckets) + 1
            buckets.extend(array(buckets.typecode, bytes(buckets.itemsize * missing)))

    def merge(self, other: LatencySketch) -> None:
        """Add every value ``other`` has seen (used to combine trials and xdist workers)."""
        if other.count == 0:
            return
        if self.count == 0 or other.minimum < self.minimum:
            self.minimum = other.minimum
        self.maximum = max(self.maximum, other.maximum)
        self.count += other.count
        self.total += other.total
        self._zeros += other._zeros
        self._widen()  # merged counts add up: no overflow checks per bucket
        for position, hits in enumerate(other._buckets):
            if hits:
                index = position + other._offset
                if not (0 <= index - self._offset < len(self._buckets)):
                    self._grow(index)
                self._buckets[index - self._offset] += hits

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """The value at quantile ``q`` in [0, 1] (``nan`` when empty)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be between 0 and 1, got {q}")
        if self.count == 0:
            return math.nan
        rank = q * (self.count - 1)
        seen = self._zeros
        if rank < seen:
            return 0.0
        for position, hits in enumerate(self._buckets):
            seen += hits
            if rank < seen:
                estimate = 2.0 * _GAMMA ** (position + self._offset) / (_GAMMA + 1.0)
                return min(max(estimate, float(self.minimum)), float(self.maximum))
        return float(self.maximum)

    def buckets(self) -> list[tuple[float, int]]:
        """``(value, count)`` for every occupied bucket, lowest first: the value (ticks) each
        bucket stands for, within 1 % of every value in it (zero for the values <= 0)."""
        occupied = [(0.0, self._zeros)] if self._zeros else []
        for position, hits in enumerate(self._buckets):
            if hits:
                estimate = 2.0 * _GAMMA ** (position + self._offset) / (_GAMMA + 1.0)
                occupied.append(
                    (min(max(estimate, float(self.minimum)), float(self.maximum)), hits)
                )
        return occupied

    def summary_ms(self) -> LatencySummary:
        """count, min, mean, p50, p95, p99 and max, in milliseconds (ticks are microseconds)."""
        if self.count == 0:
            return LatencySummary(0)
        return LatencySummary(
            self.count,
            min=self.minimum / 1000.0,
            mean=round(self.mean / 1000.0, 6),
            p50=round(self.quantile(0.50) / 1000.0, 6),
            p95=round(self.quantile(0.95) / 1000.0, 6),
            p99=round(self.quantile(0.99) / 1000.0, 6),
            max=self.maximum / 1000.0,
        )
