"""The gateway model (``implementation: python_model``).

Subscribes to its filters at the broker; every arriving reading enters a bounded queue (when
full, the arriving reading or the oldest queued one is dropped, as configured); one worker
takes readings in order, each for one processing delay, and feeds the aggregator (see
:mod:`pytest_edgesim.aggregation`). Aggregates, or every reading when there is no
``aggregate`` section, are forwarded to ``forward.to`` (the cloud) on ``forward.topic``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from ..aggregation import Aggregate, Aggregator
from ..node import Node
from ..packet import PUBACK, Message
from .delays import make_delay_sampler
from .session import Session

if TYPE_CHECKING:
    from ..node import NodeContext
    from ..packet import Packet
    from ..scenario.schema import GatewaySpec
    from .broker import BrokerModel


class GatewayModel(Node):
    def __init__(self, name: str, spec: GatewaySpec, *, broker: BrokerModel, retry_interval: int):
        super().__init__(name)
        self.spec = spec
        self.broker = broker
        self.retry_interval = retry_interval
        self.queue: deque[Message] = deque()
        self.busy = False
        self.received = 0
        self.processed = 0
        self.forwarded = 0
        self.dropped_overflow = 0
        self.forward_topic = spec.forward.topic.replace("{gateway}", name)
        aggregate = spec.aggregate
        self.aggregator = (
            Aggregator(
                count=aggregate.count,
                window=aggregate.window,
                functions=aggregate.functions,
                group_by=aggregate.group_by,
            )
            if aggregate is not None
            else None
        )

    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        self._session = Session(self.name, context, self.retry_interval)
        self._delay = make_delay_sampler(self.spec.processing_delay, context.stream("processing"))
        self._node_counter = context.metrics.node(self.name)
        self._forward_counter = context.metrics.topic(self.forward_topic)
        self._record = context.trace.record if context.trace.enabled else None
        for subscription in self.spec.subscribe:
            self.broker.subscribe(self.name, subscription.filter, subscription.qos)
        if self.aggregator is not None and self.aggregator.window is not None:
            context.call_at(self.aggregator.window, self._window_end)

    # --- arrivals and the queue -----------------------------------------------------------
    def on_packet(self, packet: Packet) -> None:
        if packet.kind == PUBACK:
            self._session.acknowledge(packet.packet_id)
            return
        if packet.qos == 1:
            self._session.reply_puback(packet)
        self.received += 1
        message = packet.message
        capacity = self.spec.queue.capacity
        if len(self.queue) + (1 if self.busy else 0) >= capacity:
            if self.spec.queue.drop == "newest" or not self.queue:
                self._overflow(message)
                return
            self._overflow(self.queue.popleft())
        self.queue.append(message)
        if not self.busy:
            self._start_next()

    def _overflow(self, message: Message) -> None:
        self.dropped_overflow += 1
        self._node_counter.dropped_overflow += 1
        context = self.context
        assert context is not None
        context.metrics.topic(message.topic).dropped_overflow += 1
        if self._record is not None:
            self._record(
                context.coordinator.now,
                "drop",
                self.name,
                message.origin,
                message.topic,
                f"{message.origin}#{message.seq}",
                "queue_overflow",
            )

    def _start_next(self) -> None:
        context = self.context
        assert context is not None
        message = self.queue.popleft()
        self.busy = True
        context.call_at(context.coordinator.now + self._delay(), self._processed, message)

    def _processed(self, message: Message) -> None:
        self.processed += 1
        context = self.context
        assert context is not None
        now = context.coordinator.now
        if self.aggregator is None:
            self._forward(message.payload, message.created_at, f"{message.origin}#{message.seq}")
        else:
            aggregate = self.aggregator.add(now, message.topic, message.origin, message.payload)
            if aggregate is not None:
                self._forward_aggregate(aggregate)
        if self.queue:
            self._start_next()
        else:
            self.busy = False

    # --- output ---------------------------------------------------------------------------
    def _window_end(self, _arg: object = None) -> None:
        context = self.context
        assert context is not None and self.aggregator is not None
        now = context.coordinator.now
        for aggregate in self.aggregator.close_window(now):
            self._forward_aggregate(aggregate)
        context.call_at(now + self.aggregator.window, self._window_end)  # type: ignore[operator]

    def _forward_aggregate(self, aggregate: Aggregate) -> None:
        assert self.aggregator is not None
        self._forward(aggregate.payload(self.aggregator.group_by), None, aggregate.canonical())

    def _forward(self, payload: object, created_at: int | None, detail: str) -> None:
        context = self.context
        assert context is not None
        now = context.coordinator.now
        self.forwarded += 1
        forward = self.spec.forward
        message = Message(
            self.forward_topic,
            payload,
            origin=self.name,
            seq=self.forwarded,
            created_at=now if created_at is None else created_at,
            qos=forward.qos,
            size_bytes=forward.payload_bytes,
        )
        counter = self._forward_counter
        counter.sent += 1
        counter.bytes += forward.payload_bytes
        if self._record is not None:
            self._record(
                now,
                "forward",
                self.name,
                forward.to,
                self.forward_topic,
                f"{self.name}#{self.forwarded}",
                detail,
            )
        self._session.publish(forward.to, message, forward.qos)

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "received": self.received,
            "processed": self.processed,
            "forwarded": self.forwarded,
            "queued": len(self.queue),
            "dropped_overflow": self.dropped_overflow,
            "pending_in_aggregate": self.aggregator.pending if self.aggregator else 0,
        }
