"""Module paths of 0.1 that moved in 0.2, importable for one more release with a warning.

0.2 put the package in folders by layer (docs/architecture.md). ``import
pytest_edgesim.engine`` (or ``python -m pytest_edgesim.gateway_main``) still works: a
finder on ``sys.meta_path`` answers for the old name with the module at its new path (the
same module object, so classes and module state are shared) and warns once per name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import CodeType, ModuleType

#: old name -> new name, both under ``pytest_edgesim.``
MOVED: dict[str, str] = {
    "aggregation": "core.aggregation",
    "builder": "core.scenario.builder",
    "cli_docker": "cli.docker",
    "config": "pytest_plugin.settings",
    "configuration_errors": "pytest_plugin.configuration_errors",
    "edge_scenario": "core.edge_scenario",
    "engine": "core.engine",
    "fixtures": "pytest_plugin.fixtures",
    "fixtures_docker": "pytest_plugin.docker_fixtures",
    "gateway_main": "gateway.main",
    "gateway_service": "gateway.service",
    "injection": "core.injection",
    "lockstep.docker_node": "docker.lockstep_gateway",
    "lockstep.gateway_logic": "gateway.logic",
    "lockstep.gateway_node": "gateway.lockstep_node",
    "lockstep.node": "lockstep.host",
    "markers": "pytest_plugin.markers",
    "metrics": "core.metrics.recorder",
    "models": "core.models",
    "models.broker": "core.models.broker",
    "models.cloud": "core.models.cloud",
    "models.delays": "core.models.delays",
    "models.gateway": "gateway.model",
    "models.sensor": "core.models.sensor",
    "models.session": "core.models.session",
    "models.values": "core.models.values",
    "network": "core.network",
    "node": "core.node",
    "packet": "core.packet",
    "plugin": "pytest_plugin.hooks",
    "realtime": "core.realtime",
    "report": "pytest_plugin.session_report",
    "report_table": "core.metrics.tables",
    "result": "core.result",
    "rng": "core.rng",
    "scenario": "core.scenario",
    "scenario.checks": "core.scenario.checks",
    "scenario.notes": "core.scenario.notes",
    "scenario.overrides": "core.scenario.overrides",
    "scenario.problems": "core.scenario.problems",
    "scenario.schema": "core.scenario.schema",
    "scenario.yaml_source": "core.scenario.yaml_source",
    "simulation": "core.simulation",
    "sketch": "core.metrics.sketch",
    "stats": "core.stats",
    "summaries": "core.metrics.summaries",
    "topics": "core.topics",
    "trace": "core.trace",
    "trials": "pytest_plugin.trials",
    "units": "core.units",
}


class _MovedModuleLoader(importlib.abc.Loader):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def _target(self) -> ModuleType:
        warnings.warn(
            f"{self.old} moved to {self.new}; the old path goes in the next release",
            DeprecationWarning,
            stacklevel=4,
        )
        return importlib.import_module(self.new)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self._target()

    def exec_module(self, module: ModuleType) -> None:
        sys.modules[self.old] = module

    def get_code(self, fullname: str) -> CodeType | None:
        """For ``python -m OLD``: the new module's code, run as ``__main__``."""
        spec = importlib.util.find_spec(self.new)
        assert spec is not None and spec.loader is not None
        return spec.loader.get_code(self.new)  # type: ignore[attr-defined]


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds ``pytest_edgesim.<old>`` for every old name in :data:`MOVED`."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("pytest_edgesim."):
            return None
        new = MOVED.get(fullname.removeprefix("pytest_edgesim."))
        if new is None:
            return None
        loader = _MovedModuleLoader(fullname, "pytest_edgesim." + new)
        return importlib.machinery.ModuleSpec(fullname, loader)


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
