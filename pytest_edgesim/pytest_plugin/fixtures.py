"""The fixtures: ``edge_scenario``, ``edgesim_seed``, ``edge_coordinator``, ``latency_network``.

They build core objects and tear them down; everything heavy is imported inside them, so
loading the plugin stays cheap. Per-test state lives in the item's stash
(:func:`item_record`); what the controller needs travels on reports (see
:mod:`pytest_edgesim.pytest_plugin.session_report`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgesim.core.edge_scenario import EdgeScenario, docker_components, wall_clock_components
from pytest_edgesim.errors import RequirementError
from pytest_edgesim.pytest_plugin import settings, swarm_report
from pytest_edgesim.pytest_plugin.items import fail_item, item_record, item_scenario
from pytest_edgesim.pytest_plugin.markers import replay_check_requested
from pytest_edgesim.pytest_plugin.session_report import (
    RUN_PROPERTY,
    SEED_PROPERTY,
    SessionReport,
    session_report_key,
)
from pytest_edgesim.pytest_plugin.trials import (
    current_trial,
    on_real_components,
    record_faults,
    record_metric,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pytest_edgesim.core.engine import Coordinator
    from pytest_edgesim.core.network import LatencyNetworkModel
    from pytest_edgesim.core.node import Node
    from pytest_edgesim.core.result import RunResult
    from pytest_edgesim.core.scenario import Scenario


def _deterministic(item: pytest.Item) -> bool:
    """A test of the deterministic tier, running now in virtual time."""
    marked = item.get_closest_marker("deterministic") is not None
    return marked and not on_real_components(item)


def _with_gateway(item: pytest.Item, scenario: Scenario, implementation: str) -> Scenario:
    """Every gateway with ``implementation``; in a deterministic test a Docker gateway whose
    ``docker.mode`` the scenario leaves open runs in lockstep (virtual time)."""
    from pytest_edgesim.errors import ScenarioError

    deterministic = _deterministic(item)
    try:
        return scenario.with_gateways(implementation, mode="lockstep" if deterministic else None)
    except ScenarioError as error:
        problem = str(error)
    what = f"scenario {scenario.name!r} with gateway {implementation!r}"
    fail_item(item, f"cannot run {what}:\n{problem}")


def _with_broker(item: pytest.Item, scenario: Scenario, broker: dict[str, str]) -> Scenario:
    """The scenario on the broker of a ``broker=`` entry (its configuration replaced only
    when the entry names one)."""
    from pytest_edgesim.errors import ScenarioError
    from pytest_edgesim.pytest_plugin.docker_fixtures import scenario_broker

    try:
        return scenario_broker(broker, scenario)
    except ScenarioError as error:
        problem = str(error)
    fail_item(item, f"cannot run scenario {scenario.name!r} on broker {broker!r}:\n{problem}")


def _with_swarm(item: pytest.Item, scenario: Scenario) -> Scenario:
    """The scenario with ``statistical(faults="swarm")``'s section (core/swarm.py)."""
    from pytest_edgesim.errors import ScenarioError

    try:
        return swarm_report.with_swarm(item, scenario)
    except ScenarioError as error:
        problem = str(error)
    fail_item(item, f"cannot swarm scenario {scenario.name!r}:\n{problem}")


def _describe(scenario: Scenario) -> str:
    source = scenario.source
    return f"{scenario.name!r} ({source})" if source else f"{scenario.name!r} (built in)"


def _check_components(item: pytest.Item, scenario: Scenario) -> None:
    """Refuse wall-clock components in a deterministic test; hold back Docker components."""
    if _deterministic(item):
        wall_clock = wall_clock_components(scenario)
        if wall_clock:
            paths = "\n".join(f"  {path}" for path in wall_clock)
            fail_item(
                item,
                f"deterministic test, but scenario {_describe(scenario)} asks for components "
                f"that run on the wall clock:\n{paths}\n"
                "A deterministic test runs in virtual time: use implementation: python_model "
                "(or docker.mode: lockstep for a gateway), or mark the test "
                "@pytest.mark.statistical.",
            )
    if docker_components(scenario):
        from pytest_edgesim.pytest_plugin.docker_fixtures import docker_tier_problem

        mode = settings.docker_mode(item.config)
        if mode == "off":
            pytest.skip("implementation: docker: Docker items are off (--edgesim-docker=off)")
        problem = docker_tier_problem(item, scenario)
        if problem is None:
            return
        if mode == "require":
            raise RequirementError(f"{problem}; --edgesim-docker=require")
        pytest.skip(problem)


def _run_entry(edge: EdgeScenario) -> dict[str, Any]:
    result = edge.simulation.result()
    entry = {
        "scenario": result.scenario,
        "seed": result.seed,
        "trace_digest": result.trace_digest,
        "metrics": result.metrics.to_dict(),
        "flows": _flows(result),
        "wall_time_s": round(result.wall_time_s, 6),
        "profile": result.profile.to_dict(),  # (fixed size: what --edgesim-html charts)
    }
    broker = result.nodes.get(edge.scenario.spec.broker.name, {})
    entry.update({key: broker[key] for key in ("broker_version", "broker_config") if key in broker})
    if result.faults:  # a fault run never reads as a clean one
        entry["faults"] = [fault.to_dict() for fault in result.faults]
    entry.update(swarm_report.run_entry(edge))
    return entry


def _flows(result: RunResult) -> dict[str, dict[str, float | None]]:
    """Per destination readings reach (the cloud, each gateway): the delivery ratio of every
    source's readings and the latency percentiles of what arrived (baselines compare them)."""
    flows = {}
    for destination in sorted(result.deliveries.flows):
        ratio = result.delivery("*", destination).ratio
        node = result.metrics.nodes.get(destination)
        latency = dict(node.latency_ms) if node is not None else {}
        flows[destination] = {
            "delivery_ratio": ratio if math.isfinite(ratio) else None,
            **{f"{name}_ms": latency.get(name) for name in ("p50", "p95", "p99")},
        }
    return flows


# --- fixtures -----------------------------------------------------------------------------
@pytest.fixture
def edgesim_gateway(request: pytest.FixtureRequest) -> str | None:
    """The gateway implementation this test runs with (``gateway=`` on the marker), or None."""
    if hasattr(request, "param"):
        return str(request.param)
    marker = request.node.get_closest_marker("edgesim")
    gateway = marker.kwargs.get("gateway") if marker is not None else None
    return gateway if isinstance(gateway, str) else None


def trial_seed(item: pytest.Item) -> int | None:
    """The seed of the statistical trial running now, or None outside a trial."""
    trial = current_trial(item)
    return None if trial is None else int(trial.seed)


@pytest.fixture
def edgesim_seed(request: pytest.FixtureRequest) -> int:
    """The seed in force: the trial seed in a statistical trial, else the marker's ``seed=``,
    else ``--edgesim-seed``, else the scenario's own seed."""
    item = request.node
    scenario, marker_seed = item_scenario(item)
    seed = trial_seed(item)
    if seed is None:
        seed = settings.resolve_seed(item.config, scenario.seed, marker_seed)
    record = item_record(item)
    record.seeds.append(seed)
    item.user_properties.append((SEED_PROPERTY, seed))
    return seed


@pytest.fixture
def edge_scenario(
    request: pytest.FixtureRequest,
    edgesim_gateway: str | None,
    edgesim_broker: dict[str, str] | None,
    edgesim_seed: int,
) -> Iterator[EdgeScenario]:
    """The scenario of ``@pytest.mark.edgesim`` (or the built-in minimal one), ready to run.

    ``edge_scenario.run(until=None)`` runs in virtual time and pauses; between runs the test
    can partition, heal and change links, inject messages and inspect nodes.
    """
    item = request.node
    scenario, _ = item_scenario(item)
    if edgesim_gateway is not None:
        scenario = _with_gateway(item, scenario, edgesim_gateway)
    if edgesim_broker is not None:
        scenario = _with_broker(item, scenario, edgesim_broker)
    if on_real_components(item):  # --edgesim-on-real: the gateways' containers, for real
        scenario = _with_gateway(item, scenario, "docker:mqtt")
    scenario = _with_swarm(item, scenario)
    record = item_record(item)
    record.scenarios.append(_describe(scenario))
    _check_components(item, scenario)
    live = None
    if wall_clock_components(scenario):
        from pytest_edgesim.pytest_plugin.docker_fixtures import live_factory

        live = live_factory(request)  # a statistical test: a live run on real components
    edge = EdgeScenario(
        scenario,
        edgesim_seed,
        trace="full" if replay_check_requested(item) else "digest",
        on_record=lambda name, value: record_metric(item, name, value),
        simulation_factory=live,
    )
    record.live.append(edge)
    try:
        yield edge
    finally:
        record.live.remove(edge)
        if edge.built and edge.simulation.faults:
            record_faults(item, [str(fault) for fault in edge.simulation.faults])
        if edge.runs:
            item.user_properties.append((RUN_PROPERTY, _run_entry(edge)))
        edge.close()


@pytest.fixture
def edge_coordinator() -> Coordinator:
    """A fresh virtual-time coordinator, for topologies built in code."""
    from pytest_edgesim.core.engine import Coordinator

    return Coordinator()


def _link_settings(value: Any, model: type[BaseModel], where: str) -> Any:
    from pydantic import ValidationError

    from pytest_edgesim.errors import ScenarioError

    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise ScenarioError(
            [
                f"latency_network {where}"
                + "".join(f".{part}" for part in problem["loc"])
                + f": {problem['msg']}"
                for problem in error.errors()
            ]
        ) from None


@pytest.fixture
def latency_network(
    edge_coordinator: Coordinator, edgesim_seed: int
) -> Callable[..., LatencyNetworkModel]:
    """A factory: ``latency_network(nodes, default={...}, links=[...], seed=None)``.

    Builds a :class:`~pytest_edgesim.core.network.LatencyNetworkModel` on ``edge_coordinator``
    over ``nodes`` (a dict of name to node, or the nodes), binds each node to it, and returns
    it. ``default`` and each entry of ``links`` are written as in a scenario's ``network``
    section (``{"latency": "20ms", "loss": 0.01}``, ``{"from": "s*", "to": "gw", ...}``).
    The network's ``metrics`` and ``trace`` hold what it counted and recorded.
    """

    def build(
        nodes: Mapping[str, Node] | Iterable[Node],
        default: Mapping[str, Any] | None = None,
        links: Sequence[Mapping[str, Any]] = (),
        seed: int | None = None,
        relays: Iterable[str] = (),
    ) -> LatencyNetworkModel:
        from pytest_edgesim.core.metrics.recorder import MetricsRecorder
        from pytest_edgesim.core.network import LatencyNetworkModel
        from pytest_edgesim.core.node import NodeContext
        from pytest_edgesim.core.rng import StreamFactory
        from pytest_edgesim.core.scenario.schema import LinkRule, LinkSettings
        from pytest_edgesim.core.trace import TraceRecorder

        by_name = dict(nodes) if isinstance(nodes, Mapping) else {node.name: node for node in nodes}
        streams = StreamFactory(edgesim_seed if seed is None else seed)
        metrics, tracer = MetricsRecorder(), TraceRecorder()
        network = LatencyNetworkModel(
            edge_coordinator,
            streams,
            metrics,
            tracer,
            by_name,
            relays,
            default=_link_settings(default or {}, LinkSettings, "default"),
            rules=[_link_settings(rule, LinkRule, f"links[{i}]") for i, rule in enumerate(links)],
        )
        for name, node in by_name.items():
            node.bind(
                NodeContext(
                    name, edge_coordinator, network.transmit, streams, metrics, tracer, network
                )
            )
        return network

    return build


@pytest.fixture(scope="session")
def edgesim_report(pytestconfig: pytest.Config) -> SessionReport:
    """The session's record of edgesim tests (internal: the JSON report and the summary)."""
    return pytestconfig.stash[session_report_key]
