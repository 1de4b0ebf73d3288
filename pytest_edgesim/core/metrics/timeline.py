"""What a run did over time, and how its latencies spread: small, fixed-size summaries.

:class:`Timeline` holds the messages published, delivered and dropped in each of at most
:data:`TIMELINE_BUCKETS` equal slices of virtual time (the topic totals of
:class:`~pytest_edgesim.core.metrics.recorder.Metrics`, so the slices add up to
``metrics.totals``), and when each partition went down and healed. :class:`LatencyHistogram`
is a latency sketch's counts on a fixed logarithmic grid (:data:`BINS_PER_DECADE` bins per
decade of milliseconds), so histograms of different runs line up bin for bin.

Neither grows with the number of messages: a timeline is three rows of at most
``TIMELINE_BUCKETS`` integers; a histogram, one pair per occupied bin. They are read from
the recorder between slices of the run and from the sketches at the end, never on the
per-message path, and nothing here touches the trace.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_edgesim.core.units import TICKS_PER_SECOND

if TYPE_CHECKING:
    from pytest_edgesim.core.metrics.recorder import MetricsRecorder
    from pytest_edgesim.core.metrics.sketch import LatencySketch
    from pytest_edgesim.core.network import Cut

#: slices of virtual time a timeline keeps; a run longer than planned merges pairs of slices
TIMELINE_BUCKETS = 60
#: histogram bins per decade of milliseconds (bin ``k`` covers ``[10**(k/10), 10**((k+1)/10))`` ms)
BINS_PER_DECADE = 10
#: the lowest bin: 1 microsecond (one tick) and below, zero latency included
LOWEST_BIN = -3 * BINS_PER_DECADE
#: the topics a result keeps a histogram of, besides the totals (the busiest ones)
HISTOGRAM_FLOWS = 8
#: the key of the histogram of every topic together
ALL_FLOWS = "all topics"
_NICE_STEPS = (1, 2, 5)
_SIDE_NAMES_SHOWN = 3


def _nice_bucket_ticks(duration_ticks: int) -> int:
    """A round slice width (1, 2 or 5 times a power of ten ticks) that fits ``duration_ticks``
    into at most :data:`TIMELINE_BUCKETS` slices."""
    wanted = max(1, -(-duration_ticks // TIMELINE_BUCKETS))
    power = 1
    while True:
        for step in _NICE_STEPS:
            if step * power >= wanted:
                return step * power
        power *= 10


@dataclass(frozen=True)
class PartitionSpan:
    """A partition: down at ``down_ticks``, healed at ``up_ticks`` (None: still down at the
    end), between the nodes ``between`` says."""

    down_ticks: int
    up_ticks: int | None
    between: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "down_s": self.down_ticks / TICKS_PER_SECOND,
            "up_s": None if self.up_ticks is None else self.up_ticks / TICKS_PER_SECOND,
            "between": self.between,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartitionSpan:
        up = data.get("up_s")
        return cls(
            round(data["down_s"] * TICKS_PER_SECOND),
            None if up is None else round(up * TICKS_PER_SECOND),
            str(data.get("between", "")),
        )


@dataclass(frozen=True)
class Timeline:
    """Messages per slice of virtual time: slice ``i`` covers
    ``[i * bucket_ticks, (i + 1) * bucket_ticks)``; the last one may end early (at the run's end).
    ``sent``, ``delivered`` and ``dropped`` are the topic totals of the messages in each slice."""

    bucket_ticks: int = 0
    sent: tuple[int, ...] = ()
    delivered: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    partitions: tuple[PartitionSpan, ...] = ()

    @property
    def bucket_s(self) -> float:
        return self.bucket_ticks / TICKS_PER_SECOND

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket_s": self.bucket_s,
            "sent": list(self.sent),
            "delivered": list(self.delivered),
            "dropped": list(self.dropped),
            "partitions": [span.to_dict() for span in self.partitions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Timeline:
        return cls(
            bucket_ticks=round(data.get("bucket_s", 0.0) * TICKS_PER_SECOND),
            sent=tuple(data.get("sent", ())),
            delivered=tuple(data.get("delivered", ())),
            dropped=tuple(data.get("dropped", ())),
            partitions=tuple(PartitionSpan.from_dict(item) for item in data.get("partitions", ())),
        )


class TimelineRecorder:
    """Samples a run's totals at the end of each slice of virtual time (the run advances
    slice by slice: :meth:`next_sample`), and notes partitions as they go down and heal.

    Samples are cumulative; when a run outlasts ``2 * TIMELINE_BUCKETS`` slices, every other
    sample is dropped and the slice doubles, so memory stays fixed whatever the run's length.
    """

    def __init__(self, planned_ticks: int) -> None:
        self.bucket_ticks = _nice_bucket_ticks(max(planned_ticks, 1))
        #: cumulative (sent, delivered, dropped) at the end of each whole slice
        self._samples: list[tuple[int, int, int]] = []
        self._down: dict[int, tuple[int, str]] = {}
        self._spans: list[PartitionSpan] = []
        self._cuts: Sequence[Cut] = ()

    def next_sample(self) -> int:
        """The virtual time (ticks) of the next sample."""
        return (len(self._samples) + 1) * self.bucket_ticks

    def sample(self, metrics: MetricsRecorder) -> None:
        """Take the sample due now (the run has just reached :meth:`next_sample`)."""
        self._samples.append(_totals(metrics))
        if len(self._samples) >= 2 * TIMELINE_BUCKETS:
            self._samples = self._samples[1::2]
            self.bucket_ticks *= 2

    def watch(self, cuts: Sequence[Cut]) -> None:
        """Follow the partitions in ``cuts`` (the network's list, which may grow)."""
        self._cuts = cuts

    def cuts_changed(self, now: int) -> None:
        for cut in self._cuts:
            key = id(cut)  # (only to pair a cut's going down with its healing)
            if cut.down_since is not None and key not in self._down:
                self._down[key] = (cut.down_since, _describe_cut(cut))
            elif cut.down_since is None and key in self._down:
                down, between = self._down.pop(key)
                self._spans.append(PartitionSpan(down, now, between))

    def timeline(self, metrics: MetricsRecorder, now: int) -> Timeline:
        """The timeline of the run so far (virtual time 0..``now``)."""
        samples = list(self._samples)
        whole = len(samples) * self.bucket_ticks
        if now > whole or not samples:
            samples.append(_totals(metrics))
        columns: list[list[int]] = [[], [], []]
        previous = (0, 0, 0)
        for sample in samples:
            for column, value, before in zip(columns, sample, previous):
                column.append(value - before)
            previous = sample
        open_spans = [PartitionSpan(down, None, between) for down, between in self._down.values()]
        spans = sorted([*self._spans, *open_spans], key=lambda span: span.down_ticks)
        return Timeline(
            bucket_ticks=self.bucket_ticks,
            sent=tuple(columns[0]),
            delivered=tuple(columns[1]),
            dropped=tuple(columns[2]),
            partitions=tuple(spans),
        )


def _totals(metrics: MetricsRecorder) -> tuple[int, int, int]:
    sent = delivered = dropped = 0
    for counter in metrics.topics.values():
        sent += counter.sent
        delivered += counter.delivered
        dropped += (
            counter.dropped_loss
            + counter.dropped_partition
            + counter.dropped_overflow
            + counter.dropped_rejected
            + counter.dropped_node_down
        )
        if counter.dropped_session is not None:
            dropped += sum(counter.dropped_session)
    return sent, delivered, dropped


def _describe_side(names: Iterable[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:_SIDE_NAMES_SHOWN])
    if len(ordered) > _SIDE_NAMES_SHOWN:
        shown += f" (+{len(ordered) - _SIDE_NAMES_SHOWN})"
    return shown


def _describe_cut(cut: Cut) -> str:
    return f"{_describe_side(cut.side_a)} | {_describe_side(cut.side_b)}"


# --- latency histograms ------------------------------------------------------------------
def latency_bin(latency_ms: float) -> int:
    """The bin of ``latency_ms`` on the fixed grid."""
    if latency_ms <= 0:
        return LOWEST_BIN
    return max(LOWEST_BIN, math.floor(math.log10(latency_ms) * BINS_PER_DECADE + 1e-9))


def bin_edges_ms(index: int) -> tuple[float, float]:
    """The lower and upper edge of bin ``index``, in milliseconds."""
    return 10.0 ** (index / BINS_PER_DECADE), 10.0 ** ((index + 1) / BINS_PER_DECADE)


@dataclass(frozen=True)
class LatencyHistogram:
    """Latencies on the fixed grid: ``bins`` is ``(bin, count)`` for every occupied bin, in
    order (see :func:`bin_edges_ms`); ``count`` is their sum."""

    bins: tuple[tuple[int, int], ...] = ()

    @property
    def count(self) -> int:
        return sum(count for _, count in self.bins)

    @classmethod
    def of_sketch(cls, sketch: LatencySketch) -> LatencyHistogram:
        counts: dict[int, int] = {}
        for value_ticks, hits in sketch.buckets():
            index = latency_bin(value_ticks / 1000.0)
            counts[index] = counts.get(index, 0) + hits
        return cls(tuple(sorted(counts.items())))

    def to_list(self) -> list[list[int]]:
        return [[index, count] for index, count in self.bins]

    @classmethod
    def from_list(cls, data: Iterable[Sequence[int]]) -> LatencyHistogram:
        return cls(tuple((int(index), int(count)) for index, count in data))


def latency_histograms(metrics: MetricsRecorder) -> dict[str, LatencyHistogram]:
    """Histograms of every topic together (:data:`ALL_FLOWS`) and of the
    :data:`HISTOGRAM_FLOWS` busiest topics (most deliveries; ties by name)."""
    from pytest_edgesim.core.metrics.sketch import LatencySketch

    everything = LatencySketch()
    for counter in metrics.topics.values():
        everything.merge(counter.latency)
    histograms = {ALL_FLOWS: LatencyHistogram.of_sketch(everything)}
    busiest = sorted(
        (item for item in metrics.topics.items() if item[1].latency.count),
        key=lambda item: (-item[1].latency.count, item[0]),
    )
    for topic, counter in sorted(busiest[:HISTOGRAM_FLOWS]):
        histograms[topic] = LatencyHistogram.of_sketch(counter.latency)
    return histograms


@dataclass(frozen=True)
class RunProfile:
    """A run's :class:`Timeline` and its :class:`LatencyHistogram` per flow (topic)."""

    timeline: Timeline = field(default_factory=Timeline)
    latency: Mapping[str, LatencyHistogram] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "timeline": self.timeline.to_dict(),
            "latency_bins_per_decade": BINS_PER_DECADE,
            "latency_histograms": {name: hist.to_list() for name, hist in self.latency.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunProfile:
        return cls(
            timeline=Timeline.from_dict(data.get("timeline", {})),
            latency={
                str(name): LatencyHistogram.from_list(bins)
                for name, bins in data.get("latency_histograms", {}).items()
            },
        )
