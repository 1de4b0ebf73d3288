"""One run interface for every tier: :class:`ScenarioRun`, and :class:`TopologyRun`, which
implements it once over a built :class:`~pytest_edgesim.core.topology.Topology`.

A virtual-time run (:class:`~pytest_edgesim.core.simulation.Simulation`) and a wall-clock
run on real components (:class:`~pytest_edgesim.live.run.LiveRun`) differ only in how time
advances and what the result can promise (a trace digest, or none); the ``edge_scenario``
handle (:class:`~pytest_edgesim.core.edge_scenario.EdgeScenario`) drives either through this
interface.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pytest_edgesim.core.injection import Injections
from pytest_edgesim.core.result import RunResult
from pytest_edgesim.core.units import TICKS_PER_SECOND, parse_until
from pytest_edgesim.errors import SimulationError

if TYPE_CHECKING:
    from pytest_edgesim.core.engine import Coordinator
    from pytest_edgesim.core.metrics.recorder import MetricsRecorder
    from pytest_edgesim.core.models.cloud import CloudSink
    from pytest_edgesim.core.network import NetworkModel
    from pytest_edgesim.core.node import Node
    from pytest_edgesim.core.packet import Message
    from pytest_edgesim.core.rng import StreamFactory
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.core.topology import Topology
    from pytest_edgesim.core.trace import TraceRecorder


_Run = TypeVar("_Run", bound="TopologyRun")


class ScenarioRun(Protocol):
    """What every run of a scenario offers, whatever runs it."""

    scenario: Scenario
    seed: int

    @property
    def now(self) -> int:
        """Virtual time, in ticks (microseconds)."""

    @property
    def network(self) -> NetworkModel:
        """The network: ``partition``, ``heal``, ``set_link`` act from now on."""

    @property
    def nodes(self) -> Mapping[str, Node]: ...

    @property
    def cloud(self) -> CloudSink:
        """The cloud sink: what reached the cloud, in arrival order (``arrivals``)."""

    def run(self, until: int | float | str | None = None) -> RunResult: ...

    def result(self) -> RunResult: ...

    def node(self, name: str) -> Node: ...

    def inject(
        self,
        topic: str,
        payload: Any,
        *,
        source: str | None = None,
        qos: int = 0,
        retain: bool = False,
        size_bytes: int = 64,
    ) -> Message: ...

    def close(self) -> None: ...


class TopologyRun:
    """A run over a built topology: pausable, steerable between runs, closed once.

    Subclasses say how time advances (:meth:`_advance`) and whether the result carries a
    trace digest (:attr:`bit_exact`).
    """

    #: whether runs repeat to the bit (the result then carries the trace digest)
    bit_exact = True
    #: "simulation" or "live run": how errors name this run
    noun = "run"

    def __init__(self, topology: Topology):
        self.topology = topology
        self.scenario = topology.scenario
        self.seed = topology.seed
        self._injections = Injections()
        self._wall_time = 0.0
        self._closed = False

    # --- the parts ----------------------------------------------------------------------------
    @property
    def coordinator(self) -> Coordinator:
        return self.topology.coordinator

    @property
    def streams(self) -> StreamFactory:
        return self.topology.streams

    @property
    def metrics(self) -> MetricsRecorder:
        return self.topology.metrics

    @property
    def tracer(self) -> TraceRecorder:
        return self.topology.tracer

    @property
    def broker(self) -> Any:
        return self.topology.broker

    @property
    def cloud(self) -> CloudSink:
        return self.topology.cloud

    @property
    def network(self) -> NetworkModel:
        return self.topology.network

    @property
    def nodes(self) -> Mapping[str, Node]:
        return self.topology.nodes

    # --- running ------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Virtual time, in ticks (microseconds)."""
        return self.topology.coordinator.now

    def run(self, until: int | float | str | None = None) -> RunResult:
        """Run to virtual time ``until`` (seconds, or a string such as ``"500ms"``; None: the
        scenario's duration) and pause there.

        Events at times before ``until`` run; the clock then reads ``until`` and events due
        exactly then wait for the next call (as in SimPy), so a 10 s run of a sensor
        publishing every second from 0 s gives 10 readings, and whatever a test does while
        paused at ``until`` happens before them.
        """
        if self._closed:
            raise SimulationError(f"this {self.noun} is closed")
        target = self.scenario.duration_ticks if until is None else parse_until(until)
        self.run_to_tick(target, shown=until)
        return self.result()

    def run_to_tick(self, target: int, shown: object = None) -> None:
        """Run to ``target`` ticks (``shown``: how the caller wrote it, for the error)."""
        if target < self.now:
            shown = f"{target}us" if shown is None else shown
            raise SimulationError(
                f"cannot run until {shown!r}: virtual time is already "
                f"{self.now / TICKS_PER_SECOND:g}s"
            )
        started = time.perf_counter()
        try:
            self._advance(target)
        finally:
            self._wall_time += time.perf_counter() - started

    def _advance(self, target: int) -> None:
        raise NotImplementedError

    def result(self) -> RunResult:
        """The result so far (metrics over virtual time 0..now)."""
        now = self.now
        tracer = self.tracer
        return RunResult(
            scenario=self.scenario.name,
            seed=self.seed,
            virtual_time_ticks=now,
            metrics=self.metrics.snapshot(now),
            trace_digest=tracer.digest if self.bit_exact else None,
            events=self.coordinator.events_processed,
            nodes={name: node.describe() for name, node in self.nodes.items()},
            arrivals=tuple(self.cloud.arrivals),
            trace=tracer.kept() if tracer.keep else None,
            wall_time_s=self._wall_time,
            deliveries=self.metrics.delivery.snapshot(),
        )

    # --- acting on a paused run -----------------------------------------------------------------
    def node(self, name: str) -> Node:
        return self.topology.node(name)

    def inject(
        self,
        topic: str,
        payload: Any,
        *,
        source: str | None = None,
        qos: int = 0,
        retain: bool = False,
        size_bytes: int = 64,
    ) -> Message:
        """Publish a message now: from node ``source`` over its link, or straight to the broker."""
        node = self.node(source) if source is not None else None
        now = self.now
        message = self._injections.message(
            self.metrics,
            topic,
            payload,
            source=node,
            now=now,
            qos=qos,
            retain=retain,
            size_bytes=size_bytes,
        )
        broker = self.broker
        if self.tracer.enabled:
            self.tracer.record(
                now, "inject", message.origin, broker.name, topic, message.message_id, repr(payload)
            )
        if node is None:
            broker.route(message)
        else:
            Injections.send_from(node, broker.name, message)
        return message

    def close(self) -> None:
        """Close every node (and whatever the run holds); a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        for node in self.nodes.values():
            node.close()

    def __enter__(self: _Run) -> _Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
