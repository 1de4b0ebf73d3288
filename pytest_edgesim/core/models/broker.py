"""The broker model: MQTT routing with wildcards, QoS 0/1, retained messages, a processing delay.

The broker is a single FIFO server (as Mosquitto is single-threaded): each PUBLISH waits
for the ones before it, then takes one processing delay, then is routed to every matching
subscription at ``min(publish QoS, subscription QoS)``. Sessions and subscriptions are set
up at the start of the run (SUBSCRIBE packets are not simulated).

Faults (:meth:`BrokerModel.apply_fault`) model Mosquitto without persistence and clients with
clean sessions: a stopped or killed broker loses its subscriptions, retained messages,
in-flight QoS 1 state and the messages waiting for processing, and drops what reaches it
(``node_down``); started again, its clients re-subscribe at once (no reconnect back-off is
modelled). A paused broker holds what reaches it and what waits for processing until resumed.

A subscriber whose MQTT session is modelled (:meth:`BrokerModel.open_session`, a gateway's
``session:``) or any subscriber when ``max_inflight_messages`` is set has a
:class:`ClientSession` here, as Mosquitto keeps one per client: at most
``max_inflight_messages`` QoS 1 messages in flight to it, the rest queued in order up to
``max_queued_messages`` (dropped beyond: ``queue_full``). A modelled session goes offline
when a partition has cut the client off from the broker for 1.5 x its keep-alive, and
comes back the moment the partition heals (the client reconnects). Offline, a persistent
session (``clean: false``) keeps its subscriptions, holds its in-flight messages and queues
QoS 1 messages (QoS 0 too with ``queue_qos0_messages``), all delivered in order on
reconnection (offline, what it holds counts towards ``max_queued_messages``, as Mosquitto
counts it); a clean session loses what it had in flight or queued (``session_lost``) and
what is published while it is away (``offline``), and on reconnection subscribes again,
which delivers the retained messages again. A persistent session with an ``expiry`` (MQTT
5's session expiry interval) that stays offline that long ends as a clean one does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_edgesim.core.models.delays import make_delay_sampler
from pytest_edgesim.core.models.session import Session
from pytest_edgesim.core.node import Node
from pytest_edgesim.core.packet import PUBACK, PUBLISH, Packet
from pytest_edgesim.core.topics import TopicIndex, topic_matches

if TYPE_CHECKING:
    from pytest_edgesim.core.metrics.recorder import FlowCounter
    from pytest_edgesim.core.node import NodeContext
    from pytest_edgesim.core.packet import Message
    from pytest_edgesim.core.scenario.schema import BrokerSpec


class ClientSession:
    """The broker's state of one client: in flight, queued, online or not (see the module)."""

    __slots__ = (
        "clean",
        "connected",
        "expired",
        "expiry",
        "filters",
        "generation",
        "grace",
        "held",
        "inflight",
        "modelled",
        "name",
        "queue",
        "reachable",
    )

    def __init__(self, name: str):
        self.name = name
        #: whether the connection is modelled (it can go offline); else only the limits hold
        self.modelled = False
        self.clean = True
        #: how long a partition must last before the broker gives up on the client (ticks)
        self.grace = 0
        #: MQTT 5's session expiry interval (ticks) of a persistent session, or None
        self.expiry: int | None = None
        #: the broker discarded the session (it expired while the client was away)
        self.expired = False
        self.connected = True
        self.reachable = True
        self.generation = 0  # bumped at each change of reachability (stale timers see it)
        #: packet id -> message: QoS 1 messages sent and not yet acknowledged, in send order
        self.inflight: dict[int, Message] = {}
        #: what was in flight when the client went offline, sent again on reconnection
        self.held: list[Message] = []
        #: (message, QoS) waiting for an in-flight slot or for the client to come back
        self.queue: deque[tuple[Message, int]] = deque()
        self.filters: list[tuple[str, int]] = []


class BrokerModel(Node):
    supported_faults: ClassVar[tuple[str, ...]] = ("stop", "kill", "start", "pause", "resume")

    supported_conditions: ClassVar[tuple[str, ...]] = ("persistence",)

    def __init__(self, name: str, spec: BrokerSpec):
        super().__init__(name)
        self.spec = spec
        self.index = TopicIndex()
        self.retained: dict[str, Message] = {}
        self.routed = 0
        self._busy_until = 0
        #: False while stopped or killed (clients then neither subscribe nor reach it)
        self.up = True
        #: a fault's broker_restart with persistence: the next stop keeps what Mosquitto's
        #: persistence file would (retained messages, persistent sessions' subscriptions)
        self.persistent_restart = False
        self._kept: tuple[dict[str, Any], list[tuple[str, str, int]]] | None = None
        #: ``(subscriber, filter)`` for each subscription, when a fault trigger waits for one
        self.subscription_watcher: Callable[[str, str], None] | None = None
        self._impaired = False  # stopped or paused: arrivals take _impaired_packet
        self._paused = False
        self._held: list[Packet] = []
        self._held_routes: list[Message] = []
        self._queued = 0  # messages scheduled for routing and not routed yet
        self._stale = 0  # of those, how many died with a stop (the first ones: FIFO)
        self.restarts = 0
        self.dropped_down = 0
        #: the clients with a session here (empty unless sessions or limits are used)
        self.clients: dict[str, ClientSession] = {}
        self._watching = False

    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        self._session = Session(self.name, context, self.spec.retry_interval)
        self._delay = make_delay_sampler(self.spec.processing_delay, context.stream("processing"))
        self._constant_zero = (
            self.spec.processing_delay.distribution == "constant"
            and self.spec.processing_delay.value == 0
        )
        self._broker_counter = context.metrics.node(self.name)

    def open_session(
        self, client: str, *, clean: bool, keepalive: int, expiry: int | None = None
    ) -> ClientSession:
        """Model ``client``'s connection: it goes offline after a partition of 1.5 x
        ``keepalive`` ticks, and ``clean`` says what its session keeps meanwhile (for
        ``expiry`` ticks at most, MQTT 5's session expiry interval)."""
        session = self._client(client)
        session.modelled = True
        session.clean = clean
        session.grace = keepalive * 3 // 2
        session.expiry = expiry
        context = self.context
        if not self._watching and context is not None and context.network is not None:
            context.network.watch_cuts(self._cuts_changed)
            self._watching = True
        return session

    def _client(self, name: str) -> ClientSession:
        session = self.clients.get(name)
        if session is None:
            session = self.clients[name] = ClientSession(name)
        return session

    def subscribe(self, subscriber: str, topic_filter: str, qos: int) -> None:
        """Add a subscription; retained messages that match are delivered at once."""
        self.index.subscribe(topic_filter, (subscriber, qos))
        client = self.clients.get(subscriber)
        if client is None and self.spec.max_inflight_messages:
            client = self._client(subscriber)
        if client is not None:
            client.filters.append((topic_filter, qos))
        self._deliver_retained(subscriber, topic_filter, qos)
        if self.subscription_watcher is not None:
            self.subscription_watcher(subscriber, topic_filter)

    def set_condition(self, condition: str, setting: Any) -> str:
        """``persistence``: the next stop or kill keeps the retained messages and the
        subscriptions of persistent sessions (``clean: false``), as Mosquitto's
        ``persistence true`` does; the start after restores them."""
        assert condition == "persistence", condition
        self.persistent_restart = bool(setting)
        return ""

    def _deliver_retained(self, subscriber: str, topic_filter: str, qos: int) -> None:
        client = self.clients.get(subscriber)
        for topic in sorted(self.retained):
            if topic_matches(topic_filter, topic):
                message = self.retained[topic]
                if client is not None:
                    self._offer(client, message, min(message.qos, qos))
                else:
                    self._session.publish(subscriber, message, min(message.qos, qos))

    def unsubscribe(self, subscriber: str, topic_filter: str, qos: int) -> None:
        self.index.unsubscribe(topic_filter, (subscriber, qos))
        client = self.clients.get(subscriber)
        if client is not None and (topic_filter, qos) in client.filters:
            client.filters.remove((topic_filter, qos))

    def on_packet(self, packet: Packet) -> None:
        if self._impaired:
            self._impaired_packet(packet)
            return
        if packet.kind == PUBACK:
            if self.clients:
                self._acknowledged(packet.packet_id)
            self._session.acknowledge(packet.packet_id)
            return
        if packet.qos == 1:
            self._session.reply_puback(packet)
        if self._constant_zero:
            self.route(packet.message)
            return
        context = self.context
        assert context is not None
        now = context.coordinator.now
        start = self._busy_until if self._busy_until > now else now
        self._busy_until = start + self._delay()
        self._queued += 1
        context.call_at(self._busy_until, self._route_queued, packet.message)

    def _route_queued(self, message: Message) -> None:
        self._queued -= 1
        if self._stale:  # it was waiting when the broker stopped
            self._stale -= 1
            return
        if self._paused:
            self._held_routes.append(message)
            return
        self.route(message)

    def route(self, message: Message) -> None:
        """Deliver ``message`` to every matching subscription (and keep it if retained)."""
        if message.retain:
            if message.payload is None or message.payload == b"":
                self.retained.pop(message.topic, None)
            else:
                self.retained[message.topic] = message
        self.routed += 1
        session = self._session
        qos = message.qos
        # the index holds (subscriber, qos) entries (see subscribe)
        entries: tuple[tuple[str, int], ...] = self.index.matching(message.topic)  # type: ignore[assignment]
        if not entries:  # MQTT discards what no subscription matches (the ledger says so)
            context = self.context
            assert context is not None
            context.metrics.delivery.drop(
                message.origin, message.seq, message.sources, "no_subscriber"
            )
            return
        clients = self.clients
        for subscriber, subscription_qos in entries:
            if clients:
                client = clients.get(subscriber)
                if client is not None:
                    self._offer(client, message, 0 if qos == 0 or subscription_qos == 0 else 1)
                    continue
            if qos == 0 or subscription_qos == 0:
                # QoS 0: what Session.publish does, without the call
                session.send(Packet(PUBLISH, session.name, subscriber, message))
            else:
                session.publish(subscriber, message, 1)

    # --- client sessions ---------------------------------------------------------------------
    def _offer(self, client: ClientSession, message: Message, qos: int) -> None:
        """Send ``message`` to ``client`` now, queue it, or drop it (by cause)."""
        if not client.connected:
            if client.clean or client.expired:
                self._drop(client, message, "offline")
            elif qos == 1 or self.spec.queue_qos0_messages:
                self._enqueue(client, message, qos)
            else:
                self._drop(client, message, "offline")
            return
        if qos == 0:
            self._session.send(Packet(PUBLISH, self.name, client.name, message))
            return
        limit = self.spec.max_inflight_messages
        if client.queue or (limit and len(client.inflight) >= limit):
            self._enqueue(client, message, qos)
            return
        client.inflight[self._session.publish(client.name, message, 1)] = message

    def _enqueue(self, client: ClientSession, message: Message, qos: int) -> None:
        # Mosquitto's count: beyond what is in flight for a client online; everything it
        # holds (in flight when it went away, then queued) for a client offline
        limit = self.spec.max_queued_messages
        held = 0 if client.connected else len(client.held)
        if limit and held + len(client.queue) >= limit:
            self._drop(client, message, "queue_full")
        else:
            client.queue.append((message, qos))

    def _pump(self, client: ClientSession) -> None:
        """Send queued messages while the client is online and has in-flight slots."""
        limit = self.spec.max_inflight_messages
        queue = client.queue
        while queue and client.connected and not (limit and len(client.inflight) >= limit):
            message, qos = queue.popleft()
            if qos == 0:
                self._session.send(Packet(PUBLISH, self.name, client.name, message))
            else:
                client.inflight[self._session.publish(client.name, message, 1)] = message

    def _acknowledged(self, packet_id: int) -> None:
        entry = self._session.inflight.get(packet_id)
        if entry is None:
            return
        client = self.clients.get(entry[0])
        if client is not None and client.inflight.pop(packet_id, None) is not None:
            self._pump(client)

    def _drop(self, client: ClientSession, message: Message, cause: str) -> None:
        context = self.context
        assert context is not None
        context.metrics.delivery.drop(message.origin, message.seq, message.sources, cause)
        self._broker_counter.drop(cause)
        context.metrics.link(f"{self.name}->{client.name}").drop(cause)
        context.metrics.topic(message.topic).drop(cause)
        if context.trace.enabled:
            context.trace.record(
                context.now,
                "drop",
                self.name,
                client.name,
                message.topic,
                message.message_id,
                f"{PUBLISH}:{cause}",
            )

    def _cuts_changed(self) -> None:
        context = self.context
        assert context is not None and context.network is not None
        network = context.network
        for client in self.clients.values():
            if not client.modelled:
                continue
            reachable = not (
                network.is_partitioned(self.name, client.name)
                or network.is_partitioned(client.name, self.name)
            )
            if reachable == client.reachable:
                continue
            client.reachable = reachable
            client.generation += 1
            if not reachable:
                context.call_at(
                    context.now + client.grace, self._expire, (client.name, client.generation)
                )
            elif not client.connected:
                self._reconnect(client)

    def _expire(self, timer: tuple[str, int]) -> None:
        """The keep-alive ran out: the client is offline (unless it was reached meanwhile)."""
        name, generation = timer
        client = self.clients[name]
        if generation != client.generation or not client.connected:
            return
        context = self.context
        assert context is not None
        client.connected = False
        if context.trace.enabled:
            context.trace.record(context.now, "session", self.name, name, "", "", "offline")
        inflight = self._session.inflight
        held = list(client.inflight.values())
        for packet_id in client.inflight:
            inflight.pop(packet_id, None)
        client.inflight.clear()
        client.held = held
        if client.clean:
            self._discard(client)
        elif client.expiry is not None:
            context.call_at(context.now + client.expiry, self._expire_session, timer)

    def _expire_session(self, timer: tuple[str, int]) -> None:
        """A persistent session's expiry interval ran out while its client was away."""
        name, generation = timer
        client = self.clients[name]
        if generation != client.generation or client.connected:
            return
        context = self.context
        assert context is not None
        if context.trace.enabled:
            context.trace.record(context.now, "session", self.name, name, "", "", "expired")
        self._discard(client)
        client.expired = True

    def _discard(self, client: ClientSession) -> None:
        """The session ends: what it held or queued is lost."""
        for message in client.held:
            self._drop(client, message, "session_lost")
        for message, _qos in client.queue:
            self._drop(client, message, "session_lost")
        client.held = []
        client.queue.clear()

    def _reconnect(self, client: ClientSession) -> None:
        context = self.context
        assert context is not None
        client.connected = True
        fresh = client.clean or client.expired
        client.expired = False
        if context.trace.enabled:
            kind = "clean" if fresh else "resumed"
            context.trace.record(context.now, "session", self.name, client.name, "", "", kind)
        if fresh:
            for topic_filter, qos in client.filters:
                self._deliver_retained(client.name, topic_filter, qos)
            return
        held, client.held = client.held, []
        for message in held:
            client.inflight[self._session.publish(client.name, message, 1, duplicate=True)] = (
                message
            )
        self._pump(client)

    def mqtt_session(self) -> Session | None:
        return self._session if self.context is not None else None

    def forget_client(self, client: str) -> int:
        """A client's connection is gone (a clean session): drop what was in flight to it;
        returns how many."""
        inflight = self._session.inflight
        gone = [packet_id for packet_id, (dst, _) in inflight.items() if dst == client]
        for packet_id in gone:
            del inflight[packet_id]
        return len(gone)

    # --- faults ---------------------------------------------------------------------------
    def apply_fault(self, action: str) -> str:
        """``stop``/``kill`` (the same here: no persistence), ``start``, ``pause``, ``resume``."""
        if action in ("stop", "kill"):
            return self._go_down()
        if action == "start":
            self.up = True
            self._impaired = False
            self.restarts += 1
            if self._kept is not None:  # restored from its persistence
                retained, subscriptions = self._kept
                self._kept = None
                self.retained = retained
                for subscriber, topic_filter, qos in subscriptions:
                    self.index.subscribe(topic_filter, (subscriber, qos))
                return f"restored {len(retained)} retained, {len(subscriptions)} subscription(s)"
            return ""
        if action == "pause":
            self._paused = self._impaired = True
            self._session.frozen = True
            return ""
        assert action == "resume", action
        self._paused = self._impaired = False
        self._session.frozen = False
        routes, self._held_routes = self._held_routes, []
        packets, self._held = self._held, []
        for message in routes:
            self.route(message)
        for packet in packets:
            self.on_packet(packet)
        taken = len(routes) + len(packets)
        return f"{taken} waiting packet(s) taken" if taken else ""

    def _go_down(self) -> str:
        waiting = len(self._held_routes) + self._queued - self._stale
        self._stale = self._queued  # every message scheduled for routing dies
        self._held_routes = []
        held, self._held = self._held, []
        inflight = len(self._session.inflight)
        self._session.inflight.clear()
        self._session.frozen = False
        subscriptions = len(self.index)
        if self.persistent_restart:
            self.persistent_restart = False
            kept = [
                (client.name, topic_filter, qos)
                for client in self.clients.values()
                if not client.clean
                for topic_filter, qos in client.filters
            ]
            self._kept = (dict(self.retained), kept)
            subscriptions -= len(kept)
        self.index = TopicIndex()
        retained = 0 if self._kept is not None else len(self.retained)
        self.retained = {}
        self.up = False
        self._paused = False
        self._impaired = True
        if waiting:
            self.dropped_down += waiting
            self._node_counter().dropped_node_down += waiting
        for packet in held:
            self._impaired_packet(packet)
        parts = [
            f"{count} {what}"
            for count, what in (
                (waiting, "message(s) waiting to be routed lost"),
                (inflight, "in-flight QoS 1 message(s) abandoned"),
                (subscriptions, "subscription(s) lost"),
                (retained, "retained message(s) lost"),
            )
            if count
        ]
        return ", ".join(parts)

    def _node_counter(self) -> FlowCounter:
        context = self.context
        assert context is not None
        return context.metrics.node(self.name)

    def _impaired_packet(self, packet: Packet) -> None:
        if self._paused:
            self._held.append(packet)
            return
        if packet.kind == PUBACK:
            return
        context = self.context
        assert context is not None
        message = packet.message
        self.dropped_down += 1
        context.metrics.delivery.drop(message.origin, message.seq, message.sources, "node_down")
        self._node_counter().drop("node_down")
        context.metrics.topic(message.topic).drop("node_down")
        if context.trace.enabled:
            context.trace.record(
                context.coordinator.now,
                "drop",
                self.name,
                packet.src,
                message.topic,
                message.message_id,
                "node_down",
            )

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "routed": self.routed,
            "retained": len(self.retained),
            "inflight": len(self._session.inflight) if self.context else 0,
            **({"dropped_node_down": self.dropped_down} if self.dropped_down else {}),
            **(
                {
                    "sessions": {
                        name: {
                            "connected": client.connected,
                            "inflight": len(client.inflight) + len(client.held),
                            "queued": len(client.queue),
                        }
                        for name, client in self.clients.items()
                    }
                }
                if self.clients
                else {}
            ),
        }
