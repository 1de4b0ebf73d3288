"""The broker model: MQTT routing with wildcards, QoS 0/1, retained messages, a processing delay.

The broker is a single FIFO server (as Mosquitto is single-threaded): each PUBLISH waits
for the ones before it, then takes one processing delay, then is routed to every matching
subscription at ``min(publish QoS, subscription QoS)``. Sessions and subscriptions are set
up at the start of the run (SUBSCRIBE packets are not simulated).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edgesim.core.models.delays import make_delay_sampler
from pytest_edgesim.core.models.session import Session
from pytest_edgesim.core.node import Node
from pytest_edgesim.core.packet import PUBACK, PUBLISH, Packet
from pytest_edgesim.core.topics import TopicIndex, topic_matches

if TYPE_CHECKING:
    from pytest_edgesim.core.node import NodeContext
    from pytest_edgesim.core.packet import Message
    from pytest_edgesim.core.scenario.schema import BrokerSpec


class BrokerModel(Node):
    def __init__(self, name: str, spec: BrokerSpec):
        super().__init__(name)
        self.spec = spec
        self.index = TopicIndex()
        self.retained: dict[str, Message] = {}
        self.routed = 0
        self._busy_until = 0

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
        context.call_at(self._busy_until, self.route, packet.message)

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

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "routed": self.routed,
            "retained": len(self.retained),
            "inflight": len(self._session.inflight) if self.context else 0,
        }
