"""EdgeScenario without pytest: the action log and the replay."""

from __future__ import annotations

import re

import pytest

from pytest_edgesim.core.edge_scenario import (
    EdgeScenario,
    docker_components,
    minimal_scenario,
    wall_clock_components,
)
from pytest_edgesim.errors import SimulationError


def steer(edge: EdgeScenario) -> None:
    edge.run("2s")
    edge.network.partition("sensor*", "broker")
    edge.network.set_link("gateway", "cloud", latency_ms=15, loss=0.5)
    edge.run("4.5s")
    edge.network.heal()
    edge.inject("sensors/extra", 3.0)
    edge.run()


def test_actions_are_logged_with_their_virtual_time() -> None:
    edge = EdgeScenario(minimal_scenario(), seed=4)
    steer(edge)
    assert [str(action) for action in edge.actions] == [
        "t=0s run(until='2s')",
        "t=2s partition('sensor*', 'broker')",
        "t=2s set_link('gateway', 'cloud', latency_ms=15, loss=0.5)",
        "t=2s run(until='4.5s')",
        "t=4.5s heal(None, None)",
        "t=4.5s inject('sensors/extra', 3.0, source=None, qos=0, retain=False, size_bytes=64)",
        "t=4.5s run(until='10s')",
    ]
    assert len(edge.runs) == 3 and edge.result is edge.runs[-1]


def test_replay_reproduces_the_run() -> None:
    edge = EdgeScenario(minimal_scenario(), seed=4, trace="full")
    steer(edge)
    assert edge.replay().trace_digest == edge.simulation.result().trace_digest
    assert edge.replay_mismatch() is None


def test_the_seed_changes_the_run() -> None:
    runs = [EdgeScenario(minimal_scenario(), seed=seed).run() for seed in (1, 1, 2)]
    assert runs[0].trace_digest == runs[1].trace_digest != runs[2].trace_digest


def test_a_failed_action_is_not_logged() -> None:
    edge = EdgeScenario(minimal_scenario())
    edge.run("3s")
    with pytest.raises(SimulationError, match="until is absolute"):
        edge.run("1s")
    with pytest.raises(SimulationError, match="matches no node"):
        edge.network.partition("nowhere", "broker")
    assert [action.name for action in edge.actions] == ["run"]


def test_components() -> None:
    scenario = minimal_scenario()
    assert wall_clock_components(scenario) == docker_components(scenario) == []
    docker = scenario.with_overrides(
        {"broker.implementation": "docker", "gateways.0.implementation": "docker"}
    )
    assert docker_components(docker) == ["broker", "gateways[0] (gateway)"]
    assert len(wall_clock_components(docker)) == 2


def test_a_qos1_injection_from_a_sensor_is_settled_by_its_puback() -> None:
    """The injection travels in the sensor's own session: its PUBACK settles it, so it is
    delivered once, not resent every retry interval until the run ends."""
    edge = EdgeScenario(minimal_scenario(), seed=2)
    edge.run("2s")
    edge.inject("sensors/extra", 5.0, source="sensor-0", qos=1)
    result = edge.run()

    extra = result.metrics.topic("sensors/extra")
    assert (extra.sent, extra.delivered, extra.redelivered) == (1, 1, 0)
    assert result.nodes["sensor-0"]["inflight"] == 0


def test_an_injection_from_a_node_is_numbered_as_its_next_message() -> None:
    """No two messages in a trace share an id: an injection from ``sensor-0`` takes the
    sensor's next number and its own readings carry on after it."""
    edge = EdgeScenario(minimal_scenario(), seed=2, trace="full")
    edge.run("2s")
    published = edge.simulation.node("sensor-0").published
    injected = edge.inject("sensors/extra", 5.0, source="sensor-0")
    anonymous = edge.inject("sensors/extra", 6.0)
    result = edge.run()

    assert injected.message_id == f"sensor-0#{published + 1}"
    assert anonymous.message_id == "inject#1"
    assert result.trace is not None
    published_ids = [event[5] for event in result.trace if event[1] in ("publish", "inject")]
    assert len(published_ids) == len(set(published_ids)), "a message id was used twice"
    assert f"sensor-0#{published + 2}" in published_ids  # the next reading


def test_injecting_from_an_unknown_node_counts_nothing() -> None:
    edge = EdgeScenario(minimal_scenario(), seed=2)
    edge.run("1s")
    with pytest.raises(SimulationError, match="no node 'nobody'"):
        edge.inject("sensors/extra", 5.0, source="nobody")
    assert "sensors/extra" not in edge.run().metrics.topics


def test_an_injection_from_the_gateway_is_numbered_but_not_counted_as_a_forward() -> None:
    edge = EdgeScenario(minimal_scenario(), seed=2, trace="full")
    edge.run("3s")
    gateway = edge.simulation.node("gateway")
    forwarded = gateway.describe()["forwarded"]
    injected = edge.inject("cloud/extra", 1.0, source="gateway")
    result = edge.run()

    assert injected.message_id == f"gateway#{forwarded + 1}"
    assert result.nodes["gateway"]["forwarded"] > forwarded
    assert result.trace is not None
    ids = [event[5] for event in result.trace if event[1] in ("forward", "inject")]
    assert len(ids) == len(set(ids)), "a message id was used twice"
    forwards = sum(1 for event in result.trace if event[1] == "forward")
    assert result.nodes["gateway"]["forwarded"] == forwards  # the injection is not a forward


def test_publishing_nodes_show_their_mqtt_session_and_the_cloud_has_none() -> None:
    edge = EdgeScenario(minimal_scenario(), seed=2)
    edge.run("1s")
    simulation = edge.simulation
    for name in ("sensor-0", "broker", "gateway"):
        session = simulation.node(name).mqtt_session()
        assert session is not None and session.name == name
    assert simulation.node("cloud").mqtt_session() is None
    with pytest.raises(SimulationError, match="cannot inject from 'cloud': it does not publish"):
        edge.inject("sensors/extra", 5.0, source="cloud")
    assert "sensors/extra" not in edge.run().metrics.topics


@pytest.mark.parametrize("payload", [b"42", "42", {"value": 42}])
def test_a_reading_that_holds_a_number_is_aggregated_whatever_its_form(payload) -> None:
    edge = EdgeScenario(minimal_scenario(), seed=2)
    edge.run("1s")
    edge.inject("sensors/extra", payload, source="sensor-0")
    result = edge.run()
    assert result.nodes["gateway"]["dropped_rejected"] == 0
    assert result.metrics.topic("sensors/extra").delivered == 1


def test_a_reading_with_no_number_is_rejected_by_the_gateway_and_the_run_goes_on() -> None:
    edge = EdgeScenario(minimal_scenario(), seed=2, trace="full")
    edge.run("1s")
    edge.inject("sensors/extra", "warm", source="sensor-0")
    edge.inject("sensors/extra", {"mean": 2.0}, source="sensor-0")
    result = edge.run()

    gateway = result.nodes["gateway"]
    assert gateway["dropped_rejected"] == 2 and gateway["dropped_overflow"] == 0
    assert result.metrics.node("gateway").dropped["rejected"] == 2
    assert result.metrics.topic("sensors/extra").dropped["rejected"] == 2
    assert result.trace is not None
    drops = [event for event in result.trace if event[1] == "drop"]
    assert [event[6] for event in drops] == ["not_a_number", "not_a_number"]
    assert gateway["forwarded"] > 0  # the sensors' own readings still aggregate


@pytest.mark.parametrize(
    ("topic", "problem"), [("sites/#", "wildcard"), ("a/+/b", "wildcard"), ("", "empty")]
)
def test_an_injection_on_a_topic_no_publisher_may_use_is_refused(topic: str, problem: str) -> None:
    edge = EdgeScenario(minimal_scenario(), seed=2)
    edge.run("1s")
    expected = re.escape(f"cannot inject on topic {topic!r}: ") + f".*{problem}"
    with pytest.raises(SimulationError, match=expected):
        edge.inject(topic, 1.0)
    assert topic not in edge.run().metrics.topics


@pytest.mark.parametrize("until", [float("inf"), "soon", "-3s"])
def test_a_bad_until_is_a_simulation_error_naming_it(until: object) -> None:
    edge = EdgeScenario(minimal_scenario(), seed=2)
    with pytest.raises(SimulationError, match=re.escape(f"cannot run until {until!r}: ")):
        edge.run(until)  # type: ignore[arg-type]
