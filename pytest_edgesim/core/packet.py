"""What travels: MQTT-like messages and the packets that carry them over one link."""

from __future__ import annotations

from typing import Any, Final

PUBLISH: Final = "publish"
PUBACK: Final = "puback"


class Message:
    """An application message: what a sensor publishes and what a subscriber receives.

    ``origin`` and ``seq`` identify it for its whole life (a retransmission or a copy the
    broker forwards is still the same message); ``created_at`` is the virtual time its
    publisher created it, from which end-to-end latency is measured. ``sources`` is a
    forward's lineage: the readings it stands for, as ``(origin, first_seq, last_seq)`` runs
    (one run for a forwarded reading, several for an aggregate; ``()`` when the gateway did
    not say); None for a message that is a reading itself. It is not part of the payload, so
    it never changes what a trace holds.
    """

    __slots__ = (
        "created_at",
        "message_id",
        "origin",
        "payload",
        "qos",
        "retain",
        "seq",
        "size_bytes",
        "sources",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        payload: Any,
        origin: str,
        seq: int,
        created_at: int,
        qos: int = 0,
        retain: bool = False,
        size_bytes: int = 64,
        sources: tuple[tuple[str, int, int], ...] | None = None,
    ):
        # (the hot paths pass everything by position; elsewhere, name the arguments)
        self.topic = topic
        self.payload = payload
        self.origin = origin
        self.seq = seq
        self.created_at = created_at
        self.qos = qos
        self.retain = retain
        self.size_bytes = size_bytes
        self.sources = sources
        #: ``origin#seq``, made once: several trace events name the message
        self.message_id = f"{origin}#{seq}"

    def __repr__(self) -> str:
        return (
            f"Message({self.topic!r}, {self.payload!r}, id={self.message_id}, "
            f"qos={self.qos}, created_at={self.created_at})"
        )


class Packet:
    """One transmission over one directed link: a PUBLISH carrying a message, or a PUBACK."""

    __slots__ = ("dst", "duplicate", "kind", "message", "packet_id", "qos", "sent_at", "src")

    def __init__(
        self,
        kind: str,
        src: str,
        dst: str,
        message: Message,
        qos: int = 0,
        packet_id: int = 0,
        duplicate: bool = False,
        sent_at: int = 0,
    ):
        self.kind = kind
        self.src = src
        self.dst = dst
        self.message = message
        self.qos = qos
        self.packet_id = packet_id
        self.duplicate = duplicate
        self.sent_at = sent_at

    @property
    def size_bytes(self) -> int:
        # A PUBACK is 4 bytes on the wire; a PUBLISH is its payload plus a small header.
        if self.kind == PUBACK:
            return 4
        return self.message.size_bytes + len(self.message.topic) + 4

    def __repr__(self) -> str:
        return (
            f"Packet({self.kind}, {self.src}->{self.dst}, {self.message.message_id}, "
            f"qos={self.qos}, sent_at={self.sent_at})"
        )
