"""Scenario -> built topology: the nodes a scenario names and the network between them, bound.

Both kinds of run build through :class:`Topology`: the virtual-time run
(:class:`~pytest_edgesim.core.simulation.Simulation`) with the broker model and gateways of
their kinds, the wall-clock run (:class:`~pytest_edgesim.live.run.LiveRun`) with the real
broker's port and the real gateways' uplinks. Nodes are made in one order (broker, cloud,
devices, gateways), which is the order of their metrics and of their random streams' use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_edgesim.core.assertions import AssertionLog
from pytest_edgesim.core.metrics.recorder import MetricsRecorder
from pytest_edgesim.core.models.cloud import CloudSink
from pytest_edgesim.core.models.sensor import SensorModel
from pytest_edgesim.core.network import (
    DirectNetworkModel,
    LatencyNetworkModel,
    NetworkModel,
    resolve_nodes,
)
from pytest_edgesim.core.node import Node, NodeContext
from pytest_edgesim.core.rng import StreamFactory
from pytest_edgesim.errors import UsageError

if TYPE_CHECKING:
    from pytest_edgesim.core.engine import Coordinator
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.core.trace import TraceRecorder


@dataclass(frozen=True)
class GatewaySite:
    """What a gateway factory may use while the topology is built: the scenario, the run's
    seed and the broker node (the network comes with the node's context at ``bind``)."""

    scenario: Scenario
    seed: int
    broker: Node

    @property
    def retry_interval(self) -> int:
        """The scenario's QoS 1 retry interval, in ticks."""
        return self.scenario.spec.broker.retry_interval


GatewayFactory = Callable[["GatewaySpec", GatewaySite], Node]


class Topology:
    """A scenario's nodes and network, every node bound to its context.

    ``broker`` is the node that stands for the broker; ``gateway(spec, site)`` makes each
    gateway's node. The scenario's scheduled partitions are on the coordinator's queue.
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        coordinator: Coordinator,
        *,
        tracer: TraceRecorder,
        broker: Node,
        gateway: GatewayFactory,
        record_limit: int = 100_000,
    ):
        spec = scenario.spec
        self.scenario = scenario
        self.seed = seed
        self.coordinator = coordinator
        self.tracer = tracer
        self.streams = StreamFactory(seed)
        self.metrics = MetricsRecorder()
        self.assertions = AssertionLog()
        self.broker = broker
        self.cloud = CloudSink(spec.cloud.name, record_limit=record_limit)
        nodes: dict[str, Node] = {broker.name: broker, self.cloud.name: self.cloud}
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
        site = GatewaySite(scenario, seed, broker)
        for gateway_spec in spec.gateways:
            nodes[gateway_spec.name] = gateway(gateway_spec, site)
        self.nodes: Mapping[str, Node] = nodes
        self.network = self._network(nodes)
        transmit = self.network.transmit
        for node in nodes.values():
            node.bind(
                NodeContext(
                    node.name,
                    coordinator,
                    transmit,
                    self.streams,
                    self.metrics,
                    tracer,
                    self.network,
                    self.assertions,
                )
            )

    def _network(self, nodes: Mapping[str, Node]) -> NetworkModel:
        network_spec = self.scenario.spec.network
        parts = (
            self.coordinator,
            self.streams,
            self.metrics,
            self.tracer,
            nodes,
            [self.broker.name],
        )
        network: NetworkModel
        if network_spec.model == "direct":
            network = DirectNetworkModel(*parts)
        else:
            network = LatencyNetworkModel(
                *parts, default=network_spec.default, rules=network_spec.links
            )
        for partition in network_spec.partitions:
            cut = network.add_cut(
                resolve_nodes(partition.between[0], nodes),
                resolve_nodes(partition.between[1], nodes),
            )
            self.coordinator.schedule_at(partition.start, network.cut_down, cut)
            if partition.end is not None:
                self.coordinator.schedule_at(partition.end, network.cut_up, cut)
        return network

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise UsageError(f"no node {name!r} (nodes: {', '.join(self.nodes)})") from None
