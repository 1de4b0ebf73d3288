"""The cloud: a sink that records what arrives (the first ``record_limit``; all are counted)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_edgesim.core.models.session import Session
from pytest_edgesim.core.node import Node
from pytest_edgesim.core.packet import PUBACK

if TYPE_CHECKING:
    from pytest_edgesim.core.node import NodeContext
    from pytest_edgesim.core.packet import Packet


class Arrival(NamedTuple):
    time: int
    topic: str
    payload: Any
    origin: str
    seq: int
    created_at: int


class CloudSink(Node):
    def __init__(self, name: str, *, record_limit: int = 100_000):
        super().__init__(name)
        self.record_limit = record_limit
        self.arrivals: list[Arrival] = []
        self.received = 0

    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        self._session = Session(self.name, context, 1)
        self._ledger = context.metrics.delivery
        self._destination = self._ledger.destination(self.name)

    def on_packet(self, packet: Packet) -> None:
        if packet.kind == PUBACK:
            return
        if packet.qos == 1:
            self._session.reply_puback(packet)
        self.received += 1
        message = packet.message
        self._ledger.arrive(self._destination, message.origin, message.seq, message.sources)
        if len(self.arrivals) < self.record_limit:
            assert self.context is not None
            self.arrivals.append(
                Arrival(
                    self.context.now,
                    message.topic,
                    message.payload,
                    message.origin,
                    message.seq,
                    message.created_at,
                )
            )

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "received": self.received}
