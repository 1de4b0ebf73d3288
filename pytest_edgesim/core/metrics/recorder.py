"""Per-node, per-link and per-topic metrics, recorded as the run goes and reported as values.

The recorder costs memory per node, link and topic (counters and one
:class:`~.sketch.LatencySketch` each), never per message. ``snapshot()`` turns
it into :class:`Metrics`, a plain value that can be compared, serialised (JSON, CSV) and
merged across trials or xdist workers.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_edgesim.core.metrics.delivery import DeliveryLedger
from pytest_edgesim.core.metrics.sketch import LatencySketch
from pytest_edgesim.core.metrics.summaries import (
    SESSION_DROP_CAUSES,
    SPARSE_DROP_CAUSES,
    DropCounts,
    LatencySummary,
)
from pytest_edgesim.core.units import TICKS_PER_SECOND


class FlowCounter:
    """Mutable counters of one node, link or topic during a run (hot path: slotted, no dicts)."""

    __slots__ = (
        "bytes",
        "delivered",
        "dropped_loss",
        "dropped_node_down",
        "dropped_overflow",
        "dropped_partition",
        "dropped_rejected",
        "dropped_session",
        "latency",
        "redelivered",
        "sent",
    )

    def __init__(self) -> None:
        self.sent = 0
        self.delivered = 0
        self.dropped_loss = 0
        self.dropped_partition = 0
        self.dropped_overflow = 0
        self.dropped_rejected = 0
        self.dropped_node_down = 0
        #: the broker's session causes (queue_full, offline, session_lost); None until one
        self.dropped_session: list[int] | None = None
        self.redelivered = 0
        self.bytes = 0
        self.latency = LatencySketch()

    def drop(self, cause: str) -> None:
        if cause == "loss":
            self.dropped_loss += 1
        elif cause == "partition":
            self.dropped_partition += 1
        elif cause == "queue_overflow":
            self.dropped_overflow += 1
        elif cause == "node_down":
            self.dropped_node_down += 1
        elif cause in SPARSE_DROP_CAUSES:
            if self.dropped_session is None:
                self.dropped_session = [0] * len(SPARSE_DROP_CAUSES)
            self.dropped_session[SPARSE_DROP_CAUSES.index(cause)] += 1
        else:  # a node's own reason
            self.dropped_rejected += 1

    def add_session_drops(self, other: FlowCounter) -> None:
        if other.dropped_session is not None:
            if self.dropped_session is None:
                self.dropped_session = [0] * len(SPARSE_DROP_CAUSES)
            for index, count in enumerate(other.dropped_session):
                self.dropped_session[index] += count

    def freeze(
        self, duration_s: float, drops: dict[tuple[int, ...], DropCounts] | None = None
    ) -> FlowStats:
        """The counters as a value; ``drops`` shares equal (immutable) drop counts."""
        key: tuple[int, ...] = (
            self.dropped_loss,
            self.dropped_partition,
            self.dropped_overflow,
            self.dropped_rejected,
            self.dropped_node_down,
        )
        if self.dropped_session is not None:
            key += tuple(self.dropped_session)
        dropped = drops.get(key) if drops is not None else None
        if dropped is None:
            dropped = DropCounts(*key)
            if drops is not None:
                drops[key] = dropped
        return FlowStats(
            sent=self.sent,
            delivered=self.delivered,
            dropped=dropped,
            redelivered=self.redelivered,
            bytes=self.bytes,
            latency_ms=self.latency.summary_ms(),
            throughput_per_s=round(self.delivered / duration_s, 6) if duration_s > 0 else 0.0,
        )


class MetricsRecorder:
    """Where the network and the models count what happens (``delivery``: which readings
    reached which destination, see :mod:`.delivery`)."""

    __slots__ = ("delivery", "links", "nodes", "topics")

    def __init__(self) -> None:
        self.delivery = DeliveryLedger()
        self.nodes: dict[str, FlowCounter] = {}
        self.links: dict[str, FlowCounter] = {}
        self.topics: dict[str, FlowCounter] = {}

    def node(self, name: str) -> FlowCounter:
        counter = self.nodes.get(name)
        if counter is None:
            counter = self.nodes[name] = FlowCounter()
        return counter

    def link(self, key: str) -> FlowCounter:
        counter = self.links.get(key)
        if counter is None:
            counter = self.links[key] = FlowCounter()
        return counter

    def topic(self, topic: str) -> FlowCounter:
        counter = self.topics.get(topic)
        if counter is None:
            counter = self.topics[topic] = FlowCounter()
        return counter

    def snapshot(self, duration_ticks: int) -> Metrics:
        duration_s = duration_ticks / TICKS_PER_SECOND
        totals = FlowCounter()
        for counter in self.topics.values():
            totals.sent += counter.sent
            totals.delivered += counter.delivered
            totals.dropped_loss += counter.dropped_loss
            totals.dropped_partition += counter.dropped_partition
            totals.dropped_overflow += counter.dropped_overflow
            totals.dropped_rejected += counter.dropped_rejected
            totals.dropped_node_down += counter.dropped_node_down
            totals.add_session_drops(counter)
            totals.redelivered += counter.redelivered
            totals.bytes += counter.bytes
            totals.latency.merge(counter.latency)
        drops: dict[tuple[int, ...], DropCounts] = {}  # most flows drop 0, 1 or 2
        return Metrics(
            duration_s=duration_s,
            nodes={name: c.freeze(duration_s, drops) for name, c in sorted(self.nodes.items())},
            links={key: c.freeze(duration_s, drops) for key, c in sorted(self.links.items())},
            topics={topic: c.freeze(duration_s, drops) for topic, c in sorted(self.topics.items())},
            totals=totals.freeze(duration_s),
        )


@dataclass(frozen=True, slots=True)
class FlowStats:
    """What one node, link or topic saw.

    For a link: packets put on it (``sent``), that arrived (``delivered``), lost on it;
    ``latency_ms`` is the transit time. For a node: packets it sent and received;
    ``latency_ms`` is the end-to-end latency (publisher to this node) of the application
    messages it received. For a topic: messages published (``sent``), delivered to
    subscribers that consume them (gateways, the cloud; not the broker's relay hop), and
    dropped anywhere on the way; ``latency_ms`` is publisher-to-subscriber.
    """

    sent: int = 0
    delivered: int = 0
    dropped: Mapping[str, int] = field(default_factory=DropCounts)
    redelivered: int = 0
    bytes: int = 0
    latency_ms: Mapping[str, float | int] = field(default_factory=LatencySummary)
    throughput_per_s: float = 0.0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def delivery_ratio(self) -> float:
        """delivered / sent (``nan`` when nothing was sent)."""
        return self.delivered / self.sent if self.sent else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "dropped": dict(self.dropped),
            "redelivered": self.redelivered,
            "bytes": self.bytes,
            "latency_ms": dict(self.latency_ms),
            "throughput_per_s": self.throughput_per_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowStats:
        return cls(
            sent=data["sent"],
            delivered=data["delivered"],
            dropped=DropCounts.from_mapping(data["dropped"]),
            redelivered=data.get("redelivered", 0),
            bytes=data.get("bytes", 0),
            latency_ms=LatencySummary.from_mapping(data["latency_ms"]),
            throughput_per_s=data["throughput_per_s"],
        )


@dataclass(frozen=True)
class Metrics:
    """All metrics of a run: a value, safe to compare, serialise and send between processes."""

    duration_s: float
    nodes: Mapping[str, FlowStats]
    links: Mapping[str, FlowStats]
    topics: Mapping[str, FlowStats]
    totals: FlowStats

    def node(self, name: str) -> FlowStats:
        return self._lookup(self.nodes, name, "node")

    def link(self, src: str, dst: str) -> FlowStats:
        return self._lookup(self.links, f"{src}->{dst}", "link")

    def topic(self, topic: str) -> FlowStats:
        return self._lookup(self.topics, topic, "topic")

    @staticmethod
    def _lookup(table: Mapping[str, FlowStats], key: str, what: str) -> FlowStats:
        try:
            return table[key]
        except KeyError:
            known = ", ".join(list(table)[:10]) + (" ..." if len(table) > 10 else "")
            raise KeyError(f"no {what} {key!r} in these metrics (known: {known})") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration_s,
            "totals": self.totals.to_dict(),
            "nodes": {k: v.to_dict() for k, v in self.nodes.items()},
            "links": {k: v.to_dict() for k, v in self.links.items()},
            "topics": {k: v.to_dict() for k, v in self.topics.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metrics:
        return cls(
            duration_s=data["duration_s"],
            totals=FlowStats.from_dict(data["totals"]),
            nodes={k: FlowStats.from_dict(v) for k, v in data["nodes"].items()},
            links={k: FlowStats.from_dict(v) for k, v in data["links"].items()},
            topics={k: FlowStats.from_dict(v) for k, v in data["topics"].items()},
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    CSV_COLUMNS = (
        "scope",
        "name",
        "sent",
        "delivered",
        "dropped_loss",
        "dropped_partition",
        "dropped_queue_overflow",
        "dropped_rejected",
        "dropped_node_down",
        "dropped_queue_full",
        "dropped_offline",
        "dropped_session_lost",
        "redelivered",
        "bytes",
        "throughput_per_s",
        "latency_count",
        "latency_min_ms",
        "latency_mean_ms",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "latency_max_ms",
    )

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per node, link and topic (and the totals), for CSV and tables."""
        out: list[dict[str, Any]] = []
        scopes: list[tuple[str, Mapping[str, FlowStats]]] = [
            ("total", {"all": self.totals}),
            ("node", self.nodes),
            ("link", self.links),
            ("topic", self.topics),
        ]
        for scope, table in scopes:
            for name, stats in table.items():
                latency = stats.latency_ms
                out.append(
                    {
                        "scope": scope,
                        "name": name,
                        "sent": stats.sent,
                        "delivered": stats.delivered,
                        "dropped_loss": stats.dropped.get("loss", 0),
                        "dropped_partition": stats.dropped.get("partition", 0),
                        "dropped_queue_overflow": stats.dropped.get("queue_overflow", 0),
                        "dropped_rejected": stats.dropped.get("rejected", 0),
                        "dropped_node_down": stats.dropped.get("node_down", 0),
                        **{
                            f"dropped_{cause}": stats.dropped.get(cause, 0)
                            for cause in SESSION_DROP_CAUSES
                        },
                        "redelivered": stats.redelivered,
                        "bytes": stats.bytes,
                        "throughput_per_s": stats.throughput_per_s,
                        "latency_count": latency.get("count", 0),
                        **{
                            f"latency_{key}_ms": latency.get(key, "")
                            for key in ("min", "mean", "p50", "p95", "p99", "max")
                        },
                    }
                )
        return out

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return buffer.getvalue()
