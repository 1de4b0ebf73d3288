"""End-to-end accounting: which readings reached which destination, and why the rest did not.

A reading is identified by ``(origin, seq)`` for its whole life. A gateway's forward carries
the identities it stands for as its *lineage* (:attr:`~pytest_edgesim.core.packet.Message.sources`:
runs of consecutive seqs per origin), so a reading folded into an aggregate is still counted
when the aggregate reaches the cloud.

:class:`DeliveryLedger` records, per destination (the cloud, each gateway) and per origin,
the set of seqs that arrived as runs of consecutive numbers (:class:`SeqSet`), plus
duplicates and late arrivals; and, per origin, the last drop of each reading by cause. Its
memory is per origin and destination plus one run per gap (a loss or a reading still out of
order), never one entry per delivered reading. ``snapshot`` turns it into
:class:`Deliveries`, a value of counts, which a result carries.
"""

from __future__ import annotations

import fnmatch
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_edgesim.core.topics import topic_matches

#: why a reading did not reach a destination. All but the last three are where the model
#: dropped it (the drop causes of :class:`~pytest_edgesim.core.metrics.summaries.DropCounts`:
#: ``node_down`` a stopped, killed or disconnected node, ``queue_full``, ``offline`` and
#: ``session_lost`` the broker's MQTT sessions); ``no_subscriber``: the broker routed it to
#: nobody (no subscription matched it then: a gateway that was down, say); ``pending``: it
#: reached a gateway that had not forwarded it (queued, being processed, in an aggregate
#: still open, or on its way on) when the run ended; ``unknown``: no drop of it was seen (in
#: flight at the end, or lost where nothing counts: a real broker, a real gateway).
#: ``storage_full``: a gateway's store-and-forward buffer was full (or made full by a
#: ``storage_full`` fault) while its uplink was down; ``asleep``: a device on a duty cycle
#: that drops what is due while it sleeps (see docs/faults.md).
LOST_CAUSES = (
    "loss",
    "partition",
    "queue_overflow",
    "rejected",
    "node_down",
    "queue_full",
    "offline",
    "session_lost",
    "storage_full",
    "asleep",
    "no_subscriber",
    "pending",
    "unknown",
)
_DROP_CAUSES = LOST_CAUSES[:-2]

#: a message's lineage: ``(origin, first_seq, last_seq)`` runs; ``()`` for a forward that
#: says nothing of what it stands for (a gateway that emits no lineage)
Lineage = tuple[tuple[str, int, int], ...]


class SeqSet:
    """A set of sequence numbers kept as sorted, disjoint, non-adjacent runs.

    Adding the next number of a run (the common case) is O(1); anything else is a binary
    search. Memory is one pair of ints per run: per gap, not per number.
    """

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, first: int, last: int) -> int:
        """Add ``first..last`` (inclusive); returns how many of them were not there yet."""
        ends = self.ends
        if ends and first == ends[-1] + 1:
            ends[-1] = last
            return last - first + 1
        if not ends or first > ends[-1] + 1:
            self.starts.append(first)
            ends.append(last)
            return last - first + 1
        starts = self.starts
        # runs that touch or overlap first-1 .. last+1 are merged into one
        low = bisect_left(ends, first - 1)
        high = bisect_right(starts, last + 1)
        if low == high:
            starts.insert(low, first)
            ends.insert(low, last)
            return last - first + 1
        present = sum(
            min(ends[i], last) - max(starts[i], first) + 1
            for i in range(low, high)
            if starts[i] <= last and ends[i] >= first
        )
        merged_first = min(first, starts[low])
        merged_last = max(last, ends[high - 1])
        starts[low:high] = [merged_first]
        ends[low:high] = [merged_last]
        return last - first + 1 - present

    def remove(self, first: int, last: int) -> None:
        """Remove ``first..last`` (inclusive)."""
        ends = self.ends
        if not ends or first > ends[-1]:
            return
        starts = self.starts
        low = bisect_left(ends, first)
        high = bisect_right(starts, last)
        if low >= high:
            return
        kept_starts: list[int] = []
        kept_ends: list[int] = []
        if starts[low] < first:
            kept_starts.append(starts[low])
            kept_ends.append(first - 1)
        if ends[high - 1] > last:
            kept_starts.append(last + 1)
            kept_ends.append(ends[high - 1])
        starts[low:high] = kept_starts
        ends[low:high] = kept_ends

    def __len__(self) -> int:
        return sum(end - start + 1 for start, end in zip(self.starts, self.ends))

    def runs(self) -> Iterator[tuple[int, int]]:
        return zip(self.starts, self.ends)

    def count_in(self, first: int, last: int) -> int:
        """How many of ``first..last`` are in the set."""
        starts, ends = self.starts, self.ends
        low = bisect_left(ends, first)
        high = bisect_right(starts, last)
        return sum(min(ends[i], last) - max(starts[i], first) + 1 for i in range(low, high))


def _gaps(present: SeqSet, sent: int) -> list[tuple[int, int]]:
    """The runs of ``1..sent`` that are not in ``present``."""
    gaps = []
    expected = 1
    for start, end in present.runs():
        if start > sent:
            break
        if start > expected:
            gaps.append((expected, start - 1))
        expected = max(expected, end + 1)
    if expected <= sent:
        gaps.append((expected, sent))
    return gaps


def _overlap(runs: Iterable[tuple[int, int]], other: SeqSet) -> int:
    return sum(other.count_in(first, last) for first, last in runs)


class Source:
    """An origin whose messages are accounted: how many it has published (``sent``, or
    its ``publisher``'s count, read when the ledger is summed up)."""

    __slots__ = ("dropped", "name", "publisher", "sent", "topic")

    def __init__(self, name: str, topic: str | None):
        self.name = name
        self.topic = topic
        self.sent = 0
        #: a node that numbers its messages 1, 2, ... in ``published`` (a sensor): its count
        #: is read at the end, so that publishing costs the ledger nothing
        self.publisher: Any = None
        #: seqs whose last drop had this cause, by cause (filled only when drops happen)
        self.dropped: dict[str, SeqSet] = {}

    def published(self) -> int:
        publisher = self.publisher
        return int(publisher.published) if publisher is not None else self.sent


class Received:
    """What reached one destination from one origin (``source``: its record, if any)."""

    __slots__ = ("duplicated", "highest", "reordered", "seqs", "source")

    def __init__(self, source: Source | None = None) -> None:
        self.source = source
        self.seqs = SeqSet()
        self.highest = 0
        self.duplicated = 0
        self.reordered = 0

    def add(self, first: int, last: int) -> None:
        seqs = self.seqs
        highest = self.highest
        if first > highest:  # in order (the hot case): nothing is late or a copy
            added = seqs.add(first, last)
            self.highest = last
            self.duplicated += last - first + 1 - added
            return
        late_last = min(last, highest)
        late = seqs.add(first, late_last)
        self.reordered += late
        added = late
        if last > highest:
            added += seqs.add(highest + 1, last)
            self.highest = last
        self.duplicated += last - first + 1 - added


class Destination:
    """A node whose arrivals are accounted (the cloud, a gateway)."""

    __slots__ = ("filters", "gateway", "name", "received", "without_lineage")

    def __init__(self, name: str, filters: tuple[str, ...] | None, gateway: bool):
        self.name = name
        #: the topic filters it subscribes to (None: it expects every origin, as the cloud)
        self.filters = filters
        self.gateway = gateway
        self.received: dict[str, Received] = {}
        #: forwards that arrived saying nothing of their readings, by the forwarding origin
        self.without_lineage: dict[str, int] = {}


def _minus(run: tuple[int, int], seqs: SeqSet) -> list[tuple[int, int]]:
    """The parts of ``run`` (first, last) that ``seqs`` does not hold."""
    first, last = run
    pieces = []
    for start, end in seqs.runs():
        if end < first or start > last:
            continue
        if start > first:
            pieces.append((first, start - 1))
        first = max(first, end + 1)
        if first > last:
            return pieces
    pieces.append((first, last))
    return pieces


def _arrived(source: Source, first: int, last: int) -> None:
    """An arrival supersedes the drops before it (a QoS 1 retry got through)."""
    for seqs in source.dropped.values():
        if seqs.ends and first <= seqs.ends[-1]:
            seqs.remove(first, last)


# (the native engine's Python nodes record through a subclass: core/native_nodes.py)
class DeliveryLedger:
    """Where sources, gateways and sinks record what they sent, received and dropped."""

    __slots__ = ("destinations", "sources")

    def __init__(self) -> None:
        self.sources: dict[str, Source] = {}
        self.destinations: dict[str, Destination] = {}

    # --- registration (at bind) ----------------------------------------------------------------
    def source(self, name: str, topic: str | None = None) -> Source:
        """The record of origin ``name`` (made on first use); ``topic``: what it publishes on."""
        source = self.sources.get(name)
        if source is None:
            source = self.sources[name] = Source(name, topic)
        elif topic is not None and source.topic is None:
            source.topic = topic
        return source

    def destination(
        self, name: str, filters: Iterable[str] | None = None, *, gateway: bool = False
    ) -> Destination:
        destination = self.destinations.get(name)
        if destination is None:
            destination = self.destinations[name] = Destination(
                name, None if filters is None else tuple(filters), gateway
            )
        return destination

    # --- the hot path -----------------------------------------------------------------------
    def arrive(
        self, destination: Destination, origin: str, seq: int, sources: Lineage | None
    ) -> None:
        """A message from ``origin`` numbered ``seq`` reached ``destination``; ``sources`` is
        its lineage (None: it is a reading itself). A forward counts as the readings it
        stands for, not as itself; one without lineage is only counted, per gateway."""
        received = destination.received
        if sources is None:
            record = received.get(origin)
            if record is None:
                record = received[origin] = Received(self.sources.get(origin))
            if seq > record.highest:  # the next reading (Received.add's hot case, inlined)
                ends = record.seqs.ends
                if ends and seq == ends[-1] + 1:
                    ends[-1] = seq
                else:
                    record.seqs.starts.append(seq)
                    ends.append(seq)
                record.highest = seq
            else:
                record.add(seq, seq)
            source = record.source
            if source is not None and source.dropped:
                _arrived(source, seq, seq)
            return
        if not sources:
            destination.without_lineage[origin] = destination.without_lineage.get(origin, 0) + 1
            return
        for source_origin, first, last in sources:
            record = received.get(source_origin)
            if record is None:
                record = received[source_origin] = Received(self.sources.get(source_origin))
            record.add(first, last)  # (one per forward's run: not worth inlining)
            source = record.source
            if source is not None and source.dropped:
                _arrived(source, first, last)

    def drop(self, origin: str, seq: int, sources: Lineage | None, cause: str) -> None:
        """A message was dropped; every reading it stands for was, last, dropped by ``cause``."""
        if cause not in _DROP_CAUSES:
            cause = "rejected"
        if sources is None:
            self._dropped(origin, seq, seq, cause)
            return
        for source_origin, first, last in sources:
            self._dropped(source_origin, first, last, cause)

    def abandon(self, destination_name: str, cause: str) -> None:
        """Everything that reached gateway ``destination_name`` and was not dropped already
        is, last, dropped by ``cause`` (it was stopped or killed: what it held is gone). A
        reading that it had forwarded and that arrives later supersedes this, as any
        arrival supersedes an earlier drop."""
        destination = self.destinations.get(destination_name)
        if destination is None:
            return
        for origin, record in destination.received.items():
            source = self.source(origin)
            pieces = list(record.seqs.runs())
            for other, seqs in source.dropped.items():
                if other != cause:
                    pieces = [piece for run in pieces for piece in _minus(run, seqs)]
            if pieces:
                target = source.dropped.get(cause)
                if target is None:
                    target = source.dropped[cause] = SeqSet()
                for first, last in pieces:
                    target.add(first, last)

    def _dropped(self, origin: str, first: int, last: int, cause: str) -> None:
        source = self.source(origin)
        dropped = source.dropped
        for other, other_seqs in dropped.items():
            if other != cause:
                other_seqs.remove(first, last)
        seqs = dropped.get(cause)
        if seqs is None:
            seqs = dropped[cause] = SeqSet()
        seqs.add(first, last)

    # --- the value ---------------------------------------------------------------------------
    def snapshot(self) -> Deliveries:
        gateways = [d for d in self.destinations.values() if d.gateway]
        flows: dict[str, dict[str, Delivery]] = {}
        reached: dict[str, tuple[str, ...]] = {}
        for source in self.sources.values():
            reached[source.name] = tuple(g.name for g in gateways if source.name in g.received)
        for destination in self.destinations.values():
            table: dict[str, Delivery] = {}
            for source in self.sources.values():
                if source.name == destination.name:
                    continue
                record = destination.received.get(source.name)
                if record is None and not self._expects(destination, source):
                    continue
                table[source.name] = self._flow(source, destination, record, gateways)
            flows[destination.name] = table
        without_lineage = {
            d.name: dict(sorted(d.without_lineage.items()))
            for d in self.destinations.values()
            if d.without_lineage
        }
        return Deliveries(flows=flows, reached=reached, without_lineage=without_lineage)

    @staticmethod
    def _expects(destination: Destination, source: Source) -> bool:
        if source.published() == 0:
            return False
        if destination.filters is None:
            return not destination.gateway and source.topic is not None
        return source.topic is not None and any(
            topic_matches(f, source.topic) for f in destination.filters
        )

    @staticmethod
    def _flow(
        source: Source,
        destination: Destination,
        record: Received | None,
        gateways: list[Destination],
    ) -> Delivery:
        sent = source.published()
        if record is None:
            record = Received()
        delivered = record.seqs.count_in(1, sent) if sent else 0
        gaps = _gaps(record.seqs, sent)
        lost = sent - delivered
        causes = dict.fromkeys(LOST_CAUSES, 0)
        for cause in _DROP_CAUSES:
            seqs = source.dropped.get(cause)
            if seqs is not None:
                causes[cause] = _overlap(gaps, seqs)
        accounted = sum(causes.values())
        if not destination.gateway:
            pending = SeqSet()
            for gateway in gateways:
                at_gateway = gateway.received.get(source.name)
                if at_gateway is not None:
                    for first, last in at_gateway.seqs.runs():
                        pending.add(first, last)
            for seqs in source.dropped.values():
                for first, last in seqs.runs():
                    pending.remove(first, last)
            causes["pending"] = _overlap(gaps, pending)
            accounted += causes["pending"]
        causes["unknown"] = lost - accounted
        return Delivery(
            sent=sent,
            delivered=delivered,
            lost=lost,
            duplicated=record.duplicated,
            reordered=record.reordered,
            lost_by_cause={cause: count for cause, count in causes.items() if count},
        )


@dataclass(frozen=True)
class Delivery:
    """How many readings of some origins reached one destination.

    ``sent`` readings published; ``delivered`` distinct ones that arrived; ``lost`` the rest
    (``sent - delivered``), by cause in ``lost_by_cause`` (keys from :data:`LOST_CAUSES`,
    only those that are not 0); ``duplicated`` copies of readings that had already
    arrived; ``reordered`` readings that arrived after a later reading of the same origin;
    ``without_lineage`` forwards that reached the destination from the origins' gateways
    saying nothing of their readings (a black-box gateway), counted in ``delivered``.
    """

    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    lost_by_cause: Mapping[str, int] = field(default_factory=dict, hash=False)
    without_lineage: int = 0

    @property
    def ratio(self) -> float:
        """``delivered / sent`` (``nan`` when nothing was sent)."""
        return self.delivered / self.sent if self.sent else float("nan")

    def __add__(self, other: Delivery) -> Delivery:
        causes = dict.fromkeys(LOST_CAUSES, 0)
        for mapping in (self.lost_by_cause, other.lost_by_cause):
            for cause, count in mapping.items():
                causes[cause] = causes.get(cause, 0) + count
        return Delivery(
            sent=self.sent + other.sent,
            delivered=self.delivered + other.delivered,
            lost=self.lost + other.lost,
            duplicated=self.duplicated + other.duplicated,
            reordered=self.reordered + other.reordered,
            lost_by_cause={cause: count for cause, count in causes.items() if count},
            without_lineage=self.without_lineage + other.without_lineage,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "lost_by_cause": dict(self.lost_by_cause),
            "without_lineage": self.without_lineage,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delivery:
        return cls(
            sent=data["sent"],
            delivered=data["delivered"],
            lost=data["lost"],
            duplicated=data.get("duplicated", 0),
            reordered=data.get("reordered", 0),
            lost_by_cause=dict(data.get("lost_by_cause", {})),
            without_lineage=data.get("without_lineage", 0),
        )


@dataclass(frozen=True)
class Deliveries:
    """Every flow's :class:`Delivery`, by destination then origin: a value.

    ``reached`` names, per origin, the gateways its readings reached; ``without_lineage``
    counts, per destination and forwarding origin, the forwards that carried no lineage.
    """

    flows: Mapping[str, Mapping[str, Delivery]] = field(default_factory=dict)
    reached: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    without_lineage: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def delivery(self, sources: str | Iterable[str], destination: str) -> Delivery:
        """The readings of the origins ``sources`` (a name, a glob such as ``"sensor-*"``, or
        several) that reached ``destination`` (the cloud's name, or a gateway's)."""
        table = self.flows.get(destination)
        if table is None:
            known = ", ".join(self.flows) or "none"
            raise KeyError(f"no destination {destination!r} in these deliveries (known: {known})")
        patterns = [sources] if isinstance(sources, str) else list(sources)
        chosen = [
            origin for origin in table if any(fnmatch.fnmatchcase(origin, p) for p in patterns)
        ]
        total = Delivery()
        for origin in chosen:
            total = total + table[origin]
        return self._credit_without_lineage(total, chosen, destination)

    def _credit_without_lineage(
        self, total: Delivery, origins: list[str], destination: str
    ) -> Delivery:
        """Count forwards without lineage from the origins' gateways as deliveries: their
        readings cannot be told apart, so what is credited is no longer pending but
        delivered, and what stays undelivered has an unknown cause."""
        forwards = self.without_lineage.get(destination)
        if not forwards:
            return total
        gateways = {gateway for origin in origins for gateway in self.reached.get(origin, ())}
        count = sum(n for gateway, n in forwards.items() if gateway in gateways)
        if not count:
            return total
        causes = dict(total.lost_by_cause)
        undetermined = causes.pop("pending", 0) + causes.pop("unknown", 0)
        credit = min(count, undetermined)
        if undetermined - credit:
            causes["unknown"] = undetermined - credit
        return Delivery(
            sent=total.sent,
            delivered=total.delivered + credit,
            lost=total.lost - credit,
            duplicated=total.duplicated,
            reordered=total.reordered,
            lost_by_cause=causes,
            without_lineage=count,
        )

    def destinations(self) -> list[str]:
        return list(self.flows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "flows": {
                destination: {origin: flow.to_dict() for origin, flow in table.items()}
                for destination, table in self.flows.items()
            },
            "reached": {origin: list(gateways) for origin, gateways in self.reached.items()},
            "without_lineage": {d: dict(counts) for d, counts in self.without_lineage.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deliveries:
        return cls(
            flows={
                destination: {origin: Delivery.from_dict(f) for origin, f in table.items()}
                for destination, table in data.get("flows", {}).items()
            },
            reached={origin: tuple(g) for origin, g in data.get("reached", {}).items()},
            without_lineage={
                d: dict(counts) for d, counts in data.get("without_lineage", {}).items()
            },
        )

    def merge(self, other: Deliveries) -> Deliveries:
        """The deliveries of two runs (trials, xdist workers) together: counts summed."""
        flows: dict[str, dict[str, Delivery]] = {d: dict(t) for d, t in self.flows.items()}
        for destination, table in other.flows.items():
            merged = flows.setdefault(destination, {})
            for origin, flow in table.items():
                merged[origin] = merged[origin] + flow if origin in merged else flow
        reached = dict(self.reached)
        for origin, gateways in other.reached.items():
            known = reached.get(origin, ())
            reached[origin] = known + tuple(g for g in gateways if g not in known)
        without: dict[str, dict[str, int]] = {d: dict(c) for d, c in self.without_lineage.items()}
        for destination, counts in other.without_lineage.items():
            target = without.setdefault(destination, {})
            for origin, count in counts.items():
                target[origin] = target.get(origin, 0) + count
        return Deliveries(flows=flows, reached=reached, without_lineage=without)


def lineage_from_json(value: Any) -> Lineage | None:
    """A forward's lineage from its JSON form ``{"origin": [[first, last], ...], ...}`` (None
    when ``value`` is not one: a malformed or absent field)."""
    if not isinstance(value, Mapping):
        return None
    runs: list[tuple[str, int, int]] = []
    for origin, pairs in value.items():
        if type(origin) is not str or type(pairs) is not list:
            return None
        for pair in pairs:
            if type(pair) is not list or len(pair) != 2:
                return None
            first, last = pair
            # (``type(...) is int``: a bool is not a seq)
            if type(first) is not int or type(last) is not int or first > last:
                return None
            runs.append((origin, first, last))
    return tuple(runs)


def lineage_to_json(lineage: Lineage) -> dict[str, list[list[int]]]:
    out: dict[str, list[list[int]]] = {}
    for origin, first, last in lineage:
        out.setdefault(origin, []).append([first, last])
    return out
