"""Network models: how packets travel between nodes.

:class:`DirectNetworkModel` delivers every packet at once, unharmed.
:class:`LatencyNetworkModel` gives every directed link a profile (base latency, jitter,
loss, bandwidth, reordering) resolved from the scenario's default link and its per-link
rules, and keeps per-link state (FIFO order, the serialisation queue, the Gilbert–Elliott
state). Both honour partitions: a packet is dropped when the cut between its ends is down at
any moment between its send time and its arrival time, and only then.

Each link draws from its own random stream (``link:SRC->DST``), so a change on one link
never shifts the draws of another.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Protocol

from pytest_edgesim.core.packet import PUBLISH, Packet
from pytest_edgesim.core.units import (
    MAX_TICKS,
    TICKS_PER_MS,
    TICKS_PER_SECOND,
    parse_bandwidth,
    parse_duration,
)
from pytest_edgesim.errors import SimulationError, UsageError

if TYPE_CHECKING:
    from pytest_edgesim.core.engine import Coordinator
    from pytest_edgesim.core.metrics.recorder import FlowCounter, MetricsRecorder
    from pytest_edgesim.core.node import Node
    from pytest_edgesim.core.rng import RandomStream, StreamFactory
    from pytest_edgesim.core.scenario.schema import LinkRule, LinkSettings
    from pytest_edgesim.core.trace import TraceRecorder

_MAX_REDRAWS: Final = 64


class PacketReceiver(Protocol):
    """What a link delivers to: a node, or an arrival tap standing for it."""

    def on_packet(self, packet: Packet) -> object: ...


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """The impairments of one directed link, all in ticks, bits per second and probabilities."""

    latency: int = 0
    jitter: str = "none"  # "none" | "uniform" | "normal"
    jitter_ticks: int = 0  # uniform: the half-width; normal: the standard deviation
    loss: str = "none"  # "none" | "bernoulli" | "gilbert_elliott"
    loss_rate: float = 0.0
    p_good_to_bad: float = 0.0
    p_bad_to_good: float = 0.0
    loss_good: float = 0.0
    loss_bad: float = 1.0
    bandwidth_bps: int = 0  # 0: unlimited
    reorder: bool = False

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"latency_ms": self.latency / TICKS_PER_MS}
        if self.jitter != "none":
            out["jitter"] = {"distribution": self.jitter, "ms": self.jitter_ticks / TICKS_PER_MS}
        if self.loss == "bernoulli":
            out["loss"] = self.loss_rate
        elif self.loss == "gilbert_elliott":
            out["loss"] = {
                "model": "gilbert_elliott",
                "p_good_to_bad": self.p_good_to_bad,
                "p_bad_to_good": self.p_bad_to_good,
                "loss_good": self.loss_good,
                "loss_bad": self.loss_bad,
            }
        if self.bandwidth_bps:
            out["bandwidth_bps"] = self.bandwidth_bps
        if self.reorder:
            out["reorder"] = True
        return out


def apply_settings(profile: LinkProfile, settings: LinkSettings) -> LinkProfile:
    """``profile`` with every field that ``settings`` sets replaced."""
    changes: dict[str, Any] = {}
    if settings.latency is not None:
        changes["latency"] = settings.latency
    if settings.jitter is not None:
        jitter = settings.jitter
        if jitter.distribution == "uniform":
            changes.update(jitter="uniform" if jitter.max else "none", jitter_ticks=jitter.max)
        else:
            changes.update(jitter="normal" if jitter.stddev else "none", jitter_ticks=jitter.stddev)
    if settings.loss is not None:
        loss = settings.loss
        if loss.model == "bernoulli":
            changes.update(loss="bernoulli" if loss.rate > 0 else "none", loss_rate=loss.rate)
        else:
            changes.update(
                loss="gilbert_elliott",
                p_good_to_bad=loss.p_good_to_bad,
                p_bad_to_good=loss.p_bad_to_good,
                loss_good=loss.loss_good,
                loss_bad=loss.loss_bad,
            )
    if settings.bandwidth is not None:
        changes["bandwidth_bps"] = settings.bandwidth
    if settings.reorder is not None:
        changes["reorder"] = settings.reorder
    return replace(profile, **changes) if changes else profile


def _ticks_setting(name: str, value: Any, value_ms: Any) -> int | None:
    """A ``set_link`` duration in ticks, from ``name`` (as the YAML takes it) or ``name_ms``."""
    if value is not None and value_ms is not None:
        raise UsageError(f"give {name} or {name}_ms, not both")
    if value is not None:
        try:
            return parse_duration(value)
        except ValueError as error:
            raise UsageError(f"{name} {error}") from None
    if value_ms is None:
        return None
    if (
        isinstance(value_ms, bool)
        or not isinstance(value_ms, (int, float))
        or not 0 <= value_ms <= MAX_TICKS / TICKS_PER_MS
    ):
        raise UsageError(f"{name}_ms must be a number of milliseconds >= 0, got {value_ms!r}")
    return round(value_ms * TICKS_PER_MS)


def _bandwidth_setting(value: Any, value_bps: Any) -> int | None:
    """A ``set_link`` bandwidth in bits per second, from ``bandwidth`` or ``bandwidth_bps``;
    0 lifts the limit."""
    if value is not None and value_bps is not None:
        raise UsageError("give bandwidth or bandwidth_bps, not both")
    chosen, name = (value, "bandwidth") if value is not None else (value_bps, "bandwidth_bps")
    if chosen is None:
        return None
    if chosen == 0 and not isinstance(chosen, bool):
        return 0
    try:
        return parse_bandwidth(chosen)
    except ValueError as error:
        raise UsageError(f"{name} {error}") from None


_GLOB_CHARACTERS = frozenset("*?[")


def resolve_nodes(patterns: str | Iterable[str], node_names: Iterable[str]) -> frozenset[str]:
    """The node names matched by one glob pattern or several (a pattern without ``*``, ``?``
    or ``[`` is a name, looked up rather than matched: a thousand faults each naming one
    sensor do not each match every node's name)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    patterns = list(patterns)
    globs = [pattern for pattern in patterns if _GLOB_CHARACTERS.intersection(pattern)]
    if not isinstance(node_names, (Mapping, set, frozenset)):
        node_names = list(node_names)
    if globs:
        found: set[str] = set()
        for pattern in patterns:  # (fnmatchcase's own test, compiled once per pattern)
            match = re.compile(fnmatch.translate(pattern)).match
            found.update(n for n in node_names if n == pattern or match(n) is not None)
        return frozenset(found)
    if isinstance(node_names, list):
        listed = set(node_names)
        return frozenset(pattern for pattern in patterns if pattern in listed)
    return frozenset(pattern for pattern in patterns if pattern in node_names)


class Cut:
    """A partition between two sets of nodes; down or up, with the time it last healed."""

    __slots__ = ("down_since", "last_healed_at", "one_way", "side_a", "side_b")

    def __init__(self, side_a: frozenset[str], side_b: frozenset[str], one_way: bool = False):
        self.side_a = side_a
        self.side_b = side_b
        #: only the links from ``side_a`` to ``side_b`` are cut (a one-way partition)
        self.one_way = one_way
        self.down_since: int | None = None
        self.last_healed_at = -1

    def separates(self, src: str, dst: str) -> bool:
        a, b = self.side_a, self.side_b
        return (src in a and dst in b) or (not self.one_way and src in b and dst in a)

    def __repr__(self) -> str:
        state = "down" if self.down_since is not None else "up"
        return f"<Cut {sorted(self.side_a)} | {sorted(self.side_b)} {state}>"


class Link:
    """State of one directed link during a run."""

    __slots__ = (
        "busy_until",
        "counter",
        "cuts",
        "dst",
        "dst_counter",
        "dst_node",
        "dst_relays",
        "ge_bad",
        "key",
        "last_arrival",
        "profile",
        "src",
        "src_counter",
        "stream",
    )

    def __init__(self, src: str, dst: str, profile: LinkProfile, stream: RandomStream):
        self.src = src
        self.dst = dst
        self.key = f"{src}->{dst}"
        self.profile = profile
        self.stream = stream
        self.busy_until = 0
        self.last_arrival = 0
        self.ge_bad = False
        self.cuts: tuple[Cut, ...] = ()
        self.counter: FlowCounter = None  # type: ignore[assignment]  # set by the network
        self.src_counter: FlowCounter = None  # type: ignore[assignment]  # the sender's
        # the node, or a tap standing for it (a fault trigger counting its arrivals); typed
        # as the one method used
        self.dst_node: PacketReceiver = None  # type: ignore[assignment]
        self.dst_counter: FlowCounter = None  # type: ignore[assignment]  # the receiver's
        self.dst_relays = False  # the receiver is a relay (the broker's hop)


class NetworkModel:
    """Carries packets between nodes. Subclasses decide each packet's fate and arrival time."""

    def __init__(
        self,
        coordinator: Coordinator,
        streams: StreamFactory,
        metrics: MetricsRecorder,
        trace: TraceRecorder,
        nodes: Mapping[str, Node],
        relays: Iterable[str] = (),
    ):
        self.coordinator = coordinator
        self.streams = streams
        self.metrics = metrics
        self.trace = trace
        self.nodes = nodes
        self.relays = frozenset(relays)
        self.links: dict[tuple[str, str], Link] = {}
        self.cuts: list[Cut] = []
        self._cut_watchers: list[Callable[[], None]] = []
        self._drop_watchers: dict[tuple[str, str], list[Callable[[int], None]]] = {}
        self._drops_seen: dict[tuple[str, str], int] = {}
        self._watching_drops = False
        self._arrival_taps: dict[str, _ArrivalTap] = {}
        #: node -> the links from or to it (a new cut looks at the links of its smaller side)
        self._links_of: dict[str, list[Link]] = {}
        self._cuts_by_sides: dict[tuple[frozenset[str], frozenset[str], bool], Cut] = {}
        self._pinned: list[tuple[frozenset[str], frozenset[str], LinkProfile]] = []
        self._node_counters = {name: metrics.node(name) for name in nodes}
        self._topic_counters = metrics.topics  # read-only here: a miss goes through metrics
        self._trace: TraceRecorder | None = trace if trace.enabled else None
        self._deliver_callback = self._deliver  # bound once: scheduled for every packet

    # --- link profiles --------------------------------------------------------------------
    def profile_for(self, src: str, dst: str) -> LinkProfile:
        return LinkProfile()

    def link(self, src: str, dst: str) -> Link:
        """The directed link ``src -> dst`` (opened on first use)."""
        found = self.links.get((src, dst))
        return found if found is not None else self._open(src, dst)

    def _open(self, src: str, dst: str) -> Link:
        if dst not in self.nodes:
            raise SimulationError(f"{src} sent a packet to {dst!r}, which is not a node")
        profile = self.profile_for(src, dst)
        for sources, targets, pinned in self._pinned:
            if src in sources and dst in targets:
                profile = pinned
        link = Link(src, dst, profile, self.streams(f"link:{src}->{dst}"))
        link.cuts = tuple(c for c in self.cuts if c.separates(src, dst))
        link.counter = self.metrics.link(link.key)
        link.src_counter = self._node_counters[src]
        link.dst_node = self._arrival_taps.get(dst) or self.nodes[dst]
        link.dst_counter = self._node_counters[dst]
        link.dst_relays = dst in self.relays
        self.links[(src, dst)] = link
        self._links_of.setdefault(src, []).append(link)
        if dst != src:
            self._links_of.setdefault(dst, []).append(link)
        return link

    def _names(self, spec: str | Iterable[str]) -> frozenset[str]:
        names = resolve_nodes(spec, self.nodes)
        if not names:
            raise UsageError(f"{spec!r} matches no node (nodes: {', '.join(self.nodes)})")
        return names

    def set_link(
        self,
        a: str | Sequence[str],
        b: str | Sequence[str],
        *,
        # (Any: the checks below say what is wrong with a value of another type)
        latency: Any = None,
        jitter: Any = None,
        bandwidth: Any = None,
        latency_ms: Any = None,
        jitter_ms: Any = None,
        loss: Any = None,
        bandwidth_bps: Any = None,
        reorder: bool | None = None,
        bidirectional: bool = True,
    ) -> None:
        """Change the links between ``a`` and ``b`` (names or globs) from now on.

        ``latency``, ``jitter`` and ``bandwidth`` take what the scenario YAML takes
        (``"40ms"`` or seconds as a number, ``"1Mbps"``); ``latency_ms``, ``jitter_ms`` and
        ``bandwidth_bps`` are the same settings as plain numbers in those units.
        """
        sources, targets = self._names(a), self._names(b)
        latency_ticks = _ticks_setting("latency", latency, latency_ms)
        jitter_ticks = _ticks_setting("jitter", jitter, jitter_ms)
        bits_per_s = _bandwidth_setting(bandwidth, bandwidth_bps)
        if loss is not None and not (
            isinstance(loss, (int, float)) and not isinstance(loss, bool) and 0.0 <= loss <= 1.0
        ):
            raise UsageError(f"loss must be between 0 and 1, got {loss!r}")
        pairs = [(sources, targets)] + ([(targets, sources)] if bidirectional else [])
        for from_set, to_set in pairs:
            for src in sorted(from_set):
                for dst in sorted(to_set):
                    if src == dst:
                        continue
                    link = self.link(src, dst)
                    changes: dict[str, Any] = {}
                    if latency_ticks is not None:
                        changes["latency"] = latency_ticks
                    if jitter_ticks is not None:
                        changes["jitter"] = "uniform" if jitter_ticks > 0 else "none"
                        changes["jitter_ticks"] = jitter_ticks
                    if loss is not None:
                        changes.update(loss="bernoulli" if loss > 0 else "none", loss_rate=loss)
                    if bits_per_s is not None:
                        changes["bandwidth_bps"] = bits_per_s
                    if reorder is not None:
                        changes["reorder"] = reorder
                    link.profile = replace(link.profile, **changes)
                    self._pinned.append((frozenset([src]), frozenset([dst]), link.profile))

    # --- partitions -----------------------------------------------------------------------
    def add_cut(self, side_a: frozenset[str], side_b: frozenset[str], one_way: bool = False) -> Cut:
        cut = Cut(side_a, side_b, one_way)
        self.cuts.append(cut)
        smaller = side_a if len(side_a) <= len(side_b) else side_b
        seen: set[tuple[str, str]] = set()
        for node in sorted(smaller):
            for link in self._links_of.get(node, ()):
                pair = (link.src, link.dst)
                if pair not in seen and cut.separates(*pair):
                    seen.add(pair)
                    link.cuts = (*link.cuts, cut)
        return cut

    def partition(self, a: str | Sequence[str], b: str | Sequence[str]) -> Cut:
        """Cut every link between ``a`` and ``b`` (names or globs) now, until healed."""
        side_a, side_b = self._names(a), self._names(b)
        for cut in self.cuts:
            if {cut.side_a, cut.side_b} == {side_a, side_b}:
                break
        else:
            cut = self.add_cut(side_a, side_b)
        self.cut_down(cut)
        return cut

    def heal(
        self, a: str | Sequence[str] | None = None, b: str | Sequence[str] | None = None
    ) -> int:
        """Heal the cuts between ``a`` and ``b`` (all cuts when both are None); returns how many."""
        healed = 0
        for cut in self.cuts:
            if cut.down_since is None:
                continue
            if a is None and b is None:
                hit = True
            else:
                side_a = self._names(a) if a is not None else None
                side_b = self._names(b) if b is not None else None
                hit = all(
                    side is None or side <= cut.side_a or side <= cut.side_b
                    for side in (side_a, side_b)
                )
            if hit:
                self.cut_up(cut)
                healed += 1
        return healed

    def cut_between(
        self, side_a: frozenset[str], side_b: frozenset[str], one_way: bool = False
    ) -> Cut:
        """The cut between these sides (made once: a schedule that cuts the same sides a
        thousand times gives the links one cut to check, not a thousand)."""
        key = (side_a, side_b, one_way)
        cut = self._cuts_by_sides.get(key)
        if cut is None:
            cut = self._cuts_by_sides[key] = self.add_cut(side_a, side_b, one_way)
            if not one_way:
                self._cuts_by_sides[(side_b, side_a, one_way)] = cut
        return cut

    def link_profiles(
        self, sources: frozenset[str], targets: frozenset[str]
    ) -> dict[tuple[str, str], LinkProfile]:
        """The profile of every directed link from ``sources`` to ``targets`` now."""
        return {
            (src, dst): self.link(src, dst).profile
            for src in sorted(sources)
            for dst in sorted(targets)
            if src != dst
        }

    def restore_profiles(self, profiles: Mapping[tuple[str, str], LinkProfile]) -> None:
        """Give each link its profile back (what :meth:`link_profiles` returned)."""
        for (src, dst), profile in profiles.items():
            self.link(src, dst).profile = profile
            self._pinned.append((frozenset([src]), frozenset([dst]), profile))

    def watch_drops(self, link: tuple[str, str], callback: Callable[[int], None]) -> None:
        """Call ``callback(count)`` each time the link ``(src, dst)`` drops a packet."""
        self._drop_watchers.setdefault(link, []).append(callback)
        self._watching_drops = True

    def watch_arrivals(self, node: str, callback: Callable[[int], None]) -> None:
        """Call ``callback(count)`` each time a PUBLISH reaches ``node`` (after it took it)."""
        tap = self._arrival_taps.get(node)
        if tap is None:
            tap = self._arrival_taps[node] = _ArrivalTap(self.nodes[node])
            for (_, dst), link in self.links.items():
                if dst == node:
                    link.dst_node = tap
        tap.watchers.append(callback)

    def watch_cuts(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` each time a cut goes down or heals (after the change)."""
        self._cut_watchers.append(callback)

    def cut_down(self, cut: Cut) -> None:
        if cut.down_since is None:
            cut.down_since = self.coordinator.now
            for watcher in self._cut_watchers:
                watcher()

    def cut_up(self, cut: Cut) -> None:
        if cut.down_since is not None:
            cut.down_since = None
            cut.last_healed_at = self.coordinator.now
            for watcher in self._cut_watchers:
                watcher()

    def is_partitioned(self, src: str, dst: str) -> bool:
        return any(c.down_since is not None and c.separates(src, dst) for c in self.cuts)

    # --- the hot path ---------------------------------------------------------------------
    def transmit(self, packet: Packet) -> None:
        raise NotImplementedError

    def _drop(self, link: Link, packet: Packet, cause: str, now: int) -> None:
        link.counter.drop(cause)
        self._node_counters[link.src].drop(cause)
        if packet.kind == PUBLISH:
            message = packet.message
            self.metrics.topic(message.topic).drop(cause)
            self.metrics.delivery.drop(message.origin, message.seq, message.sources, cause)
        if self._trace is not None:
            message = packet.message
            self._trace.record(
                now,
                "drop",
                link.src,
                link.dst,
                message.topic,
                message.message_id,
                f"{packet.kind}:{cause}",
            )
        if self._watching_drops:
            self._dropped_on((link.src, link.dst))

    def _dropped_on(self, pair: tuple[str, str]) -> None:
        watchers = self._drop_watchers.get(pair)
        if watchers:
            count = self._drops_seen[pair] = self._drops_seen.get(pair, 0) + 1
            for watcher in tuple(watchers):
                watcher(count)

    def _deliver(self, item: tuple[Link, Packet]) -> None:
        link, packet = item
        now = self.coordinator.now
        if link.cuts:
            sent_at = packet.sent_at
            for cut in link.cuts:
                if cut.down_since is not None or cut.last_healed_at > sent_at:
                    self._drop(link, packet, "partition", now)
                    return
        counter = link.counter
        counter.delivered += 1
        counter.latency.add(now - packet.sent_at)
        message = packet.message
        dst = link.dst
        if packet.kind == PUBLISH:
            node_counter = link.dst_counter
            node_counter.delivered += 1
            duplicate = packet.duplicate  # a QoS 1 retransmission (it may be the only copy)
            if duplicate:
                node_counter.redelivered += 1
            if not link.dst_relays:
                latency = now - message.created_at
                node_counter.latency.add(latency)
                topic = message.topic
                topic_counter = self._topic_counters.get(topic) or self.metrics.topic(topic)
                topic_counter.delivered += 1
                if duplicate:
                    topic_counter.redelivered += 1
                topic_counter.latency.add(latency)
            trace = self._trace
            if trace is not None:
                trace.record(
                    now,
                    "deliver",
                    dst,
                    link.src,
                    message.topic,
                    message.message_id,
                    "dup" if duplicate else "",
                )
        elif self._trace is not None:
            self._trace.record(
                now,
                "ack",
                dst,
                link.src,
                message.topic,
                message.message_id,
                str(packet.packet_id),
            )
        link.dst_node.on_packet(packet)


class _ArrivalTap:
    """Stands for a node on its inbound links while a fault trigger counts its arrivals
    (only then: a run without such a trigger delivers to the node itself)."""

    __slots__ = ("count", "node", "watchers")

    def __init__(self, node: Node):
        self.node = node
        self.count = 0
        self.watchers: list[Callable[[int], None]] = []

    def on_packet(self, packet: Packet) -> object:
        self.node.on_packet(packet)
        if packet.kind == PUBLISH:
            self.count += 1
            for watcher in tuple(self.watchers):
                watcher(self.count)
        return None


class DirectNetworkModel(NetworkModel):
    """Zero delay, no loss: every packet arrives at the moment it is sent (partitions still cut)."""

    def transmit(self, packet: Packet) -> None:
        link = self.links.get((packet.src, packet.dst)) or self._open(packet.src, packet.dst)
        now = self.coordinator.now
        packet.sent_at = now
        counter = link.counter
        counter.sent += 1
        counter.bytes += packet.size_bytes
        if packet.duplicate:
            counter.redelivered += 1
        self._node_counters[link.src].sent += 1
        if link.cuts and any(c.down_since is not None for c in link.cuts):
            self._drop(link, packet, "partition", now)
            return
        self.coordinator.schedule_at(now, self._deliver, (link, packet))


class LatencyNetworkModel(NetworkModel):
    """Latency, jitter, loss, bandwidth and FIFO order per directed link."""

    def __init__(
        self,
        coordinator: Coordinator,
        streams: StreamFactory,
        metrics: MetricsRecorder,
        trace: TraceRecorder,
        nodes: Mapping[str, Node],
        relays: Iterable[str] = (),
        *,
        default: LinkSettings | None = None,
        rules: Sequence[LinkRule] = (),
    ):
        super().__init__(coordinator, streams, metrics, trace, nodes, relays)
        self.default_profile = apply_settings(LinkProfile(), default) if default else LinkProfile()
        self.rules = list(rules)
        self._rule_sides = [
            (resolve_nodes(rule.from_, nodes), resolve_nodes(rule.to, nodes)) for rule in self.rules
        ]
        self._profiles: dict[tuple[int, ...], LinkProfile] = {}

    def profile_for(self, src: str, dst: str) -> LinkProfile:
        """Default settings, then every matching rule in order (later rules win field by field)."""
        matching = []
        for index, (rule, (sources, targets)) in enumerate(zip(self.rules, self._rule_sides)):
            if (src in sources and dst in targets) or (
                rule.bidirectional and src in targets and dst in sources
            ):
                matching.append(index)
        key = tuple(matching)
        profile = self._profiles.get(key)
        if profile is None:
            profile = self.default_profile
            for index in matching:
                profile = apply_settings(profile, self.rules[index])
            self._profiles[key] = profile
        return profile

    def transmit(self, packet: Packet) -> None:
        src = packet.src
        dst = packet.dst
        link = self.links.get((src, dst)) or self._open(src, dst)
        coordinator = self.coordinator
        now = coordinator.now
        packet.sent_at = now
        counter = link.counter
        counter.sent += 1
        if packet.kind == PUBLISH:
            message = packet.message
            size = message.size_bytes + len(message.topic) + 4
        else:
            size = 4  # a PUBACK (see Packet.size_bytes)
        counter.bytes += size
        if packet.duplicate:
            counter.redelivered += 1
        link.src_counter.sent += 1
        if link.cuts and any(c.down_since is not None for c in link.cuts):
            self._drop(link, packet, "partition", now)
            return
        profile = link.profile
        # Serialisation: the link sends one packet at a time at its bandwidth.
        departure = now
        if profile.bandwidth_bps:
            start = link.busy_until if link.busy_until > now else now
            departure = start + (size * 8 * TICKS_PER_SECOND) // profile.bandwidth_bps
            link.busy_until = departure
        # Loss, after serialisation: a lost packet still occupied the link.
        loss = profile.loss
        if loss != "none":
            stream = link.stream
            if loss == "bernoulli":
                lost = stream.random() < profile.loss_rate
            else:
                if link.ge_bad:
                    if stream.random() < profile.p_bad_to_good:
                        link.ge_bad = False
                elif stream.random() < profile.p_good_to_bad:
                    link.ge_bad = True
                probability = profile.loss_bad if link.ge_bad else profile.loss_good
                lost = probability >= 1.0 or (probability > 0.0 and stream.random() < probability)
            if lost:
                self._drop(link, packet, "loss", now)
                return
        delay = profile.latency
        jitter = profile.jitter
        if jitter != "none":
            # the first draw here, the rare redraws (a negative value) in _jittered
            if jitter == "normal":
                value = link.stream.normal(delay, profile.jitter_ticks)
            else:
                value = delay + profile.jitter_ticks * (2.0 * link.stream.random() - 1.0)
            delay = round(value) if value >= 0.0 else self._jittered(link, profile, 1)
        arrival = departure + delay
        if not profile.reorder:
            if arrival < link.last_arrival:
                arrival = link.last_arrival
            link.last_arrival = arrival
        coordinator.schedule_at(arrival, self._deliver_callback, (link, packet))

    @staticmethod
    def _jittered(link: Link, profile: LinkProfile, drawn: int = 0) -> int:
        """Base latency plus jitter, drawn from the distribution truncated at zero
        (``drawn``: how many draws were already rejected)."""
        stream = link.stream
        base = profile.latency
        spread = profile.jitter_ticks
        for _ in range(_MAX_REDRAWS - drawn):
            if profile.jitter == "uniform":
                value = base + spread * (2.0 * stream.random() - 1.0)
            else:
                value = stream.normal(base, spread)
            if value >= 0.0:
                return round(value)
        return 0


NetworkFactory = Callable[..., NetworkModel]
