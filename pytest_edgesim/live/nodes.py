"""The two nodes where the modelled network meets real MQTT.

:class:`BrokerPort` stands where the broker model stands: a sensor's PUBLISH that survives
its modelled uplink is published, as it arrives, on the real broker. :class:`GatewayUplink`
stands for a gateway on its modelled link to the cloud: a forward that the cloud subscriber
took off the real broker is sent over that link (QoS 1 retried as the models do), with
the lineage the real gateway wrote in it (its ``sources``), so that the cloud counts the
readings that really arrived.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_edgesim.core.metrics.delivery import lineage_from_json
from pytest_edgesim.core.models.session import Session
from pytest_edgesim.core.models.store_forward import StoreAndForward
from pytest_edgesim.core.node import Node
from pytest_edgesim.core.packet import PUBACK, Message

if TYPE_CHECKING:
    from pytest_edgesim.core.node import NodeContext
    from pytest_edgesim.core.packet import Packet
    from pytest_edgesim.core.scenario.schema import BufferSpec


def reading_payload(message: Message, created_at_us: int) -> str:
    """The wire format the gateway reads (see :mod:`pytest_edgesim.gateway.service`)."""
    return json.dumps(
        {
            "value": message.payload,
            "origin": message.origin,
            "seq": message.seq,
            "created_at_us": created_at_us,
        },
        default=str,
    )


class BrokerPort(Node):
    """The broker's place in the modelled network: hands arriving messages to the real one."""

    implementation = "mqtt"
    wall_clock = True

    def __init__(
        self,
        name: str,
        client: Any,
        topic_prefix: str,
        retry_interval: int,
        *,
        version: str | None = None,
        configuration: str | None = None,
    ):
        super().__init__(name)
        self.client = client
        self.topic_prefix = topic_prefix
        self.retry_interval = retry_interval
        self.version = version
        self.configuration = configuration
        self.published = 0

    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        self._session = Session(self.name, context, self.retry_interval)

    def mqtt_session(self) -> Session | None:
        return self._session if self.context is not None else None

    def on_packet(self, packet: Packet) -> None:
        if packet.kind == PUBACK:
            return
        if packet.qos == 1:
            self._session.reply_puback(packet)
        self.route(packet.message)

    def route(self, message: Message) -> None:
        """Publish ``message`` on the real broker (what the broker model's ``route`` does)."""
        context = self.context
        assert context is not None
        created_at_us = round(context.coordinator.wall_time_of(message.created_at) * 1e6)  # type: ignore[attr-defined]
        self.client.publish(
            self.topic_prefix + message.topic,
            reading_payload(message, created_at_us),
            qos=message.qos,
            retain=message.retain,
        )
        self.published += 1

    def describe(self) -> dict[str, object]:
        """What a live run's result says of the broker: ``broker_version`` (``mosquitto
        2.0.21 (trixie)``) and ``broker_config`` when the broker is known."""
        known = {"broker_version": self.version, "broker_config": self.configuration}
        found = {key: value for key, value in known.items() if value is not None}
        return {**super().describe(), "published": self.published, **found}


class GatewayUplink(Node):
    """A gateway's end of its modelled link to the cloud; the gateway itself runs for real."""

    wall_clock = True

    def __init__(
        self,
        name: str,
        implementation: str,
        *,
        to: str,
        qos: int,
        payload_bytes: int,
        retry: int,
        filters: tuple[str, ...] = (),
        buffer: BufferSpec | None = None,
    ):
        super().__init__(name)
        # Node.implementation is a class variable; this class shadows it per instance, as
        # each gateway says what it runs.
        self.implementation = implementation  # type: ignore[misc]
        self.to = to
        self.qos = qos
        self.payload_bytes = payload_bytes
        self.retry_interval = retry
        self.filters = filters
        self.forwarded = 0
        self.runner_state: dict[str, Any] = {}
        #: the gateway's store-and-forward buffer, on its modelled uplink (docs/faults.md)
        self._store = StoreAndForward(
            name, buffer, lambda message: self._session.publish(self.to, message, self.qos)
        )

    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        self._session = Session(self.name, context, self.retry_interval)
        self._ledger = context.metrics.delivery
        self._destination = self._ledger.destination(self.name, self.filters, gateway=True)

    def mqtt_session(self) -> Session | None:
        return self._session if self.context is not None else None

    def on_packet(self, packet: Packet) -> None:
        if packet.kind == PUBACK:
            self._session.acknowledge(packet.packet_id)

    def tapped(self, reading: Any) -> None:
        """The broker delivered ``reading`` (the JSON of a sensor's reading) to a subscriber
        with this gateway's filters: count it as having reached the gateway."""
        if isinstance(reading, dict):
            origin, seq = reading.get("origin"), reading.get("seq")
            if isinstance(origin, str) and isinstance(seq, int) and not isinstance(seq, bool):
                self._ledger.arrive(self._destination, origin, seq, None)

    def forward(self, topic: str, payload: Any, created_at: int) -> None:
        """Send one forward the real gateway published (``created_at`` in ticks)."""
        context = self.context
        assert context is not None
        self.forwarded += 1
        seq = payload.get("seq", self.forwarded) if isinstance(payload, dict) else self.forwarded
        message = Message(
            topic,
            payload,
            origin=self.name,
            seq=int(seq),
            created_at=created_at,
            qos=self.qos,
            size_bytes=self.payload_bytes,
            sources=_lineage(payload),
        )
        counter = context.metrics.topic(topic)
        counter.sent += 1
        counter.bytes += self.payload_bytes
        if self._store.uplink_down and self._store.takes(message, context):
            return
        self._session.publish(self.to, message, self.qos)

    supported_conditions: ClassVar[tuple[str, ...]] = ("uplink", "storage_full")

    def set_condition(self, condition: str, setting: Any) -> str:
        """The uplink and the buffer, as a hosted gateway's (the real gateway does not know)."""
        return self._store.set_condition(condition, setting)

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "forwarded": self.forwarded,
            **self._store.describe(),
            **self.runner_state,
        }


def _lineage(payload: Any) -> tuple[tuple[str, int, int], ...]:
    """The lineage a real gateway wrote in a forward (``sources``); ``()`` when it wrote none
    (a black-box gateway): the forward is then counted, its readings are not known."""
    lineage = lineage_from_json(payload.get("sources")) if isinstance(payload, dict) else None
    return () if lineage is None else lineage
