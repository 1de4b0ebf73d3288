"""A sensor: publishes readings to the broker, periodically (with jitter) or as Poisson."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_edgesim.core.models.session import Session
from pytest_edgesim.core.models.values import make_value_source
from pytest_edgesim.core.node import Node
from pytest_edgesim.core.packet import PUBACK, PUBLISH, Message, Packet

if TYPE_CHECKING:
    from pytest_edgesim.core.node import NodeContext
    from pytest_edgesim.core.scenario.schema import DeviceSpec


class SensorModel(Node):
    """Publishes ``spec.value`` readings on ``topic`` to ``broker``."""

    # Slots: a scenario may hold 100,000 sensors, and a slot costs 8 bytes where an instance
    # dict of this many keys costs about 25. (``name`` and ``context`` live in Node's dict.)
    __slots__ = (
        "_cycle",
        "_first",
        "_hot",
        "_jitter",
        "_mean_gap",
        "_period",
        "_session",
        "_start",
        "_stop",
        "_stream",
        "_topic_counter",
        "_trace",
        "_values",
        "base_dir",
        "broker",
        "published",
        "retry_interval",
        "spec",
        "topic",
    )

    def __init__(
        self,
        name: str,
        topic: str,
        spec: DeviceSpec,
        *,
        broker: str,
        retry_interval: int,
        base_dir: Path | None = None,
    ):
        super().__init__(name)
        self.topic = topic
        self.spec = spec
        self.broker = broker
        self.retry_interval = retry_interval
        self.base_dir = base_dir
        self.published = 0

    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        stream = context.stream()
        self._stream = stream
        self._values = make_value_source(self.spec.value, context.stream, self.base_dir)
        self._session = Session(self.name, context, self.retry_interval)
        self._topic_counter = context.metrics.topic(self.topic)
        context.metrics.delivery.source(self.name, self.topic).publisher = self
        # (the recorder, not its bound method: a direct call once compiled)
        self._trace = context.trace if context.trace.enabled else None
        # The hot path's lookups, made once, in one tuple (one unpacking per reading). The
        # spec is frozen, so its fields can be read here once instead of per reading.
        spec = self.spec
        self._hot = (
            context.coordinator,
            context.send,
            self._publish,
            spec.publish.mode == "periodic",
            spec.qos,
            spec.retain,
            spec.payload_bytes,
        )
        publish = self.spec.publish
        self._stop = publish.stop
        if publish.mode == "periodic":
            period = publish.period
            if publish.offset == "random":
                offset = stream.below(period)
            else:
                offset = publish.offset
            self._period = period
            self._jitter = publish.jitter
            self._start = publish.start
            self._first = publish.start + offset
            self._cycle = 0
            first = self._periodic_time(0)
        else:
            self._mean_gap = 1_000_000.0 / publish.rate
            first = publish.start + round(stream.exponential(self._mean_gap))
        if self._stop is None or first < self._stop:
            context.call_at(first, self._publish)

    def _periodic_time(self, cycle: int) -> int:
        nominal = self._first + cycle * self._period
        if self._jitter:
            nominal += round(self._jitter * (2.0 * self._stream.random() - 1.0))
        return max(nominal, self._start)  # jitter never moves a reading before the start

    def _publish(self, _arg: object = None) -> None:
        coordinator, send, callback, periodic, qos, retain, payload_bytes = self._hot
        now = coordinator.now
        value = self._values(now)
        self.published = seq = self.published + 1
        name = self.name
        topic = self.topic
        message = Message(topic, value, name, seq, now, qos, retain, payload_bytes)
        counter = self._topic_counter
        counter.sent += 1
        counter.bytes += payload_bytes
        trace = self._trace
        if trace is not None:
            trace.record(
                now, "publish", name, self.broker, topic, message.message_id, "%.12g" % value
            )
        if qos == 0:
            send(Packet(PUBLISH, name, self.broker, message))  # what Session.publish does
        else:
            self._session.publish(self.broker, message, qos)
        # the next publication
        if periodic:
            self._cycle = cycle = self._cycle + 1
            following = self._first + cycle * self._period  # as _periodic_time
            if self._jitter:
                following += round(self._jitter * (2.0 * self._stream.random() - 1.0))
            if following < self._start:
                following = self._start
            if following <= now:
                following = now + 1
        else:
            following = now + max(1, round(self._stream.exponential(self._mean_gap)))
        if self._stop is None or following < self._stop:
            coordinator.schedule_at(following, callback)

    def mqtt_session(self) -> Session | None:
        return self._session if self.context is not None else None

    def claim_message_seq(self) -> int:
        """Number one more message as this sensor's (an injected one): its next reading
        takes the number after."""
        self.published += 1
        return self.published

    def on_packet(self, packet: Packet) -> None:
        if packet.kind == PUBACK:
            self._session.acknowledge(packet.packet_id)

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "topic": self.topic,
            "published": self.published,
            "inflight": len(self._session.inflight) if self.context else 0,
        }
