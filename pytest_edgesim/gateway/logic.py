"""The gateway's behaviour as a lockstep node logic: queue, processing delay, aggregation.

This is the one implementation of the gateway that runs in virtual time: the
``python_model`` gateway hosts it in process, and the gateway image serves it over the
lockstep protocol (``python3 -m pytest_edgesim.gateway.lockstep_node``), so both give the
same trace. It needs only the standard library; configuration is the JSON of
:func:`pytest_edgesim.gateway.config.config_from_spec`.

Every arriving reading enters a bounded queue (when full, the arriving reading or the
oldest queued one is dropped, as configured); one worker takes readings in order, each for
one processing delay drawn from the stream ``node:<name>/processing``, and feeds the
aggregator. Aggregates, or every reading when there is no ``aggregate`` section, are
published on the forward topic. A reading with no number in it (see
:func:`pytest_edgesim.core.aggregation.reading_value`) cannot be aggregated: it is dropped with
the reason ``not_a_number`` and counted as rejected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any, ClassVar, Final

from pytest_edgesim.core.aggregation import NOT_A_NUMBER, Aggregate, Aggregator
from pytest_edgesim.core.rng import RandomStream
from pytest_edgesim.lockstep.sdk import Message, NodeApi, NodeLogic

PROCESSED: Final = "processed"
WINDOW: Final = "window"


class GatewayLogic(NodeLogic):
    implementation: ClassVar[str] = "edgesim-gateway"

    def __init__(
        self,
        node: NodeApi,
        config: Mapping[str, Any],
        delay_sampler: Callable[[Any, RandomStream], Callable[[], int]] | None = None,
    ):
        super().__init__(node, config)
        # imported here: pytest_edgesim.core.models imports this module (GatewayModel hosts it)
        from pytest_edgesim.core.models.delays import make_delay_sampler

        sampler: Callable[[Any, RandomStream], Callable[[], int]] = (
            delay_sampler or make_delay_sampler
        )
        queue = config.get("queue", {})
        self.capacity = int(queue.get("capacity", 1000))
        self.drop_newest = queue.get("drop", "newest") == "newest"
        forward = config["forward"]
        self.forward_topic = forward["topic"]
        self.forward_qos = int(forward.get("qos", 0))
        delay = config.get("processing_delay_us") or {"distribution": "constant", "value": 0}
        self._delay = sampler(SimpleNamespace(**delay), node.stream("processing"))
        self.aggregator = Aggregator.from_config(config.get("aggregate"))
        self.queue: deque[Message] = deque()
        self.current: Message | None = None
        self.received = 0
        self.processed = 0
        self.dropped_overflow = 0
        self.rejected = 0  # readings with no number to aggregate
        if self.aggregator is not None and self.aggregator.window is not None:
            node.set_timer(node.now + self.aggregator.window, WINDOW)

    def on_message(self, t: int, message: Message) -> None:
        self.received += 1
        busy = self.current is not None
        if len(self.queue) + busy >= self.capacity:
            if self.drop_newest or not self.queue:
                self._overflow(message)
                return
            self._overflow(self.queue.popleft())
        self.queue.append(message)
        if not busy:
            self._start_next(t)

    def on_timer(self, t: int, name: str) -> None:
        if name == PROCESSED:
            self._processed(t)
        elif name == WINDOW:
            assert self.aggregator is not None and self.aggregator.window is not None
            for aggregate in self.aggregator.close_window(t):
                self._forward_aggregate(aggregate)
            self.node.set_timer(t + self.aggregator.window, WINDOW)

    def _overflow(self, message: Message) -> None:
        self.dropped_overflow += 1
        self.node.drop(message, "queue_overflow")

    def _start_next(self, t: int) -> None:
        node = self.node
        queue = self.queue
        while True:
            self.current = queue.popleft()
            delay = self._delay()
            timer = node.next_timer
            if delay or (timer is not None and timer <= t):
                node.set_timer(t + delay, PROCESSED)
                return
            # A zero delay with no other timer due: the PROCESSED timer would be the next
            # thing to run at t (timers run before messages), so finish the reading now.
            self._complete(t)
            if not queue:
                self.current = None
                return

    def _processed(self, t: int) -> None:
        self._complete(t)
        if self.queue:
            self._start_next(t)
        else:
            self.current = None

    def _complete(self, t: int) -> None:
        """The worker is done with the current reading: aggregate or forward it."""
        message = self.current
        assert message is not None
        self.processed += 1
        if self.aggregator is None:
            self.node.publish(
                self.forward_topic,
                message["payload"],
                qos=self.forward_qos,
                created_at=message["created_at"],
                detail=f"{message['origin']}#{message['seq']}",
                sources=_lineage(message),
            )
        else:
            value = self.aggregator.value_of(message["payload"])
            if value is None:  # nothing to aggregate: dropped, and the trace says why
                self.rejected += 1
                self.node.drop(message, NOT_A_NUMBER)
                return
            aggregate = self.aggregator.add(
                t,
                message["topic"],
                message["origin"],
                value,
                message["seq"],
                message.get("sources"),
            )
            if aggregate is not None:
                self._forward_aggregate(aggregate)

    def _forward_aggregate(self, aggregate: Aggregate) -> None:
        assert self.aggregator is not None
        self.node.publish(
            self.forward_topic,
            aggregate.payload(self.aggregator.group_by),
            qos=self.forward_qos,
            detail=aggregate.canonical(),
            sources=aggregate.sources,
        )

    def state(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "processed": self.processed,
            "queued": len(self.queue),
            "dropped_overflow": self.dropped_overflow,
            "rejected": self.rejected,
            "pending_in_aggregate": self.aggregator.pending if self.aggregator else 0,
        }


def _lineage(message: Message) -> dict[str, list[list[int]]]:
    """The readings an inbound message stands for: its own ``sources`` when it has them (a
    forward from another gateway), else itself."""
    sources: dict[str, list[list[int]]] | None = message.get("sources")
    if sources is not None:
        return sources
    return {message["origin"]: [[message["seq"], message["seq"]]]}
