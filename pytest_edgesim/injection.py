"""Messages a test injects into a paused run: numbered per run, sent like a node's own.

Shared by the virtual-time :class:`~pytest_edgesim.simulation.Simulation` and the wall-clock
:class:`~pytest_edgesim.live.LiveRun`; each hands the message to its own broker when it
comes from nowhere in particular.
"""

from __future__ import annotations

from typing import Any

from .errors import SimulationError
from .metrics import MetricsRecorder
from .models.session import Session
from .node import Node
from .packet import Message


class Injections:
    """Numbers injected messages (``inject#1``, ``sensor-3#2``...) and sends them."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def message(
        self,
        metrics: MetricsRecorder,
        topic: str,
        payload: Any,
        *,
        origin: str,
        now: int,
        qos: int,
        retain: bool,
        size_bytes: int,
    ) -> Message:
        """The next injected message, counted as sent on its topic."""
        self.count += 1
        metrics.topic(topic).sent += 1
        return Message(
            topic,
            payload,
            origin=origin,
            seq=self.count,
            created_at=now,
            qos=qos,
            retain=retain,
            size_bytes=size_bytes,
        )

    @staticmethod
    def send_from(node: Node, broker: str, message: Message) -> None:
        """Publish ``message`` through ``node``'s own MQTT session: over its link, with its
        QoS's guarantees. (A session of its own would number packets the node's session
        also uses, and the PUBACK would settle the wrong one, or none: a QoS 1 injection
        would then be resent until the run ends.)"""
        session: Session | None = getattr(node, "_session", None)
        if session is None:
            raise SimulationError(
                f"cannot inject from {node.name!r}: it does not publish (inject from a "
                "sensor, a gateway or the broker, or give no source)"
            )
        session.publish(broker, message, message.qos)
