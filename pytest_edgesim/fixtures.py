"""The fixtures: ``edge_scenario``, ``edgesim_seed``, ``edge_coordinator``, ``latency_network``.

They build core objects and tear them down; everything heavy is imported inside them, so
loading the plugin stays cheap. Per-test state lives in the item's stash
(:func:`item_record`); what the controller needs travels on reports (see
:mod:`pytest_edgesim.report`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from . import config as settings
from .edge_scenario import EdgeScenario, docker_components, wall_clock_components
from .errors import RequirementError
from .markers import SHORTHAND_OVERRIDES, replay_check_requested
from .report import RUN_PROPERTY, SEED_PROPERTY, SessionReport

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .engine import Coordinator
    from .network import LatencyNetworkModel
    from .node import Node
    from .scenario import Scenario

DOCKER_UNAVAILABLE = (
    "implementation: docker needs the Docker tier (not yet available in this version)"
)
session_report_key = pytest.StashKey[SessionReport]()


# --- the optional trials module (statistical tier) ---------------------------------------
def trials_hook(name: str) -> Callable[..., Any] | None:
    """``pytest_edgesim.trials.<name>`` if that module and function exist, else None."""
    try:
        trials = importlib.import_module("pytest_edgesim.trials")
    except ModuleNotFoundError as error:
        if error.name != "pytest_edgesim.trials":
            raise
        return None
    return getattr(trials, name, None)


def trial_seed(item: pytest.Item) -> int | None:
    """The seed of the statistical trial running now, or None outside a trial."""
    current_trial = trials_hook("current_trial")
    trial = current_trial(item) if current_trial is not None else None
    if trial is None:
        return None
    return int(getattr(trial, "seed", trial))


# --- per-item state -----------------------------------------------------------------------
@dataclass
class ItemRecord:
    """What edgesim knows about one test while it runs (kept in the item's stash)."""

    seeds: list[int] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    live: list[EdgeScenario] = field(default_factory=list)
    scenario: tuple[Scenario, int | None] | None = None


_item_record_key = pytest.StashKey[ItemRecord]()


def item_record(item: pytest.Item) -> ItemRecord:
    record = item.stash.get(_item_record_key, None)
    if record is None:
        record = item.stash[_item_record_key] = ItemRecord()
    return record


# --- loading the scenario -----------------------------------------------------------------
def _fail(item: pytest.Item, message: str) -> NoReturn:
    pytest.fail(f"{item.nodeid}: {message}", pytrace=False)


def _find_scenario_file(item: pytest.Item, path: str | Path) -> Path:
    given = Path(path)
    places = [given] if given.is_absolute() else [item.path.parent / given]
    directory = settings.scenario_dir(item.config)
    if directory is not None and not given.is_absolute():
        places.append(directory / given)
    for place in places:
        if place.is_file():
            return place
    looked = "\n".join(f"  {place}" for place in places)
    hint = (
        ""
        if directory is not None or given.is_absolute()
        else "\n  (no scenario directory: set --edgesim-scenario-dir or the ini key "
        "edgesim_scenario_dir to look there too)"
    )
    _fail(item, f"scenario file {str(path)!r} not found; looked in:\n{looked}{hint}")


def _marker_overrides(item: pytest.Item) -> tuple[str | Path | None, dict[str, Any]]:
    marker = item.get_closest_marker("edgesim")
    if marker is None:
        return None, {}
    path = marker.args[0] if marker.args else marker.kwargs.get("scenario")
    overrides = dict(marker.kwargs.get("overrides") or {})
    overrides.update(
        {key: marker.kwargs[key] for key in SHORTHAND_OVERRIDES if key in marker.kwargs}
    )
    return path, overrides


def item_scenario(item: pytest.Item) -> tuple[Scenario, int | None]:
    """The scenario the test's marker names, with its overrides, and the marker's seed."""
    record = item_record(item)
    if record.scenario is not None:
        return record.scenario
    from .edge_scenario import minimal_scenario
    from .errors import ScenarioError
    from .scenario import Scenario

    path, overrides = _marker_overrides(item)
    problem: ScenarioError | None = None
    try:
        if path is None:
            scenario = minimal_scenario()
        else:
            scenario = Scenario.from_yaml(_find_scenario_file(item, path))
        if overrides:
            scenario = scenario.with_overrides(overrides)
    except ScenarioError as error:
        problem = error  # (failed outside the handler: the report shows the problem once)
    if problem is not None:
        where = "the built-in minimal scenario" if path is None else f"scenario {str(path)!r}"
        given = f" (with the marker's overrides {overrides!r})" if overrides else ""
        _fail(item, f"{where}{given} is invalid:\n{problem}")
    record.scenario = (scenario, overrides.get("seed"))
    return record.scenario


def _with_gateway(item: pytest.Item, scenario: Scenario, implementation: str) -> Scenario:
    """Every gateway with ``implementation``; in a deterministic test a Docker gateway whose
    ``docker.mode`` the scenario leaves open runs in lockstep (virtual time)."""
    from .errors import ScenarioError

    deterministic = item.get_closest_marker("deterministic") is not None
    try:
        return scenario.with_gateways(implementation, mode="lockstep" if deterministic else None)
    except ScenarioError as error:
        problem = str(error)
    what = f"scenario {scenario.name!r} with gateway {implementation!r}"
    _fail(item, f"cannot run {what}:\n{problem}")


def _describe(scenario: Scenario) -> str:
    source = scenario.source
    return f"{scenario.name!r} ({source})" if source else f"{scenario.name!r} (built in)"


def _check_components(item: pytest.Item, scenario: Scenario) -> None:
    """Refuse wall-clock components in a deterministic test; hold back Docker components."""
    if item.get_closest_marker("deterministic") is not None:
        wall_clock = wall_clock_components(scenario)
        if wall_clock:
            paths = "\n".join(f"  {path}" for path in wall_clock)
            _fail(
                item,
                f"deterministic test, but scenario {_describe(scenario)} asks for components "
                f"that run on the wall clock:\n{paths}\n"
                "A deterministic test runs in virtual time: use implementation: python_model "
                "(or docker.mode: lockstep for a gateway), or mark the test "
                "@pytest.mark.statistical.",
            )
    if docker_components(scenario):
        from .fixtures_docker import docker_tier_problem

        mode = settings.docker_mode(item.config)
        if mode == "off":
            pytest.skip("implementation: docker: Docker items are off (--edgesim-docker=off)")
        problem = docker_tier_problem(item, scenario, DOCKER_UNAVAILABLE)
        if problem is None:
            return
        if mode == "require":
            raise RequirementError(f"{problem}; --edgesim-docker=require")
        pytest.skip(problem)


def _run_entry(edge: EdgeScenario) -> dict[str, Any]:
    result = edge.simulation.result()
    return {
        "scenario": result.scenario,
        "seed": result.seed,
        "trace_digest": result.trace_digest,
        "metrics": result.metrics.to_dict(),
        "wall_time_s": round(result.wall_time_s, 6),
    }


# --- fixtures -----------------------------------------------------------------------------
@pytest.fixture
def edgesim_gateway(request: pytest.FixtureRequest) -> str | None:
    """The gateway implementation this test runs with (``gateway=`` on the marker), or None."""
    if hasattr(request, "param"):
        return str(request.param)
    marker = request.node.get_closest_marker("edgesim")
    gateway = marker.kwargs.get("gateway") if marker is not None else None
    return gateway if isinstance(gateway, str) else None


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
    request: pytest.FixtureRequest, edgesim_gateway: str | None, edgesim_seed: int
) -> Iterator[EdgeScenario]:
    """The scenario of ``@pytest.mark.edgesim`` (or the built-in minimal one), ready to run.

    ``edge_scenario.run(until=None)`` runs in virtual time and pauses; between runs the test
    can partition, heal and change links, inject messages and inspect nodes.
    """
    item = request.node
    scenario, _ = item_scenario(item)
    if edgesim_gateway is not None:
        scenario = _with_gateway(item, scenario, edgesim_gateway)
    record = item_record(item)
    record.scenarios.append(_describe(scenario))
    _check_components(item, scenario)
    record_metric = trials_hook("record_metric")
    live = None
    if wall_clock_components(scenario):
        from .fixtures_docker import live_factory

        live = live_factory(request)  # a statistical test: a live run on real components
    edge = EdgeScenario(
        scenario,
        edgesim_seed,
        trace="full" if replay_check_requested(item) else "digest",
        on_record=(lambda name, value: record_metric(item, name, value)) if record_metric else None,
        simulation_factory=live,
    )
    record.live.append(edge)
    try:
        yield edge
    finally:
        record.live.remove(edge)
        if edge.runs:
            item.user_properties.append((RUN_PROPERTY, _run_entry(edge)))
        edge.close()


@pytest.fixture
def edge_coordinator() -> Coordinator:
    """A fresh virtual-time coordinator, for topologies built in code."""
    from .engine import Coordinator

    return Coordinator()


def _link_settings(value: Any, model: type[BaseModel], where: str) -> Any:
    from pydantic import ValidationError

    from .errors import ScenarioError

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

    Builds a :class:`~pytest_edgesim.network.LatencyNetworkModel` on ``edge_coordinator``
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
        from .metrics import MetricsRecorder
        from .network import LatencyNetworkModel
        from .node import NodeContext
        from .rng import StreamFactory
        from .scenario.schema import LinkRule, LinkSettings
        from .trace import TraceRecorder

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
                NodeContext(name, edge_coordinator, network.transmit, streams, metrics, tracer)
            )
        return network

    return build


@pytest.fixture(scope="session")
def edgesim_report(pytestconfig: pytest.Config) -> SessionReport:
    """The session's record of edgesim tests (internal: the JSON report and the summary)."""
    return pytestconfig.stash[session_report_key]
