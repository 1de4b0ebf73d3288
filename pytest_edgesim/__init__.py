"""pytest-edgesim: test IoT and edge systems from pytest.

The library core (scenarios, the virtual-time coordinator, network and node models,
metrics, traces) imports and runs without pytest, Docker or a network::

    from pytest_edgesim import Scenario, simulate

    result = simulate(Scenario.from_yaml("scenarios/basic.yaml"), seed=1, until="30s")
    print(result.metrics.node("gateway").latency_ms, result.trace_digest)

Names are imported lazily so that loading the pytest plugin stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import EdgesimError, ScenarioError, SimulationError

__version__ = "0.1.0"

_LAZY = {
    "Scenario": ".scenario",
    "ScenarioBuilder": ".builder",
    "Simulation": ".simulation",
    "simulate": ".simulation",
    "register_gateway_implementation": ".simulation",
    "RunResult": ".result",
    "Metrics": ".metrics",
    "FlowStats": ".metrics",
    "Coordinator": ".engine",
    "Node": ".node",
    "NodeContext": ".node",
    "Message": ".packet",
    "DirectNetworkModel": ".network",
    "LatencyNetworkModel": ".network",
    "NetworkModel": ".network",
}

__all__ = [
    "Coordinator",
    "DirectNetworkModel",
    "EdgesimError",
    "FlowStats",
    "LatencyNetworkModel",
    "Message",
    "Metrics",
    "NetworkModel",
    "Node",
    "NodeContext",
    "RunResult",
    "Scenario",
    "ScenarioBuilder",
    "ScenarioError",
    "Simulation",
    "SimulationError",
    "__version__",
    "register_gateway_implementation",
    "simulate",
]

if TYPE_CHECKING:
    from .builder import ScenarioBuilder
    from .engine import Coordinator
    from .metrics import FlowStats, Metrics
    from .network import DirectNetworkModel, LatencyNetworkModel, NetworkModel
    from .node import Node, NodeContext
    from .packet import Message
    from .result import RunResult
    from .scenario import Scenario
    from .simulation import Simulation, register_gateway_implementation, simulate


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_edgesim' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
