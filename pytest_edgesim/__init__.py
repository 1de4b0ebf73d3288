"""pytest-edgesim: test IoT and edge systems from pytest.

The library core (scenarios, the virtual-time coordinator, network and node models,
metrics, traces) imports and runs without pytest, Docker or a network.
"""

from __future__ import annotations

from .errors import EdgesimError, ScenarioError, SimulationError

__version__ = "0.1.0"

__all__ = ["EdgesimError", "ScenarioError", "SimulationError", "__version__"]
