"""pytest-edgesim: test IoT and edge systems from pytest.

The library core (scenarios, the virtual-time coordinator, network and node models,
metrics, traces) imports and runs without pytest, Docker or a network::

    from pytest_edgesim import Scenario, simulate

    result = simulate(Scenario.from_yaml("scenarios/basic.yaml"), seed=1, until="30s")
    print(result.metrics.node("gateway").latency_ms, result.trace_digest)

Everything a user touches is importable from here; names are loaded lazily, so that
loading the pytest plugin stays cheap. The package's folders are its layers (see
docs/architecture.md): ``core`` (no pytest, Docker or paho), then ``lockstep``, ``gateway``,
``live``, ``docker``, ``pytest_plugin`` and ``cli``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from pytest_edgesim import _moved
from pytest_edgesim.errors import EdgesimError, ScenarioError, SimulationError, UsageError

__version__ = "0.2.0.dev0"

_moved.install()

#: public name -> the module that defines it
_LAZY = {
    "Scenario": "pytest_edgesim.core.scenario",
    "Limits": "pytest_edgesim.core.limits",
    "ScenarioBuilder": "pytest_edgesim.core.scenario.builder",
    "Simulation": "pytest_edgesim.core.simulation",
    "simulate": "pytest_edgesim.core.simulation",
    "EdgeScenario": "pytest_edgesim.core.edge_scenario",
    "ScenarioRun": "pytest_edgesim.core.run",
    "RunResult": "pytest_edgesim.core.result",
    "Metrics": "pytest_edgesim.core.metrics.recorder",
    "FlowStats": "pytest_edgesim.core.metrics.recorder",
    "Coordinator": "pytest_edgesim.core.engine",
    "Node": "pytest_edgesim.core.node",
    "NodeContext": "pytest_edgesim.core.node",
    "Message": "pytest_edgesim.core.packet",
    "Packet": "pytest_edgesim.core.packet",
    "DirectNetworkModel": "pytest_edgesim.core.network",
    "LatencyNetworkModel": "pytest_edgesim.core.network",
    "NetworkModel": "pytest_edgesim.core.network",
    "GatewayKind": "pytest_edgesim.core.gateway_kinds",
    "NodeLogic": "pytest_edgesim.lockstep.sdk",
    "NodeApi": "pytest_edgesim.lockstep.sdk",
    "register_gateway_kind": "pytest_edgesim.core.gateway_kinds",
    "register_gateway_implementation": "pytest_edgesim.core.gateway_kinds",
}
_SUBMODULES = {"strategies"}

__all__ = [
    "Coordinator",
    "DirectNetworkModel",
    "EdgeScenario",
    "EdgesimError",
    "FlowStats",
    "GatewayKind",
    "LatencyNetworkModel",
    "Limits",
    "Message",
    "Metrics",
    "NetworkModel",
    "Node",
    "NodeApi",
    "NodeContext",
    "NodeLogic",
    "Packet",
    "RunResult",
    "Scenario",
    "ScenarioBuilder",
    "ScenarioError",
    "ScenarioRun",
    "Simulation",
    "SimulationError",
    "UsageError",
    "__version__",
    "register_gateway_kind",
    "simulate",
    "strategies",
]

if TYPE_CHECKING:
    from pytest_edgesim import strategies
    from pytest_edgesim.core.edge_scenario import EdgeScenario
    from pytest_edgesim.core.engine import Coordinator
    from pytest_edgesim.core.gateway_kinds import GatewayKind, register_gateway_kind
    from pytest_edgesim.core.limits import Limits
    from pytest_edgesim.core.metrics.recorder import FlowStats, Metrics
    from pytest_edgesim.core.network import DirectNetworkModel, LatencyNetworkModel, NetworkModel
    from pytest_edgesim.core.node import Node, NodeContext
    from pytest_edgesim.core.packet import Message, Packet
    from pytest_edgesim.core.result import RunResult
    from pytest_edgesim.core.run import ScenarioRun
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.core.scenario.builder import ScenarioBuilder
    from pytest_edgesim.core.simulation import Simulation, simulate
    from pytest_edgesim.lockstep.sdk import NodeApi, NodeLogic


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_edgesim' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
