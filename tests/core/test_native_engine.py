"""The native engine against the pure one (the reference): the same digest and result.

Every example scenario and Hypothesis-generated scenarios run on both engines and must give
equal results (digest, events, metrics, deliveries, nodes, arrivals). Where the native
engine is expected (a Rust toolchain is on the PATH, so the install built it, or
``EDGESIM_REQUIRE_NATIVE=1``), its absence fails these tests instead of skipping them.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_edgesim import Scenario, ScenarioBuilder, simulate
from pytest_edgesim.core import gateway_kinds, native
from pytest_edgesim.core.gateway_kinds import GatewayKind, gateway_kind, register_gateway_kind
from pytest_edgesim.core.models.session import Session
from pytest_edgesim.core.native_faults import NATIVE_KINDS
from pytest_edgesim.core.node import Node, NodeContext
from pytest_edgesim.core.packet import PUBACK, Message, Packet
from pytest_edgesim.core.rng import RandomStream
from pytest_edgesim.core.simulation import Simulation, open_simulation
from pytest_edgesim.core.topology import GatewaySite
from pytest_edgesim.errors import SimulationError, UsageError
from pytest_edgesim.strategies import fault_schedules, link_configs, seeds, small_scenarios

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def _native_expected() -> bool:
    if os.environ.get("EDGESIM_REQUIRE_NATIVE") == "1":
        return True
    return shutil.which("cargo") is not None and os.environ.get("EDGESIM_NATIVE") != "0"


@pytest.fixture(autouse=True)
def _native_built() -> None:
    if native.native_available():
        return
    if _native_expected():
        pytest.fail(
            "the native engine is not built although it is expected here (cargo is on the "
            "PATH or EDGESIM_REQUIRE_NATIVE=1): reinstall with pip install -e '.[dev]' and "
            "read the build's output"
        )
    pytest.skip("the native engine is not built (no Rust toolchain): the pure engine runs")


def _both(scenario: Scenario, seed: int | None = None, until: str | None = None, trace="digest"):
    with Simulation(scenario, seed, trace=trace) as pure:
        expected = pure.run(until)
    with native.NativeSimulation(scenario, seed, trace=trace) as fast:
        got = fast.run(until)
    return expected, got


def _assert_same(expected, got) -> None:
    assert got.trace_digest == expected.trace_digest
    assert got.events == expected.events
    assert got.nodes == expected.nodes
    assert got.metrics == expected.metrics
    assert got.deliveries == expected.deliveries
    assert got.arrivals == expected.arrivals
    assert got.faults == expected.faults
    assert got == expected


# --- the pieces ---------------------------------------------------------------------------------
_EDGE_FLOATS = [
    0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1.5, 2.5, 20.0, 400.0, 1e-4, 1e-5, 0.0001234, 123456789012.0,
    1234567890123.0, 999999999999.5, 9999999999995.0, 1e11, 1e12, 1e16, 1e22, 1e100, 1e-300,
    5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, math.pi, math.e, 1 / 3, 2 / 3,
    0.0078125, 0.1234567890125, 0.12345678901249999, 100.000000000005, math.inf, -math.inf,
    math.nan, 20.000000000001, 19.999999999999996, 0.30000000000000004, 2**-18, 2**-19, 2**-20,
    3 * 2**-20, 5 * 2**-21, 2**60, 1e16 + 2,
]  # fmt: skip


@pytest.mark.parametrize("value", _EDGE_FLOATS)
def test_the_float_format_is_pythons_on_edge_cases(value: float) -> None:
    assert native._native.format_g12(value) == "%.12g" % value


@settings(max_examples=3000, deadline=None)
@given(bits=st.integers(0, 2**64 - 1))
def test_the_float_format_is_pythons_on_any_double(bits: int) -> None:
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    assert native._native.format_g12(value) == "%.12g" % value


@settings(max_examples=1000, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
def test_the_float_format_is_pythons_on_reading_sized_values(value: float) -> None:
    assert native._native.format_g12(value) == "%.12g" % value


@settings(max_examples=50, deadline=None)
@given(seed=seeds(), name=st.text(min_size=0, max_size=30))
def test_streams_draw_what_the_pure_streams_draw(seed: int, name: str) -> None:
    stream = RandomStream(seed, name)
    assert native._native.stream_floats(str(seed), name, 20) == [stream.random() for _ in range(20)]
    stream = RandomStream(seed, name)
    normals = native._native.stream_normals(str(seed), name, 20.0, 5.0, 9)
    assert normals == [stream.normal(20.0, 5.0) for _ in range(9)]


# --- every example scenario ---------------------------------------------------------------------
@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_every_example_scenario_gives_the_pure_engines_result(path: Path) -> None:
    scenario = Scenario.from_yaml(path)
    if scenario.spec.devices and scenario.spec.devices[0].count >= 1000:
        scenario = scenario.with_overrides({"duration": "20s"})
    reason = native.unsupported(scenario)
    if reason is not None:  # it falls back, and says why
        assert native.choose_engine(scenario) == native.EngineChoice("pure", reason)
        assert isinstance(open_simulation(scenario), Simulation)
        return
    assert native.choose_engine(scenario).native
    if any(gateway_kind(gateway.kind).needs_docker for gateway in scenario.spec.gateways):
        return  # a container: tests/docker/test_lockstep_docker.py runs it on both engines
    for seed in (None, 7):
        _assert_same(*_both(scenario, seed))


def test_a_run_paused_and_resumed_gives_the_same_result() -> None:
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "partition.yaml")
    with Simulation(scenario) as pure, native.NativeSimulation(scenario) as fast:
        for until in ("10s", "20s", "20.5s", "35s", "60s"):
            _assert_same(pure.run(until), fast.run(until))
        with pytest.raises(UsageError, match="virtual time is already 60s"):
            fast.run("30s")
        with pytest.raises(UsageError, match="virtual time is already 60s"):
            pure.run("30s")


@pytest.mark.parametrize("record_limit", [0, 3, -1])
def test_the_cloud_keeps_as_many_arrivals_as_on_the_pure_engine(record_limit: int) -> None:
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "partition.yaml")
    expected = Simulation(scenario, record_limit=record_limit).run()
    got = native.NativeSimulation(scenario, record_limit=record_limit).run()
    assert got.arrivals == expected.arrivals
    assert len(got.arrivals) == max(0, record_limit)


def test_without_a_trace_the_digest_is_empty_on_both() -> None:
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "lossy.yaml")
    expected, got = _both(scenario, trace="off")
    assert got.trace_digest == expected.trace_digest == ""
    _assert_same(expected, got)


# --- generated scenarios ------------------------------------------------------------------------
_BROKER_DELAY = st.sampled_from(
    [
        None,
        {"distribution": "constant", "value": "2ms"},
        {"distribution": "uniform", "low": "1ms", "high": "4ms"},
        {"distribution": "exponential", "mean": "3ms"},
        {"distribution": "normal", "mean": "2ms", "stddev": "1ms"},
    ]
)
_GATEWAY_EXTRAS = st.fixed_dictionaries(
    {},
    optional={
        "functions": st.lists(
            st.sampled_from(["mean", "min", "max", "count", "sum", "last"]), min_size=1, max_size=4
        ),
        "group_by": st.sampled_from(["none", "topic", "device"]),
        "delay": st.sampled_from(
            [
                {"distribution": "uniform", "low": "0ms", "high": "3ms"},
                {"distribution": "exponential", "mean": "1ms"},
                {"distribution": "normal", "mean": "1ms", "stddev": "2ms"},
            ]
        ),
    },
)


@st.composite
def _varied(draw: st.DrawFn) -> tuple[Scenario, int]:
    """A small scenario, with some of what small_scenarios leaves alone varied too."""
    scenario = draw(small_scenarios(link=link_configs(reorder=None), max_duration="4s"))
    overrides: dict[str, object] = {}
    delay = draw(_BROKER_DELAY)
    if delay is not None:
        overrides["broker.processing_delay"] = delay
    if draw(st.booleans()):
        overrides["broker.retry_interval"] = f"{draw(st.integers(1, 20)) * 50}ms"
    if draw(st.integers(0, 9)) == 0:
        overrides["network.model"] = "direct"
    for index, gateway in enumerate(scenario.spec.gateways):
        extras = draw(_GATEWAY_EXTRAS)
        if gateway.aggregate is not None:
            for key in ("functions", "group_by"):
                if key in extras:
                    overrides[f"gateways[{index}].aggregate.{key}"] = extras[key]
        if "delay" in extras:
            overrides[f"gateways[{index}].processing_delay"] = extras["delay"]
    for index, _device in enumerate(scenario.spec.devices):
        if draw(st.integers(0, 4)) == 0:
            overrides[f"devices[{index}].retain"] = True
    if overrides:
        scenario = scenario.with_overrides(overrides)
    return scenario, draw(seeds())


@settings(
    max_examples=int(os.environ.get("EDGESIM_DIFFERENTIAL_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=_varied())
def test_generated_scenarios_give_the_pure_engines_result(case: tuple[Scenario, int]) -> None:
    scenario, seed = case
    assert native.unsupported(scenario) is None
    _assert_same(*_both(scenario, seed))


# --- Python nodes on the native engine ----------------------------------------------------------
_USER_LOGICS = ["Forwarder", "Noisy", "Ticker", "AssertingForwarder"]


@contextmanager
def _project_gateway_as_a_python_node() -> Iterator[None]:
    """The project's gateway (``python_model``) as a kind the native engine does not model:
    its ``HostedGateway`` runs as a Python node, called back by the native engine."""
    saved = dict(gateway_kinds._registered)
    model = gateway_kind("python_model")
    register_gateway_kind(GatewayKind("python_model", "hosted", virtual_time=model.virtual_time))
    try:
        yield
    finally:
        gateway_kinds._registered.clear()
        gateway_kinds._registered.update(saved)


@st.composite
def _with_python_nodes(draw: st.DrawFn) -> tuple[Scenario, int, bool]:
    """A varied scenario in which some gateways run the user's logic (``implementation:
    python``: timers, random draws, assertions, dict payloads, no lineage), and, or, the
    project's gateway runs as a Python node too."""
    scenario, seed = draw(_varied())
    data = yaml.safe_load(scenario.to_yaml())
    for gateway in data.get("gateways", []):
        logic = draw(st.sampled_from([None, *_USER_LOGICS]))
        if logic is None:
            continue
        for key in ("processing_delay", "queue", "aggregate"):
            gateway.pop(key, None)
        gateway.update(implementation="python", logic=f"user_logics:{logic}")
        if logic == "Ticker":
            gateway["config"] = {"period_s": draw(st.sampled_from([0.05, 0.3, 1.0]))}
    return Scenario.from_dict(data), seed, draw(st.booleans())


@settings(
    max_examples=int(os.environ.get("EDGESIM_DIFFERENTIAL_EXAMPLES", "150")) // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=_with_python_nodes())
def test_python_nodes_on_the_native_engine_give_the_pure_engines_result(
    case: tuple[Scenario, int, bool],
) -> None:
    scenario, seed, hosted = case
    with _project_gateway_as_a_python_node() if hosted else nullcontext():
        assert native.unsupported(scenario) is None
        _assert_same(*_both(scenario, seed))


def test_the_users_gateway_runs_natively_with_the_pure_engines_result() -> None:
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "user-gateway.yaml")
    assert native.choose_engine(scenario).native
    with open_simulation(scenario) as simulation:
        assert isinstance(simulation, native.NativeSimulation)
    for seed in (None, 7, 123):
        _assert_same(*_both(scenario.with_overrides({"duration": "30s"}), seed))


@pytest.mark.parametrize("name", ["basic", "lossy", "partition", "user-gateway"])
def test_hosted_gateways_with_lookahead_windows_run_as_python_nodes(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """With windows on, the project's gateway is no longer the native engine's model: it runs
    as the Python node it is, outputs put on the network at their own (earlier) times."""
    from pytest_edgesim.lockstep.host import HostedGateway

    monkeypatch.setattr(HostedGateway, "windowed_default", True)
    scenario = Scenario.from_yaml(ROOT / "scenarios" / f"{name}.yaml")
    assert native.choose_engine(scenario).native
    _assert_same(*_both(scenario))


def test_a_gateway_a_python_node_forwards_to_is_a_python_node_too() -> None:
    """The user's logic forwards ``{"value": v}`` objects to the project's gateway, which
    aggregates their values (as only its Python form reads them): both run as Python nodes,
    and a modelled gateway beside them stays native."""
    data = yaml.safe_load((ROOT / "scenarios" / "basic.yaml").read_text())
    modelled = data["gateways"][0]
    data["gateways"] = [
        {
            "name": "user",
            "implementation": "python",
            "logic": "user_logics:Forwarder",
            "subscribe": modelled["subscribe"],
            "forward": {"to": "gateway", "topic": "edge/readings", "qos": 1},
        },
        modelled,
        {**modelled, "name": "beside"},
    ]
    scenario = Scenario.from_dict(data)
    assert native.python_nodes(scenario) == {"user", "gateway"}
    expected, got = _both(scenario)
    _assert_same(expected, got)
    assert got.metrics.node("cloud").delivered > 0
    assert got.delivery("temp-0", "cloud").delivered > 0


def test_a_gateway_a_python_node_publishes_to_through_the_broker_is_a_python_node_too() -> None:
    data = yaml.safe_load((ROOT / "scenarios" / "basic.yaml").read_text())
    modelled = data["gateways"][0]
    data["gateways"] = [
        {
            "name": "user",
            "implementation": "python",
            "logic": "user_logics:Forwarder",
            "subscribe": ["sites/lab/temp-0/temperature"],
            "forward": {"to": "broker", "topic": "sites/lab/user/temperature"},
        },
        modelled,
    ]
    scenario = Scenario.from_dict(data)
    assert native.python_nodes(scenario) == {"user", "gateway"}
    _assert_same(*_both(scenario))


def test_the_users_gateway_paused_resumed_and_untraced_gives_the_pure_engines_result() -> None:
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "user-gateway.yaml")
    with Simulation(scenario) as pure, native.NativeSimulation(scenario) as fast:
        for until in ("1s", "2.5s", "4s", "6s"):
            _assert_same(pure.run(until), fast.run(until))
    expected, got = _both(scenario, trace="off")
    assert got.trace_digest == expected.trace_digest == ""
    _assert_same(expected, got)


class _Relay(Node):
    """A gateway kind a user registered, not a ``HostedGateway``: it subscribes at the
    broker, acknowledges, forwards every other reading 3 ms later at QoS 1 (its own session:
    packet ids, retries), rejects the others and says so in the trace, the counters and the
    delivery ledger, and draws a jitter from its random stream."""

    def __init__(self, spec: Any, site: GatewaySite):
        super().__init__(spec.name)
        self.spec = spec
        self.broker = site.broker
        self.retry_interval = site.retry_interval
        self.relayed = 0

    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        self.session = Session(self.name, context, self.retry_interval)
        self.jitter = context.stream("jitter")
        self.destination = context.metrics.delivery.destination(
            self.name, [s.filter for s in self.spec.subscribe], gateway=True
        )
        context.metrics.delivery.source(self.name, self.spec.forward_topic).publisher = self
        for subscription in self.spec.subscribe:
            self.broker.subscribe(self.name, subscription.filter, subscription.qos)

    def on_packet(self, packet: Packet) -> None:
        context = self.context
        assert context is not None
        if packet.kind == PUBACK:
            self.session.acknowledge(packet.packet_id)
            return
        if packet.qos == 1:
            self.session.reply_puback(packet)
        message = packet.message
        context.metrics.delivery.arrive(
            self.destination, message.origin, message.seq, message.sources
        )
        if message.seq % 2:
            delay = 3_000 + int(self.jitter.random() * 1_000)
            context.call_at(context.now + delay, self._relay, message)
            return
        context.metrics.node(self.name).drop("even")
        context.metrics.topic(message.topic).drop("even")
        context.metrics.delivery.drop(message.origin, message.seq, message.sources, "even")
        context.trace.record(
            context.now,
            "drop",
            self.name,
            message.origin,
            message.topic,
            message.message_id,
            "even",
        )

    @property
    def published(self) -> int:  # (its count as a source of the delivery ledger)
        return self.relayed

    def _relay(self, reading: Message) -> None:
        context = self.context
        assert context is not None
        self.relayed += 1
        topic = self.spec.forward_topic
        message = Message(
            topic,
            {"value": reading.payload},
            self.name,
            self.relayed,
            reading.created_at,
            qos=1,
            size_bytes=32,
            sources=((reading.origin, reading.seq, reading.seq),),
        )
        counter = context.metrics.topic(topic)
        counter.sent += 1
        counter.bytes += 32
        context.trace.record(
            context.now, "forward", self.name, self.spec.forward.to, topic, message.message_id, ""
        )
        self.session.publish(self.spec.forward.to, message, 1)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "relayed": self.relayed}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_registered_gateway_kind_runs_as_a_python_node_with_the_pure_engines_result(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(gateway_kinds, "_registered", dict(gateway_kinds._registered))
    register_gateway_kind(GatewayKind("python_model", "a relay", virtual_time=_Relay))
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "lossy.yaml").with_overrides(
        {"duration": "20s"}
    )
    assert native.choose_engine(scenario).native
    expected, got = _both(scenario, seed)
    _assert_same(expected, got)
    name = scenario.spec.gateways[0].name
    assert got.nodes[name]["relayed"] > 0
    assert got.metrics.node(name).dropped["rejected"] > 0


def test_a_python_node_with_a_native_gateway_beside_it_binds_in_the_pure_engines_order() -> None:
    """Gateways bind in order and may queue events as they do: a Python node between two
    modelled gateways keeps its place."""
    data = yaml.safe_load((ROOT / "scenarios" / "basic.yaml").read_text())
    modelled = data["gateways"][0]
    data["gateways"] = [
        modelled,
        {
            "name": "user",
            "implementation": "python",
            "logic": "user_logics:Ticker",
            "config": {"period_s": 0.25},
            "subscribe": modelled["subscribe"],
            "forward": {"topic": "cloud/ticks"},
        },
        {**modelled, "name": "last"},
    ]
    _assert_same(*_both(Scenario.from_dict(data)))


class _Watcher(_Relay):
    """A relay that watches the partitions and writes what it sees of them in the trace."""

    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        assert context.network is not None
        context.network.watch_cuts(self._cuts_changed)
        self.profile = context.network.profile_for(self.name, self.spec.forward.to)

    def _cuts_changed(self) -> None:
        context = self.context
        assert context is not None and context.network is not None
        cut = context.network.is_partitioned(self.name, self.spec.forward.to)
        context.trace.record(context.now, "cuts", self.name, "", "", "", f"cut={cut}")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "uplink_ms": self.profile.latency / 1000}


def test_a_python_node_sees_the_network_as_on_the_pure_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway_kinds, "_registered", dict(gateway_kinds._registered))
    register_gateway_kind(GatewayKind("python_model", "a watcher", virtual_time=_Watcher))
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "partition.yaml")
    expected, got = _both(scenario)
    _assert_same(expected, got)
    assert got.nodes["edge-gw"]["uplink_ms"] > 0
    with Simulation(scenario, trace="full") as pure:
        seen = [event[-1] for event in pure.run().trace or () if event[1] == "cuts"]
    assert seen == ["cut=True", "cut=False"]


def test_what_a_python_node_cannot_have_on_the_native_engine_is_an_error_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Leaving(_Relay):
        def _relay(self, reading: Message) -> None:
            super()._relay(reading)
            self.broker.unsubscribe(self.name, self.spec.subscribe[0].filter, 0)

    monkeypatch.setattr(gateway_kinds, "_registered", dict(gateway_kinds._registered))
    register_gateway_kind(GatewayKind("python_model", "leaving", virtual_time=Leaving))
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "basic.yaml")
    with (
        native.NativeSimulation(scenario) as simulation,
        pytest.raises(SimulationError, match=r"unsubscribing .*EDGESIM_ENGINE=pure"),
    ):
        simulation.run("5s")


def test_a_python_nodes_payload_a_modelled_gateway_was_to_aggregate_stops_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node of a registered kind may publish anywhere: an object payload reaching the
    aggregation of a gateway the native engine models (which reads floats only) is an error
    naming the way out, never a silent difference."""

    class Chatty(_Relay):
        def _relay(self, reading: Message) -> None:
            context = self.context
            assert context is not None
            self.relayed += 1
            message = Message(
                "sites/lab/chatty/temperature", {"value": 1}, self.name, self.relayed, context.now
            )
            self.session.publish(self.broker.name, message, 0)

    monkeypatch.setattr(gateway_kinds, "_registered", dict(gateway_kinds._registered))
    register_gateway_kind(GatewayKind("python_logic", "chatty", virtual_time=Chatty))
    data = yaml.safe_load((ROOT / "scenarios" / "basic.yaml").read_text())
    modelled = data["gateways"][0]
    chatty = {"name": "chatty", "implementation": "python", "logic": "user_logics:Forwarder"}
    data["gateways"] = [modelled, {**chatty, "subscribe": ["sites/lab/temp-0/temperature"]}]
    scenario = Scenario.from_dict(data)
    assert native.python_nodes(scenario) == {"chatty"}
    with Simulation(scenario) as pure:
        assert pure.run().nodes["gateway"]["processed"] > 0
    with (
        native.NativeSimulation(scenario) as simulation,
        pytest.raises(SimulationError, match="was to aggregate a payload a Python node made"),
    ):
        simulation.run()


def test_a_wall_clock_gateway_stays_on_the_pure_engine_which_refuses_it() -> None:
    data = yaml.safe_load((ROOT / "scenarios" / "basic.yaml").read_text())
    data["gateways"][0]["implementation"] = "docker"
    scenario = Scenario.from_dict(data)
    assert "runs on the wall clock" in native.choose_engine(scenario).reason


# --- fault schedules ----------------------------------------------------------------------------
@st.composite
def _faulted(draw: st.DrawFn) -> tuple[Scenario, int]:
    """A generated scenario with a fault schedule of the kinds the native engine applies,
    its gateways sometimes with a store-and-forward buffer (and no retained readings when a
    node's life is faulted: the native engine leaves those to the pure one)."""
    scenario, seed = draw(_varied())
    end = f"{scenario.duration_ticks // 1000}ms"
    kinds = tuple(NATIVE_KINDS)
    schedule = draw(fault_schedules(scenario, kinds=kinds, max_time=end, max_duration="2s"))
    overrides: dict[str, object] = {"faults": list(schedule)}
    if any(fault["kind"] in _LIFE_KINDS for fault in schedule):
        for index, _device in enumerate(scenario.spec.devices):
            overrides[f"devices[{index}].retain"] = False
    for index, _gateway in enumerate(scenario.spec.gateways):
        if draw(st.booleans()):
            capacity = draw(st.integers(0, 6))
            drop = draw(st.sampled_from(["oldest", "newest"]))
            overrides[f"gateways[{index}].forward.buffer"] = {"capacity": capacity, "drop": drop}
    return scenario.with_overrides(overrides), seed


@settings(
    max_examples=int(os.environ.get("EDGESIM_DIFFERENTIAL_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=_faulted())
def test_generated_fault_schedules_give_the_pure_engines_result(
    case: tuple[Scenario, int],
) -> None:
    scenario, seed = case
    assert native.unsupported(scenario) is None
    _assert_same(*_both(scenario, seed))


_LIFE_KINDS = {"crash", "restart", "pause", "disconnect", "broker_restart"}

_FAULTED = (
    ScenarioBuilder("faulted", duration="6s")
    .sensors("sensor", count=3, period="200ms", qos=1)
    .gateway(
        "gw",
        subscribe="sensors/#",
        forward={"qos": 1, "buffer": {"capacity": 4}},
        aggregate={"count": 3, "window": "700ms"},
    )
    .build()
    .with_overrides(
        {"broker.processing_delay": {"distribution": "uniform", "low": "1ms", "high": "30ms"}}
    )
)

#: what the generated schedules do not draw: bridges, jitter and bandwidth changes, `dropped`
#: and repeated `received` triggers, `after` an end, globs, a subscription counted twice,
#: the broker's life with the gateway's
_SCHEDULES = {
    "bridge": [
        {"kind": "partition", "between": [["sensor-*"], ["gw", "cloud"]], "bridge": "gw",
         "at": "1s", "duration": "2s"},
    ],
    "one-way-glob": [
        {"kind": "partition", "between": ["sensor-*", "broker"], "one_way": True, "at": "1s"},
    ],
    "link-change": [
        {"name": "slow", "kind": "link_change", "between": ["gw", "cloud"], "latency": "300ms",
         "jitter": "50ms", "bandwidth": 20_000, "at": "500ms", "duration": "3s"},
        {"kind": "link_change", "between": ["sensor-1", "broker"], "loss": 0.5, "one_way": True,
         "after": {"fault": "slow", "of": "end", "delay": "100ms"}, "duration": "1s"},
    ],
    "dropped-trigger": [
        {"name": "cut", "kind": "partition", "between": ["sensor-0", "broker"], "at": "1s",
         "duration": "1s"},
        {"kind": "isolate", "target": "gw", "when": {"dropped": "sensor-0->broker", "count": 3,
         "delay": "250ms"}, "duration": "1s"},
    ],
    "received-trigger": [
        {"name": "outage", "kind": "backhaul_outage", "target": "gw",
         "when": {"received": "gw", "count": 4}, "duration": "2s"},
        {"kind": "storage_full", "target": "gw", "after": {"fault": "outage", "delay": "1s"}},
        {"kind": "duty_cycle", "target": "sensor-[12]", "when": {"subscribed": "gw", "count": 2},
         "period": "1s", "awake": "300ms"},
    ],
    "duty-cycles": [
        {"name": "sleep", "kind": "duty_cycle", "target": "sensor-*", "at": "300ms",
         "period": "700ms", "awake": "200ms", "asleep": "buffer", "duration": "3s"},
        {"kind": "duty_cycle", "target": "sensor-0", "after": {"fault": "sleep", "of": "end"},
         "period": "500ms", "awake": "100ms", "asleep": "drop"},
        {"kind": "clock_skew", "target": "sensor-2", "at": "2s", "offset": "-150ms",
         "drift_ppm": 2500},
    ],
    "crash-resubscribed": [
        {"kind": "crash", "target": "gw", "at": "1.05s", "duration": "1s"},
        {"kind": "isolate", "target": "sensor-0", "when": {"subscribed": "gw", "count": 2},
         "duration": "500ms"},
    ],
    "broker-and-gateway": [
        {"kind": "crash", "target": "broker", "at": "1.05s", "duration": "1s"},
        {"kind": "restart", "target": "gw", "at": "1.5s", "duration": "1s"},
    ],
    "broker-restart-persistent": [
        {"name": "b", "kind": "broker_restart", "target": "broker", "at": "2.5s",
         "persistence": True},
        {"kind": "disconnect", "target": "gw", "after": {"fault": "b", "delay": "200ms"},
         "duration": "1s"},
    ],
    "first-form": [
        {"action": "pause", "target": "gw", "at": "1.05s"},
        {"action": "kill", "target": "gw", "at": "2s"},
        {"action": "start", "target": "gw", "at": "3s"},
        {"action": "pause", "target": "broker", "at": "1.5s"},
        {"action": "stop", "target": "broker", "at": "2.5s"},
        {"action": "start", "target": "broker", "at": "3.5s"},
        {"kind": "partition", "between": ["gw", "cloud"], "at": "1s", "duration": "3s"},
    ],
    "first-form-disconnect": [
        {"action": "restart", "target": "gw", "at": "1.05s"},
        {"action": "disconnect", "target": "gw", "at": "2s", "duration": "1.5s"},
        {"kind": "isolate", "target": "sensor-1", "when": {"subscribed": "gw", "count": 3},
         "duration": "1s"},
    ],
    "pauses": [
        {"kind": "pause", "target": "broker", "at": "1.05s", "duration": "1.2s"},
        {"kind": "pause", "target": "gw", "at": "1.5s", "duration": "1s"},
        {"kind": "backhaul_outage", "target": "gw", "at": "1.7s", "duration": "1s"},
    ],
}  # fmt: skip


@pytest.mark.parametrize("faults", list(_SCHEDULES.values()), ids=list(_SCHEDULES))
def test_fault_schedules_give_the_pure_engines_result(faults: list[dict[str, object]]) -> None:
    scenario = _FAULTED.with_overrides({"faults": faults})
    assert native.choose_engine(scenario).native
    for seed in (None, 3):
        _assert_same(*_both(scenario, seed))


def test_a_faulted_run_paused_and_resumed_gives_the_same_result() -> None:
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "backhaul-outage.yaml")
    with Simulation(scenario) as pure, native.NativeSimulation(scenario) as fast:
        for until in ("10s", "20s", "1800s", "1800.5s", "1h"):
            _assert_same(pure.run(until), fast.run(until))
    assert [fault.action for fault in fast.result().faults] == [
        "backhaul_outage", "duty_cycle", "backhaul_outage:end"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"faults": [{"action": "start", "target": "gw", "at": "1s"}]},
         "fault 'faults[0]': cannot start 'gw': it is running"),
        ({"faults": [{"action": "stop", "target": "gw", "at": "1s"},
                     {"name": "x", "kind": "restart", "target": "gw", "at": "3s"}]},
         "fault 'x' is a second fault of 'gw''s life (native: one)"),
        ({"faults": [{"kind": "crash", "target": "gw", "at": "1s", "duration": "1s"},
                     {"name": "x", "kind": "restart", "target": "gw", "at": "3s"}]},
         "fault 'x' is a second fault of 'gw''s life (native: one)"),
        ({"faults": [{"kind": "restart", "target": "broker", "at": "1s"}],
          "devices[0].retain": True},
         "a gateway subscribing again gets retained readings"),
    ],
)  # fmt: skip
def test_faults_the_native_engine_does_not_apply_run_on_the_pure_one(
    overrides: dict[str, object], reason: str
) -> None:
    scenario = _FAULTED.with_overrides(overrides)
    choice = native.choose_engine(scenario)
    assert choice.engine == "pure"
    assert reason in choice.reason


# --- choosing the engine ------------------------------------------------------------------------
def test_simulate_runs_natively_what_the_native_engine_covers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "basic.yaml")
    monkeypatch.delenv(native.ENGINE_ENV, raising=False)
    assert isinstance(open_simulation(scenario), native.NativeSimulation)
    monkeypatch.setenv(native.ENGINE_ENV, "pure")
    assert native.choose_engine(scenario) == native.EngineChoice("pure", "EDGESIM_ENGINE=pure")
    assert isinstance(open_simulation(scenario), Simulation)
    monkeypatch.setenv(native.ENGINE_ENV, "native")
    assert simulate(scenario) == Simulation(scenario).run()


def test_what_the_native_engine_does_not_cover_runs_on_the_pure_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "basic.yaml")
    assert native.choose_engine(scenario, trace="full").reason.startswith("trace='full'")
    assert isinstance(open_simulation(scenario, trace="full"), Simulation)
    monkeypatch.setenv(native.ENGINE_ENV, "native")
    with pytest.raises(SimulationError, match=r"EDGESIM_ENGINE=native, but .* trace='full'"):
        open_simulation(scenario, trace="full")
    monkeypatch.setenv(native.ENGINE_ENV, "fast")
    with pytest.raises(SimulationError, match="EDGESIM_ENGINE='fast': expected one of"):
        simulate(scenario)


def test_the_engine_in_use_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENGINE_ENV, raising=False)
    assert native.engine_summary().startswith(f"native {native._native.ENGINE_VERSION}")
    monkeypatch.setenv(native.ENGINE_ENV, "native")
    assert "EDGESIM_ENGINE=native" in native.engine_summary()


def test_swarms_and_charted_runs_stay_on_the_pure_engine():
    """A ``swarm:`` scenario draws faults the native engine does not apply, and a charted run
    needs the timeline only the pure engine samples: both run on the pure engine."""
    from pytest_edgesim.core.native import choose_engine
    from pytest_edgesim.core.simulation import Simulation, open_simulation

    scenario = Scenario.from_yaml(ROOT / "scenarios" / "basic.yaml")
    swarmed = Scenario.from_yaml(ROOT / "scenarios" / "swarm-gateway.yaml")
    assert not choose_engine(swarmed).native
    assert "swarm" in choose_engine(swarmed).reason
    with open_simulation(scenario, profile=True) as simulation:
        assert isinstance(simulation, Simulation)
        assert simulation.run("5s").profile.timeline.sent
