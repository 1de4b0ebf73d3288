"""Scenario -> built topology -> run in virtual time -> :class:`RunResult`.

:class:`Simulation` builds the nodes and the network a scenario describes and runs them in
virtual time. It can be paused (``run(until=...)`` returns with the clock at ``until``),
acted on (partitions, link changes, injected messages) and run further: the pytest fixture
``edge_scenario`` drives one. :func:`simulate` is the one-call form.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pytest_edgesim.core.engine import Coordinator
from pytest_edgesim.core.gateway_kinds import gateway_kind
from pytest_edgesim.core.gateway_kinds import (
    register_gateway_implementation as register_gateway_implementation,
)
from pytest_edgesim.core.models.broker import BrokerModel
from pytest_edgesim.core.native import NativeSimulation, choose_engine
from pytest_edgesim.core.run import TopologyRun
from pytest_edgesim.core.scenario.schema import check_seed
from pytest_edgesim.core.topology import GatewaySite, Topology
from pytest_edgesim.core.trace import TraceRecorder
from pytest_edgesim.errors import SimulationError

if TYPE_CHECKING:
    from pytest_edgesim.core.node import Node
    from pytest_edgesim.core.result import RunResult
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.core.scenario.schema import GatewaySpec

TRACE_MODES = ("off", "digest", "full")


def virtual_time_gateway(spec: GatewaySpec, site: GatewaySite) -> Node:
    """The node of gateway ``spec`` in a virtual-time run, made by its kind."""
    kind = gateway_kind(spec.kind)
    if kind.virtual_time is None:
        raise SimulationError(
            f"gateway {spec.name!r}: a {kind.name} gateway ({kind.description}) runs only on "
            "the wall clock, not in a virtual-time run; use implementation: python_model or "
            "docker.mode: lockstep here, or run it in a statistical test (see docs/tiers.md)"
        )
    return kind.virtual_time(spec, site)


class Simulation(TopologyRun):
    """A built scenario, ready to run in virtual time; pausable and steerable between runs."""

    noun = "simulation"

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
        spec = scenario.spec
        topology = Topology(
            scenario,
            scenario.seed if seed is None else check_seed(seed),
            coordinator or Coordinator(),
            tracer=TraceRecorder(enabled=trace != "off", keep=trace == "full"),
            broker=BrokerModel(spec.broker.name, spec.broker),
            gateway=virtual_time_gateway,
            record_limit=record_limit,
        )
        super().__init__(topology)

    def _advance(self, target: int) -> None:
        self.coordinator.run(until=target, inclusive=False)

    def run_in_steps(self, target_ticks: int | None = None, steps: int = 100) -> Iterator[int]:
        """Run to ``target_ticks`` (None: the scenario's duration) in ``steps`` slices,
        yielding the clock after each (for progress)."""
        target = self.scenario.duration_ticks if target_ticks is None else target_ticks
        start = self.now
        for step in range(1, steps + 1):
            self.run_to_tick(start + (target - start) * step // steps)
            yield self.now


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
        from pytest_edgesim.core.scenario import Scenario

        scenario = Scenario.from_yaml(scenario)
    with open_simulation(scenario, seed, trace=trace, record_limit=record_limit) as simulation:
        return simulation.run(until)


def open_simulation(
    scenario: Scenario,
    seed: int | None = None,
    *,
    trace: str = "digest",
    record_limit: int = 100_000,
    profile: bool = False,
) -> Simulation | NativeSimulation:
    """A run of ``scenario`` on the engine :func:`~pytest_edgesim.core.native.choose_engine`
    picks for it: the native one when it is built and covers the scenario, else
    :class:`Simulation` (both give the same result; ``EDGESIM_ENGINE`` forces one). It runs
    (``run``, ``run_in_steps``, ``result``) but, when native, cannot be steered between runs.
    ``profile=True`` asks for :attr:`RunResult.profile` (the timeline and latency histograms
    the charts draw), which only the pure engine samples so far: it picks the pure one.
    """
    if trace not in TRACE_MODES:
        raise ValueError(f"trace must be one of {TRACE_MODES}, got {trace!r}")
    if not profile and choose_engine(scenario, trace).native:
        return NativeSimulation(scenario, seed, trace=trace, record_limit=record_limit)
    return Simulation(scenario, seed, trace=trace, record_limit=record_limit)
