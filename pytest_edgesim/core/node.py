"""The node interface: the seam between the coordinator and whatever a node really is.

A Python model, a container driven over the lockstep protocol and a container speaking real
MQTT are all :class:`Node` objects to the coordinator; code above this seam never asks
which one it has. A node is bound to a :class:`NodeContext` once, before the run; after
that it is advanced by the coordinator (timers it asked for) and receives packets the
network delivers. It emits only through its context: ``send`` and ``call_at``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from pytest_edgesim.core.assertions import AssertionLog
    from pytest_edgesim.core.engine import Coordinator
    from pytest_edgesim.core.metrics.recorder import MetricsRecorder
    from pytest_edgesim.core.packet import Message, Packet
    from pytest_edgesim.core.rng import RandomStream, StreamFactory
    from pytest_edgesim.core.trace import TraceRecorder


class NetworkView(Protocol):
    """What a node may read of the network it is on (a ``NetworkModel``): its open links,
    the profile a link between two nodes would have, whether a partition cuts two nodes off
    now, and a call each time a partition goes down or heals."""

    @property
    def links(self) -> Mapping[tuple[str, str], Any]: ...

    def profile_for(self, src: str, dst: str) -> Any: ...

    def is_partitioned(self, src: str, dst: str) -> bool: ...

    def watch_cuts(self, callback: Callable[[], None]) -> None: ...


class PublishingSession(Protocol):
    """A node's MQTT sending side (packet ids, QoS 1 retries); see ``Node.mqtt_session``."""

    def publish(self, to: str, message: Message, qos: int) -> object: ...


class NodeContext:
    """What a node may use: the clock, the network, timers, its random stream, metrics, trace.

    ``network`` is the network the node is on (None for a node bound by hand without one);
    ``assertions`` the run's log of ``always``/``sometimes``/... statements (None: they are
    not kept).
    """

    __slots__ = (
        "_streams",
        "assertions",
        "coordinator",
        "metrics",
        "name",
        "network",
        "send",
        "trace",
    )

    def __init__(
        self,
        name: str,
        coordinator: Coordinator,
        send: Callable[[Packet], None],
        streams: StreamFactory,
        metrics: MetricsRecorder,
        trace: TraceRecorder,
        network: NetworkView | None = None,
        assertions: AssertionLog | None = None,
    ):
        self.name = name
        self.network = network
        self.assertions = assertions
        self.coordinator = coordinator
        self.send = send
        self._streams = streams
        self.metrics = metrics
        self.trace = trace

    @property
    def now(self) -> int:
        return self.coordinator.now

    def call_at(self, time: int, callback: Callable[[Any], None], arg: Any = None) -> None:
        """Run ``callback(arg)`` at virtual time ``time`` (a timer)."""
        self.coordinator.schedule_at(time, callback, arg)

    def stream(self, purpose: str = "") -> RandomStream:
        """This node's random stream (or a sub-stream for ``purpose``), named after the node."""
        return self._streams(f"node:{self.name}" + (f"/{purpose}" if purpose else ""))

    def assert_property(self, kind: str, condition: object, label: str) -> bool:
        """State ``always``/``sometimes``/``reachable``/``unreachable`` property ``label``
        now, from this node (see :mod:`pytest_edgesim.core.assertions`); returns whether
        ``condition`` held. No part of the trace."""
        held = bool(condition)
        if self.assertions is not None:
            self.assertions.record(kind, label, held, self.coordinator.now, self.name)
        return held


class Node:
    """Base class of every node. Subclasses override the hooks they need."""

    #: ``"python_model"`` for in-process models; container-backed nodes say what they are.
    implementation: ClassVar[str] = "python_model"
    #: True when the node runs on the wall clock and so cannot take part in a virtual-time run.
    wall_clock: ClassVar[bool] = False
    #: the faults :meth:`apply_fault` handles (``stop``, ``kill``, ``start``, ``pause``,
    #: ``resume``, ``disconnect``, ``reconnect``); a run refuses the others with a clear error
    supported_faults: ClassVar[tuple[str, ...]] = ()
    #: the conditions :meth:`set_condition` changes (a fault kind's way into the node: a
    #: gateway's ``uplink`` and ``storage_full``, a device's ``duty_cycle`` and ``clock``,
    #: the broker's ``persistence``)
    supported_conditions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str):
        self.name = name
        self.context: NodeContext | None = None

    def bind(self, context: NodeContext) -> None:
        """Called once before the run starts; schedule initial timers here."""
        self.context = context

    def on_packet(self, packet: Packet) -> object:
        """A packet addressed to this node has arrived (at ``context.now``).

        What it returns is ignored (declared ``object``, so that a subclass's ``on_packet``
        may return something).
        """
        return None

    def close(self) -> None:
        """The run is over or abandoned: release whatever the node holds."""

    def mqtt_session(self) -> PublishingSession | None:
        """The node's MQTT sending side once bound (packet ids, QoS 1 retries), or ``None``
        for a node that does not publish. A test's ``inject(..., source=node)`` publishes
        through it, so the injection takes the node's link and QoS guarantees."""
        return None

    def claim_message_seq(self) -> int | None:
        """Number one more message as this node's (an injected one) and return its number,
        or ``None`` when the node does not number its messages (the run numbers them)."""
        return None

    def apply_fault(self, action: str) -> str:
        """Undergo fault ``action`` now (one of :attr:`supported_faults`) and return what it
        cost, in a few words for the trace (``"lost 3 held messages"``) or ``""``.

        The run calls it only in a valid transition (it keeps each node's life state: a
        ``start`` only after a ``stop`` or ``kill``, a ``resume`` only after a ``pause``,
        a ``reconnect`` only after a ``disconnect``); a restart is ``stop`` then ``start``.
        """
        from pytest_edgesim.errors import FaultError

        raise FaultError(f"node {self.name!r} ({self.implementation}) cannot {action}")

    def set_condition(self, condition: str, setting: Any) -> str:
        """Change ``condition`` (one of :attr:`supported_conditions`) to ``setting`` now, as
        a fault kind asks (see :mod:`pytest_edgesim.core.builtin_faults`); return what it
        did, in a few words for the trace, or ``""``."""
        from pytest_edgesim.errors import FaultError

        raise FaultError(f"node {self.name!r} ({self.implementation}) has no {condition}")

    def broker_restarted(self) -> None:
        """The broker came back after a stop or kill: a client re-subscribes here (its
        subscriptions died with a broker without persistence). Called in node order."""

    def describe(self) -> dict[str, Any]:
        """A small, JSON-friendly summary of the node's state for people and reports."""
        return {"name": self.name, "implementation": self.implementation}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
