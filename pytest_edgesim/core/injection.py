"""Messages a test injects into a paused run: numbered per run, sent like a node's own.

Shared by the virtual-time :class:`~pytest_edgesim.core.simulation.Simulation` and the wall-clock
:class:`~pytest_edgesim.live.LiveRun`; each hands the message to its own broker when it
comes from nowhere in particular.
"""

from __future__ import annotations

from typing import Any

from pytest_edgesim.core.metrics.recorder import MetricsRecorder
from pytest_edgesim.core.node import Node, PublishingSession
from pytest_edgesim.core.packet import Message
from pytest_edgesim.core.topics import validate_topic_name
from pytest_edgesim.errors import UsageError


class Injections:
    """Numbers injected messages and sends them.

    A message injected from nowhere in particular is ``inject#1``, ``inject#2``...; one
    injected from a node is numbered as that node's next message (``sensor-3#58``), so that
    no two messages in a trace share an id and the node's own readings carry on after it.
    """

    __slots__ = ("_by_origin", "count")

    def __init__(self) -> None:
        self.count = 0
        self._by_origin: dict[str, int] = {}  # nodes that do not number their messages

    def message(
        self,
        metrics: MetricsRecorder,
        topic: str,
        payload: Any,
        *,
        source: Node | None,
        now: int,
        qos: int,
        retain: bool,
        size_bytes: int,
    ) -> Message:
        """The next injected message, counted as sent on its topic.

        The topic and ``source`` are checked first (a wildcard topic, or a node that does not
        publish, is refused before anything is counted)."""
        problem = validate_topic_name(topic) if isinstance(topic, str) else "must be a string"
        if problem is not None:
            raise UsageError(f"cannot inject on topic {topic!r}: {problem}")
        if source is None:
            self.count += 1
            origin, seq = "inject", self.count
            metrics.delivery.source(origin, topic).sent = seq
        else:
            self.session_of(source)
            origin, seq = source.name, self._claim_seq(source)
        metrics.topic(topic).sent += 1
        return Message(
            topic,
            payload,
            origin=origin,
            seq=seq,
            created_at=now,
            qos=qos,
            retain=retain,
            size_bytes=size_bytes,
        )

    def _claim_seq(self, node: Node) -> int:
        """The next message number of ``node``: its own count goes up (the injection is one
        of its messages); a node that does not number its messages gets a count here."""
        claimed = node.claim_message_seq()
        if claimed is not None:
            return claimed
        count = self._by_origin.get(node.name, 0) + 1
        self._by_origin[node.name] = count
        return count

    @staticmethod
    def session_of(node: Node) -> PublishingSession:
        """``node``'s own MQTT session, or a clear error when it has none."""
        session = node.mqtt_session()
        if session is None:
            raise UsageError(
                f"cannot inject from {node.name!r}: it does not publish (inject from a "
                "sensor, a gateway or the broker, or give no source)"
            )
        return session

    @classmethod
    def send_from(cls, node: Node, broker: str, message: Message) -> None:
        """Publish ``message`` through ``node``'s own MQTT session: over its link, with its
        QoS's guarantees. (A session of its own would number packets the node's session
        also uses, and the PUBACK would settle the wrong one, or none: a QoS 1 injection
        would then be resent until the run ends.)"""
        cls.session_of(node).publish(broker, message, message.qos)
