"""Scenario -> built topology -> run -> :class:`RunResult`.

:class:`Simulation` builds the nodes and the network a scenario describes and runs them in
virtual time. It can be paused (``run(until=...)`` returns with the clock at ``until``),
acted on (partitions, link changes, injected messages) and run further: the pytest fixture
``edge_scenario`` is a thin wrapper around it. :func:`simulate` is the one-call form.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .engine import Coordinator
from .errors import SimulationError
from .injection import Injections
from .metrics import MetricsRecorder
from .models.broker import BrokerModel
from .models.cloud import CloudSink
from .models.gateway import GatewayModel
from .models.sensor import SensorModel
from .network import DirectNetworkModel, LatencyNetworkModel, NetworkModel, resolve_nodes
from .node import Node, NodeContext
from .packet import Message
from .result import RunResult
from .rng import StreamFactory
from .scenario.schema import check_seed
from .trace import TraceRecorder
from .units import parse_until

if TYPE_CHECKING:
    from .scenario import Scenario
    from .scenario.schema import GatewaySpec

TRACE_MODES = ("off", "digest", "full")

#: implementation name -> factory(name, spec, simulation) -> Node, for gateways
GatewayFactory = Callable[[str, "GatewaySpec", "Simulation"], Node]
_GATEWAY_FACTORIES: dict[str, GatewayFactory] = {}


def register_gateway_implementation(key: str, factory: GatewayFactory) -> None:
    """Let another tier (Docker, lockstep) provide gateways for ``implementation``/``mode`` key.

    Keys are ``"docker:mqtt"``, ``"docker:lockstep"`` and the like.
    """
    _GATEWAY_FACTORIES[key] = factory


def _gateway_key(spec: GatewaySpec) -> str:
    if spec.implementation == "python_model":
        return "python_model"
    mode = spec.docker.mode if spec.docker is not None else "mqtt"
    return f"docker:{mode}"


class Simulation:
    """A built scenario, ready to run in virtual time; pausable and steerable between runs."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        *,
        trace: str = "digest",
        record_limit: int = 100_000,
        coordinator: Coordinator | None = None,
    ):
        if trace not in TRACE_MODES:
            raise ValueError(f"trace must be one of {TRACE_MODES}, got {trace!r}")
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else check_seed(seed)
        self.coordinator = coordinator or Coordinator()
        self.streams = StreamFactory(self.seed)
        self.metrics = MetricsRecorder()
        self.tracer = TraceRecorder(enabled=trace != "off", keep=trace == "full")
        self._closed = False
        self._injections = Injections()
        self._wall_time = 0.0
        spec = scenario.spec

        nodes: dict[str, Node] = {}
        broker = BrokerModel(spec.broker.name, spec.broker)
        nodes[broker.name] = broker
        self.broker = broker
        cloud = CloudSink(spec.cloud.name, record_limit=record_limit)
        nodes[cloud.name] = cloud
        self.cloud = cloud
        retry = spec.broker.retry_interval
        for device in scenario.devices:
            nodes[device.name] = SensorModel(
                device.name,
                device.topic,
                device.spec,
                broker=broker.name,
                retry_interval=retry,
                base_dir=scenario.base_dir,
            )
        for gateway in spec.gateways:
            nodes[gateway.name] = self._make_gateway(gateway)
        self.nodes: Mapping[str, Node] = nodes

        network_spec = spec.network
        relays = [broker.name]
        if network_spec.model == "direct":
            self.network: NetworkModel = DirectNetworkModel(
                self.coordinator, self.streams, self.metrics, self.tracer, nodes, relays
            )
        else:
            self.network = LatencyNetworkModel(
                self.coordinator,
                self.streams,
                self.metrics,
                self.tracer,
                nodes,
                relays,
                default=network_spec.default,
                rules=network_spec.links,
            )
        for partition in network_spec.partitions:
            side_a = resolve_nodes(partition.between[0], nodes)
            side_b = resolve_nodes(partition.between[1], nodes)
            cut = self.network.add_cut(side_a, side_b)
            self.coordinator.schedule_at(partition.start, self.network.cut_down, cut)
            if partition.end is not None:
                self.coordinator.schedule_at(partition.end, self.network.cut_up, cut)

        transmit = self.network.transmit
        for node in nodes.values():
            node.bind(
                NodeContext(
                    node.name, self.coordinator, transmit, self.streams, self.metrics, self.tracer
                )
            )

    def _make_gateway(self, spec: GatewaySpec) -> Node:
        key = _gateway_key(spec)
        if key == "python_model":
            return GatewayModel(
                spec.name,
                spec,
                broker=self.broker,
                retry_interval=self.scenario.spec.broker.retry_interval,
                seed=self.seed,
                network=lambda: getattr(self, "network", None),
            )
        if key == "docker:lockstep" and key not in _GATEWAY_FACTORIES:
            from .lockstep.docker_node import register  # provides "docker:lockstep"

            register()
        factory = _GATEWAY_FACTORIES.get(key)
        if factory is None:
            raise SimulationError(
                f"gateway {spec.name!r}: implementation {key!r} is not available in a "
                "virtual-time run; use implementation: python_model here, or run it through "
                "the Docker tier (pytest --edgesim-docker, see docs/tiers.md)"
            )
        return factory(spec.name, spec, self)

    # --- running ----------------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Virtual time, in ticks (microseconds)."""
        return self.coordinator.now

    def run(self, until: int | float | str | None = None) -> RunResult:
        """Run to virtual time ``until`` (seconds, or a string such as ``"500ms"``).

        ``None`` runs to the scenario's ``duration``. Events at times before ``until`` run;
        the clock then reads ``until`` and events due exactly then wait for the next call (as
        in SimPy), so a 10 s run of a sensor publishing every second from 0 s gives 10
        readings, and whatever a test does while paused at ``until`` happens before them.
        """
        if self._closed:
            raise SimulationError("this simulation is closed")
        target = self.scenario.duration_ticks if until is None else parse_until(until)
        self._run_to_tick(target, shown=until)
        return self.result()

    def _run_to_tick(self, target: int, shown: object) -> None:
        if target < self.coordinator.now:
            raise SimulationError(
                f"cannot run until {shown!r}: virtual time is already "
                f"{self.coordinator.now / 1e6:g}s"
            )
        started = time.perf_counter()
        try:
            self.coordinator.run(until=target, inclusive=False)
        finally:
            self._wall_time += time.perf_counter() - started

    def run_in_steps(
        self, until: int | float | str | None = None, steps: int = 100
    ) -> Iterator[int]:
        """Run to ``until`` in ``steps`` slices, yielding the clock after each (for progress)."""
        target = self.scenario.duration_ticks if until is None else parse_until(until)
        start = self.coordinator.now
        for step in range(1, steps + 1):
            self._run_to_tick(start + (target - start) * step // steps, shown=until)
            yield self.coordinator.now

    def result(self) -> RunResult:
        """The result so far (metrics over virtual time 0..now)."""
        return RunResult(
            scenario=self.scenario.name,
            seed=self.seed,
            virtual_time_ticks=self.coordinator.now,
            metrics=self.metrics.snapshot(self.coordinator.now),
            trace_digest=self.tracer.digest,
            events=self.coordinator.events_processed,
            nodes={name: node.describe() for name, node in self.nodes.items()},
            arrivals=tuple(self.cloud.arrivals),
            trace=self.tracer.kept() if self.tracer.keep else None,
            wall_time_s=self._wall_time,
        )

    # --- acting on a paused run ---------------------------------------------------------------
    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise SimulationError(f"no node {name!r} (nodes: {', '.join(self.nodes)})") from None

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
        now = self.coordinator.now
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
        if self.tracer.enabled:
            self.tracer.record(
                now,
                "inject",
                message.origin,
                self.broker.name,
                topic,
                message.message_id,
                repr(payload),
            )
        if node is None:
            self.broker.route(message)
        else:
            Injections.send_from(node, self.broker.name, message)
        return message

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for node in self.nodes.values():
            node.close()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def simulate(
    scenario: Scenario | str | os.PathLike[str],
    seed: int | None = None,
    until: int | float | str | None = None,
    *,
    trace: str = "digest",
    record_limit: int = 100_000,
) -> RunResult:
    """Run ``scenario`` in virtual time and return its result.

    ``seed`` defaults to the scenario's seed; ``until`` (virtual seconds, or a string such as
    ``"500ms"`` or ``"10s"``) to its duration. ``trace`` is ``"digest"`` (the default: a
    digest, no events kept), ``"full"`` (keep every event, see ``RunResult.trace``) or
    ``"off"``. ``scenario`` may also be the path of a YAML file. The cloud keeps the first
    ``record_limit`` arrivals in ``RunResult.arrivals`` (and counts them all): the one part
    of a run's memory that grows with its duration, up to that limit.
    """
    if isinstance(scenario, (str, os.PathLike)):
        from .scenario import Scenario

        scenario = Scenario.from_yaml(scenario)
    with Simulation(scenario, seed, trace=trace, record_limit=record_limit) as simulation:
        return simulation.run(until)
