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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

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


class BrokerModel(Node):
    supported_faults: ClassVar[tuple[str, ...]] = ("stop", "kill", "start", "pause", "resume")

    def __init__(self, name: str, spec: BrokerSpec):
        super().__init__(name)
        self.spec = spec
        self.index = TopicIndex()
        self.retained: dict[str, Message] = {}
        self.routed = 0
        self._busy_until = 0
        #: False while stopped or killed (clients then neither subscribe nor reach it)
        self.up = True
        self._impaired = False  # stopped or paused: arrivals take _impaired_packet
        self._paused = False
        self._held: list[Packet] = []
        self._held_routes: list[Message] = []
        self._queued = 0  # messages scheduled for routing and not routed yet
        self._stale = 0  # of those, how many died with a stop (the first ones: FIFO)
        self.restarts = 0
        self.dropped_down = 0

    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        self._session = Session(self.name, context, self.spec.retry_interval)
        self._delay = make_delay_sampler(self.spec.processing_delay, context.stream("processing"))
        self._constant_zero = (
            self.spec.processing_delay.distribution == "constant"
            and self.spec.processing_delay.value == 0
        )

    def subscribe(self, subscriber: str, topic_filter: str, qos: int) -> None:
        """Add a subscription; retained messages that match are delivered at once."""
        self.index.subscribe(topic_filter, (subscriber, qos))
        for topic in sorted(self.retained):
            if topic_matches(topic_filter, topic):
                message = self.retained[topic]
                self._session.publish(subscriber, message, min(message.qos, qos))

    def unsubscribe(self, subscriber: str, topic_filter: str, qos: int) -> None:
        self.index.unsubscribe(topic_filter, (subscriber, qos))

    def on_packet(self, packet: Packet) -> None:
        if self._impaired:
            self._impaired_packet(packet)
            return
        if packet.kind == PUBACK:
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
        for subscriber, subscription_qos in entries:
            if qos == 0 or subscription_qos == 0:
                # QoS 0: what Session.publish does, without the call
                session.send(Packet(PUBLISH, session.name, subscriber, message))
            else:
                session.publish(subscriber, message, 1)

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
        self.index = TopicIndex()
        retained = len(self.retained)
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
        }
