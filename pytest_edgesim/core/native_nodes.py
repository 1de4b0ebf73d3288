"""Python nodes on the native engine, through callbacks.

A gateway the native engine does not model (the user's logic, ``implementation: python``; a
Docker lockstep container; a kind a user registered with ``register_gateway_kind``) stays
the Python :class:`~pytest_edgesim.core.node.Node` its kind makes, bound to a
:class:`~pytest_edgesim.core.node.NodeContext` whose parts lead into the native run instead
of the pure engine's objects: ``send`` puts the packet on the native network,
``coordinator.schedule_at`` queues a timer in the native queue (the same ``(time,
sequence)`` order), ``trace.record`` writes the canonical line into the native digest,
``metrics.delivery`` is the native delivery ledger, and the counters the node keeps itself
(``metrics.node``/``metrics.topic``: its drops, its forwards) are added to the native ones
when the result is read. The engine hands each packet delivered to such a node, and each
timer it set, to :class:`NativeNodes`, which calls the node as the pure engine would. The
node cannot tell; only those nodes run at Python's speed.

What the pure engine offers a node and this does not (the native engine's run is not
steerable): a subscription made after retained messages, unsubscribing and the broker's
per-client sessions, a link's live state (``network.links``: a node reads a link's profile
with ``profile_for``). A node that asks for them gets a
:class:`~pytest_edgesim.errors.SimulationError` saying so (``EDGESIM_ENGINE=pure`` runs it
on the pure engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from pytest_edgesim.core.assertions import AssertionLog
from pytest_edgesim.core.engine import Coordinator
from pytest_edgesim.core.metrics.delivery import DeliveryLedger, Destination
from pytest_edgesim.core.metrics.recorder import MetricsRecorder
from pytest_edgesim.core.network import LatencyNetworkModel, LinkProfile
from pytest_edgesim.core.node import Node, NodeContext
from pytest_edgesim.core.packet import PUBACK, PUBLISH, Message, Packet
from pytest_edgesim.core.rng import StreamFactory
from pytest_edgesim.core.topology import GatewaySite
from pytest_edgesim.core.trace import TraceRecorder
from pytest_edgesim.errors import SimulationError

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.core.scenario.schema import GatewaySpec

Lineage = tuple[tuple[str, int, int], ...]
_PURE = "EDGESIM_ENGINE=pure runs it on the pure engine"


class NativeCoordinator(Coordinator):
    """The ``Coordinator`` of Python nodes on the native engine: the native queue. ``now`` is
    the time of the event being handed to Python (set before each callback); a node may move
    it within its event (a lockstep gateway stamps each output with its own time), and what
    it sends leaves at that time."""

    def __init__(self, run: Any):
        super().__init__()
        self._run = run
        #: what the nodes asked to be called when a partition goes down or heals
        self.cut_watchers: list[Callable[[], None]] = []
        self._calls: dict[int, tuple[Callable[[Any], None], Any]] = {}
        self._next_call = 0

    def schedule_at(self, time: int, callback: Callable[[Any], None], arg: Any = None) -> None:
        if time < self.now:
            raise SimulationError(
                f"cannot schedule at t={time} ticks: virtual time is already {self.now}"
            )
        self._next_call = call = self._next_call + 1
        self._calls[call] = (callback, arg)
        self._run.schedule(time, call)

    def schedule_in(self, delay: int, callback: Callable[[Any], None], arg: Any = None) -> None:
        self.schedule_at(self.now + delay, callback, arg)

    def peek(self) -> int | None:
        return cast("int | None", self._run.peek())

    def fire(self, call: int, now: int) -> None:
        """Timer ``call`` is due at ``now`` (the native engine's callback; call 0: the
        partitions changed)."""
        self.now = now
        if call == 0:
            for watcher in tuple(self.cut_watchers):
                watcher()
            return
        callback, arg = self._calls.pop(call)
        callback(arg)

    def sync(self) -> None:
        """Read the native clock and count (between runs)."""
        self.now = self._run.now
        self.events_processed = self._run.events


class NativeTrace(TraceRecorder):
    """``TraceRecorder`` of a Python node: its lines go into the native run's digest."""

    def __init__(self, run: Any, *, enabled: bool):
        super().__init__(enabled=enabled)
        self._run = run

    def record(
        self, time: int, kind: str, node: str, peer: str, topic: str, message: str, detail: str
    ) -> None:
        # the fields as the pure recorder's f-string (or ``%d`` for a time not an int) writes them
        self._run.trace(
            time if time.__class__ is int else int("%d" % time),
            f"{kind}",
            f"{node}",
            f"{peer}",
            f"{topic}",
            f"{message}",
            f"{detail}",
        )


class NativeLedger(DeliveryLedger):
    """The delivery ledger of Python nodes: the native run's (``source`` records are kept
    here and added when the result is read)."""

    def __init__(self, run: Any, index: Mapping[str, int]):
        super().__init__()
        self._run = run
        self._index = index
        #: ``destination`` calls in order, (name, filters, gateway): the order the pure
        #: ledger would hold them in (native gateways' are added here at their turn)
        self.made: list[tuple[str, tuple[str, ...] | None, bool]] = []

    def _node(self, name: str) -> int:
        node = self._index.get(name)
        if node is None:
            raise SimulationError(
                f"the delivery ledger names {name!r}, which is not a node of the run "
                f"(the native engine accounts nodes only; {_PURE})"
            )
        return node

    def _lineage(self, sources: Lineage | None) -> list[tuple[int, int, int]] | None:
        if sources is None:
            return None
        return [(self._node(origin), first, last) for origin, first, last in sources]

    def destination(
        self, name: str, filters: Iterable[str] | None = None, *, gateway: bool = False
    ) -> Destination:
        """The node's handle for ``arrive`` (what it received is counted natively)."""
        destination = self.destinations.get(name)
        if destination is None:
            node = self._node(name)
            listed = None if filters is None else tuple(filters)
            destination = self.destinations[name] = Destination(name, listed, gateway)
            self.made.append((name, listed, gateway))
            self._run.ledger_destination(node)
        return destination

    def arrive(
        self, destination: Destination, origin: str, seq: int, sources: Lineage | None
    ) -> None:
        index = self._index
        node = index.get(origin)
        if node is None or sources is not None:
            node = self._node(origin)
            lineage = self._lineage(sources)
            self._run.ledger_arrive(index[destination.name], node, seq, lineage)
            return
        self._run.ledger_arrive(index[destination.name], node, seq, None)  # (a reading)

    def drop(self, origin: str, seq: int, sources: Lineage | None, cause: str) -> None:
        self._run.ledger_drop(self._node(origin), seq, self._lineage(sources), cause)

    def abandon(self, destination_name: str, cause: str) -> None:
        raise SimulationError(f"a fault on the native engine ({_PURE})")


class NativeNetwork:
    """The ``NetworkView`` of a Python node on the native engine."""

    def __init__(
        self,
        run: Any,
        scenario: Scenario,
        index: Mapping[str, int],
        coordinator: NativeCoordinator,
    ):
        self._run = run
        self._index = index
        self._scenario = scenario
        self._coordinator = coordinator
        self._model: LatencyNetworkModel | None = None

    def _profiles(self) -> LatencyNetworkModel:
        """The pure network's profile resolution (made when first asked: it matches every
        rule against every node)."""
        if self._model is None:
            spec = self._scenario.spec
            self._model = LatencyNetworkModel(
                self._coordinator,
                StreamFactory(0),
                MetricsRecorder(),
                TraceRecorder(enabled=False),
                cast("Mapping[str, Node]", dict.fromkeys(self._index)),
                [spec.broker.name],
                default=spec.network.default,
                rules=spec.network.links,
            )
        return self._model

    @property
    def links(self) -> Mapping[tuple[str, str], Any]:
        return {}  # (a node reads a link's profile with profile_for)

    def profile_for(self, src: str, dst: str) -> LinkProfile:
        if self._scenario.spec.network.model == "direct":
            return LinkProfile()
        return self._profiles().profile_for(src, dst)

    def is_partitioned(self, src: str, dst: str) -> bool:
        return bool(self._run.is_partitioned(self._index[src], self._index[dst]))

    def watch_cuts(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` each time a partition goes down or heals (after the change)."""
        self._coordinator.cut_watchers.append(callback)
        self._run.watch_cuts()


class NativeBroker(Node):
    """The broker as a Python node sees it on the native engine (``GatewaySite.broker``):
    its subscriptions go to the native broker."""

    up = True

    def __init__(self, name: str, run: Any, index: Mapping[str, int]):
        super().__init__(name)
        self._run = run
        self._index = index

    def subscribe(self, subscriber: str, topic_filter: str, qos: int) -> None:
        if self._run.retained_count():
            raise SimulationError(
                f"{subscriber!r} subscribes after retained messages were published: the "
                f"native broker does not deliver them on subscription ({_PURE})"
            )
        self._run.subscribe(self._index[subscriber], topic_filter, qos)

    def unsubscribe(self, subscriber: str, topic_filter: str, qos: int) -> None:
        raise SimulationError(f"unsubscribing at the native broker ({_PURE})")

    def forget_client(self, subscriber: str) -> None:
        raise SimulationError(f"a client's session at the native broker ({_PURE})")

    def open_session(self, subscriber: str, **session: Any) -> None:
        raise SimulationError(f"a client's session at the native broker ({_PURE})")


class NativeNodes:
    """The Python nodes of one native run: binds them, and takes the engine's callbacks."""

    def __init__(self, run: Any, scenario: Scenario, seed: int, names: Sequence[str], trace: bool):
        self.run = run
        self.names = list(names)
        self.index = {name: position for position, name in enumerate(names)}
        self.coordinator = NativeCoordinator(run)
        self.streams = StreamFactory(seed)
        self.metrics = MetricsRecorder()
        self.ledger = NativeLedger(run, self.index)
        self.metrics.delivery = self.ledger
        self.trace = NativeTrace(run, enabled=trace)
        self.assertions = AssertionLog()
        self.network = NativeNetwork(run, scenario, self.index, self.coordinator)
        self.broker = NativeBroker(scenario.spec.broker.name, run, self.index)
        self.site = GatewaySite(scenario, seed, self.broker)
        self.nodes: dict[str, Node] = {}
        self._by_index: dict[int, Node] = {}
        run.set_foreign(self.coordinator.fire, self.packet)

    def make(self, spec: GatewaySpec, factory: Callable[[GatewaySpec, GatewaySite], Node]) -> None:
        """Make gateway ``spec``'s node (the pure engine makes every node before binding any)."""
        node = factory(spec, self.site)
        self.nodes[spec.name] = node
        self._by_index[self.index[spec.name]] = node
        self.run.add_foreign(self.index[spec.name])

    def bind(self, name: str) -> None:
        """Bind node ``name`` (in the pure engine's order: the gateways' order)."""
        node = self.nodes[name]
        node.bind(
            NodeContext(
                name,
                self.coordinator,
                self.send,
                self.streams,
                self.metrics,
                self.trace,
                self.network,
                self.assertions,
            )
        )

    # --- the node's side ----------------------------------------------------------------------
    def send(self, packet: Packet) -> None:
        """``NodeContext.send``: the packet goes onto the native network now."""
        index = self.index
        dst = index.get(packet.dst)
        if dst is None:
            raise SimulationError(
                f"{packet.src} sent a packet to {packet.dst!r}, which is not a node"
            )
        message = packet.message
        origin = index.get(message.origin)
        if origin is None:
            raise SimulationError(
                f"{packet.src} sent message {message.message_id}, whose origin "
                f"{message.origin!r} is not a node (the native engine numbers nodes; {_PURE})"
            )
        sources = message.sources
        packet.sent_at = now = self.coordinator.now
        self.run.send(
            now,
            packet.kind == PUBACK,
            index[packet.src],
            dst,
            packet.qos,
            packet.packet_id,
            packet.duplicate,
            message.topic,
            message.payload,
            origin,
            message.seq,
            message.created_at,
            message.qos,
            message.retain,
            message.size_bytes,
            None if sources is None else self.ledger._lineage(sources),
        )

    # --- the engine's side --------------------------------------------------------------------
    def packet(
        self,
        now: int,
        node: int,
        puback: bool,
        src: str,
        qos: int,
        packet_id: int,
        duplicate: bool,
        sent_at: int,
        topic: str,
        payload: Any,
        origin: str,
        seq: int,
        created_at: int,
        message_qos: int,
        retain: bool,
        size_bytes: int,
        sources: Lineage | None,
    ) -> None:
        """The native network delivered this packet to Python node ``node`` at ``now``."""
        self.coordinator.now = now
        message = Message(
            topic, payload, origin, seq, created_at, message_qos, retain, size_bytes, sources
        )
        packet = Packet(
            PUBACK if puback else PUBLISH,
            src,
            self.names[node],
            message,
            qos,
            packet_id,
            duplicate,
            sent_at,
        )
        self._by_index[node].on_packet(packet)

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()
