"""A gateway's store-and-forward buffer: what it forwards while its uplink is down.

One implementation for the gateways of every tier (a hosted gateway in virtual time, a real
gateway's modelled uplink in a live run). While the uplink is down (a ``backhaul_outage``)
each forward waits here, up to the capacity of ``forward.buffer``; when full (or made full
by a ``storage_full`` fault) the arriving forward or the oldest waiting one is lost, each a
``storage_full`` drop in the delivery accounting; when the uplink is back, what waited goes
out in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_edgesim.core.node import NodeContext
    from pytest_edgesim.core.packet import Message
    from pytest_edgesim.core.scenario.schema import BufferSpec


class StoreAndForward:
    """The uplink's state and the buffer of ``node`` (``spec``: None, no buffer)."""

    def __init__(self, node: str, spec: BufferSpec | None, send: Callable[[Message], Any]):
        self.node = node
        self.spec = spec
        self.send = send
        self.uplink_down = False
        self.storage_full = False
        self.waiting: deque[Message] = deque()
        self.dropped = 0

    def set_condition(self, condition: str, setting: Any) -> str:
        """``uplink`` (False: down; True: up, what waited is sent now) or ``storage_full``."""
        if condition == "storage_full":
            self.storage_full = bool(setting)
            return ""
        assert condition == "uplink", condition
        self.uplink_down = not setting
        if self.uplink_down:
            return "no buffer" if self.spec is None else f"buffering up to {self.spec.capacity}"
        sent, self.waiting = self.waiting, deque()
        for message in sent:
            self.send(message)
        return f"sent {len(sent)} buffered" if sent else ""

    def takes(self, message: Message, context: NodeContext) -> bool:
        """Whether the buffer took ``message`` (kept or lost); False: send it as usual."""
        spec = self.spec
        if not self.uplink_down or spec is None:
            return False
        if self.storage_full or len(self.waiting) >= spec.capacity:
            if self.storage_full or spec.drop == "newest" or not self.waiting:
                self._lose(message, context)
                return True
            self._lose(self.waiting.popleft(), context)
        self.waiting.append(message)
        return True

    def clear(self) -> int:
        """The gateway went down: what waited is gone (the buffer is not persistent)."""
        count = len(self.waiting)
        self.waiting.clear()
        return count

    def _lose(self, message: Message, context: NodeContext) -> None:
        self.dropped += 1
        metrics = context.metrics
        metrics.delivery.drop(message.origin, message.seq, message.sources, "storage_full")
        metrics.node(self.node).drop("storage_full")
        metrics.topic(message.topic).drop("storage_full")
        if context.trace.enabled:
            context.trace.record(
                context.coordinator.now,
                "drop",
                self.node,
                "",
                message.topic,
                message.message_id,
                "storage_full",
            )

    def describe(self) -> dict[str, int]:
        """``buffered`` and ``dropped_storage_full``, each only when not 0."""
        out = {"buffered": len(self.waiting)} if self.waiting else {}
        return {**out, **({"dropped_storage_full": self.dropped} if self.dropped else {})}
