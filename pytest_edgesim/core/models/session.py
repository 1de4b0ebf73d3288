"""The MQTT delivery guarantees a node needs: QoS 0 fire-and-forget, QoS 1 at-least-once.

A QoS 1 PUBLISH stays in the sender's in-flight table until its PUBACK arrives; every
``retry_interval`` without one it is sent again with the DUP flag, so a message lost on the
network is redelivered and a lost PUBACK causes a duplicate, as MQTT specifies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_edgesim.core.packet import PUBACK, PUBLISH, Packet

if TYPE_CHECKING:
    from pytest_edgesim.core.node import NodeContext
    from pytest_edgesim.core.packet import Message


class Session:
    """One node's sending side: packet ids, the in-flight table, retries, acknowledgements."""

    __slots__ = ("_context", "_next_id", "frozen", "inflight", "name", "retry_interval", "send")

    def __init__(self, name: str, context: NodeContext, retry_interval: int):
        self.name = name
        self._context = context
        self.retry_interval = retry_interval
        self._next_id = 0
        self.inflight: dict[int, tuple[str, Message]] = {}
        #: a paused node's session sends no retries (they wait for the next interval)
        self.frozen = False
        #: the context's ``send`` (a QoS 0 publish is just ``send(Packet(PUBLISH, ...))``)
        self.send = context.send

    def publish(self, dst: str, message: Message, qos: int, duplicate: bool = False) -> int:
        """Send ``message``; a QoS 1 one is kept in flight and its packet id returned (0 for
        QoS 0). ``duplicate``: a redelivery (the DUP flag) of one sent before."""
        if qos == 0:
            self.send(Packet(PUBLISH, self.name, dst, message))
            return 0
        self._next_id += 1
        packet_id = self._next_id
        self.inflight[packet_id] = (dst, message)
        self._context.send(
            Packet(
                PUBLISH, self.name, dst, message, qos=1, packet_id=packet_id, duplicate=duplicate
            )
        )
        self._context.call_at(self._context.now + self.retry_interval, self._retry, packet_id)
        return packet_id

    def _retry(self, packet_id: int) -> None:
        entry = self.inflight.get(packet_id)
        if entry is None:
            return
        dst, message = entry
        if self.frozen:
            self._context.call_at(self._context.now + self.retry_interval, self._retry, packet_id)
            return
        self._context.send(
            Packet(PUBLISH, self.name, dst, message, qos=1, packet_id=packet_id, duplicate=True)
        )
        self._context.call_at(self._context.now + self.retry_interval, self._retry, packet_id)

    def acknowledge(self, packet_id: int) -> None:
        self.inflight.pop(packet_id, None)

    def reply_puback(self, packet: Packet) -> None:
        """Acknowledge a QoS 1 PUBLISH we received."""
        self._context.send(
            Packet(PUBACK, self.name, packet.src, packet.message, packet_id=packet.packet_id)
        )
