"""A sensor: publishes readings to the broker, periodically (with jitter) or as Poisson."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_edgesim.core.models.session import Session
from pytest_edgesim.core.models.values import make_value_source
from pytest_edgesim.core.node import Node
from pytest_edgesim.core.packet import PUBACK, PUBLISH, Message, Packet

if TYPE_CHECKING:
    from pytest_edgesim.core.builtin_faults import Clock, DutyCycle
    from pytest_edgesim.core.node import NodeContext
    from pytest_edgesim.core.scenario.schema import DeviceSpec


class SensorModel(Node):
    """Publishes ``spec.value`` readings on ``topic`` to ``broker``."""

    # Slots: a scenario may hold 100,000 sensors, and a slot costs 8 bytes where an instance
    # dict of this many keys costs about 25. (``name`` and ``context`` live in Node's dict.)
    __slots__ = (
        "_clock",
        "_cycle",
        "_duty",
        "_faulted",
        "_first",
        "_held",
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
        # fault conditions (docs/faults.md): None on the hot path of a run without them
        self._faulted: bool | None = None
        self._duty: DutyCycle | None = None
        self._clock: Clock | None = None
        self._held: list[tuple[int, float]] | None = None

    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        stream = context.stream()
        self._stream = stream
        self._values = make_value_source(self.spec.value, context.stream, self.base_dir)
        self._session = Session(self.name, context, self.retry_interval)
        self._topic_counter = context.metrics.topic(self.topic)
        context.metrics.delivery.source(self.name, self.topic).publisher = self
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
        if self._faulted is not None:
            self._publish_faulted()
            return
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

    # --- fault conditions: a duty cycle, a skewed clock ------------------------------------
    supported_conditions: ClassVar[tuple[str, ...]] = ("duty_cycle", "clock")

    def set_condition(self, condition: str, setting: Any) -> str:
        """``duty_cycle`` (a :class:`~pytest_edgesim.core.builtin_faults.DutyCycle`, or None:
        awake from now on, what it kept is sent now) and ``clock`` (a
        :class:`~pytest_edgesim.core.builtin_faults.Clock`, or None: true time again). Its
        schedule of readings runs on its own clock; a reading due while it sleeps is kept
        until it wakes, or lost (``asleep``)."""
        if condition == "clock":
            self._clock = setting
        else:
            assert condition == "duty_cycle", condition
            self._duty = setting
            if setting is None:
                self._wake()
        self._faulted = True if self._duty is not None or self._clock is not None else None
        return ""

    def _publish_faulted(self) -> None:
        """A reading falls due on a device with a fault condition (the hot path's twin)."""
        coordinator, _, callback, periodic, *_ = self._hot
        now = coordinator.now
        duty = self._duty
        wakes_at = duty.wakes_at(now) if duty is not None else now
        if wakes_at == now:
            self._emit(now, self._values(now), now)
        elif duty is not None and duty.buffer:
            if not self._held:
                self._held = []
                coordinator.schedule_at(wakes_at, self._wake)
            self._held.append((now, self._values(now)))
        else:
            self._lose_asleep(now, self._values(now))
        clock = self._clock
        if periodic:
            self._cycle = cycle = self._cycle + 1
            following = self._periodic_time(cycle)
            if clock is not None:
                following = clock.when_it_reads(following)
        else:
            gap = self._stream.exponential(self._mean_gap)
            if clock is not None:
                gap /= 1.0 + clock.drift_ppm / 1e6
            following = now + max(1, round(gap))
        if following <= now:
            following = now + 1
        if self._stop is None or following < self._stop:
            coordinator.schedule_at(following, callback)

    def _wake(self, _arg: object = None) -> None:
        """Awake: what it read while asleep goes out now, oldest first."""
        held, self._held = self._held, None
        assert self.context is not None
        now = self.context.coordinator.now
        for created_at, value in held or ():
            self._emit(now, value, created_at)

    def _emit(self, now: int, value: float, created_at: int) -> None:
        """Send one reading (what :meth:`_publish` does inline, the hot path)."""
        _, send, _, _, qos, retain, payload_bytes = self._hot
        self.published = seq = self.published + 1
        message = Message(self.topic, value, self.name, seq, created_at, qos, retain, payload_bytes)
        counter = self._topic_counter
        counter.sent += 1
        counter.bytes += payload_bytes
        trace = self._trace
        if trace is not None:
            trace.record(
                now,
                "publish",
                self.name,
                self.broker,
                self.topic,
                message.message_id,
                "%.12g" % value,
            )
        if qos == 0:
            send(Packet(PUBLISH, self.name, self.broker, message))
        else:
            self._session.publish(self.broker, message, qos)

    def _lose_asleep(self, now: int, value: float) -> None:
        """A reading due while asleep, on a duty cycle that drops them: an ``asleep`` drop."""
        context = self.context
        assert context is not None
        self.published = seq = self.published + 1
        self._topic_counter.sent += 1
        self._topic_counter.drop("asleep")
        context.metrics.node(self.name).drop("asleep")
        context.metrics.delivery.drop(self.name, seq, None, "asleep")
        trace = self._trace
        if trace is not None:
            trace.record(
                now, "drop", self.name, self.broker, self.topic, f"{self.name}#{seq}", "asleep"
            )

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
