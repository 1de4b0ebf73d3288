"""The shipped scenarios load and run; a loaded scenario equals the same one built in code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_edgesim import Scenario, ScenarioBuilder, simulate
from pytest_edgesim.core.units import TICKS_PER_SECOND

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_the_expected_scenarios_ship():
    names = {path.name for path in FILES}
    assert {"basic.yaml", "lossy.yaml", "partition.yaml", "thousand-sensors.yaml"} <= names


def needs_docker(scenario: Scenario) -> bool:
    spec = scenario.spec
    return spec.broker.implementation == "docker" or any(
        gateway.implementation == "docker" for gateway in spec.gateways
    )


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_every_shipped_scenario_loads_and_runs(path: Path):
    scenario = Scenario.from_yaml(path)
    assert scenario.source == str(path)
    assert scenario.base_dir == SCENARIOS
    assert len(scenario.node_names) >= 4
    if needs_docker(scenario):
        return  # a container node: tests/docker/test_lockstep_docker.py runs it

    # a few virtual seconds are enough to see readings go through every gateway
    until = min(scenario.duration_ticks, 5 * TICKS_PER_SECOND)
    result = simulate(scenario, until=until / TICKS_PER_SECOND)

    assert result.virtual_time_ticks == until
    assert result.scenario == scenario.name
    for gateway in scenario.spec.gateways:
        assert result.metrics.node(gateway.name).delivered > 0, gateway.name
    assert len(result.trace_digest) == 64


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_every_shipped_scenario_round_trips_through_to_yaml(path: Path):
    scenario = Scenario.from_yaml(path)
    again = Scenario.from_dict(yaml.safe_load(scenario.to_yaml()))
    assert again == scenario
    assert again.spec == scenario.spec


def basic_built() -> ScenarioBuilder:
    """scenarios/basic.yaml, written with the builder."""
    return (
        ScenarioBuilder(
            "basic",
            description="three sensors -> broker -> one aggregating gateway -> cloud",
            seed=42,
            duration="60s",
        )
        .sensors(
            "temp",
            count=3,
            topic="sites/lab/{name}/temperature",
            qos=0,
            period="1s",
            jitter="50ms",
            value={"model": "sine", "mean": 21.0, "amplitude": 2.0, "period": "600s", "noise": 0.1},
        )
        .gateway(
            "gateway",
            implementation="python_model",
            subscribe=["sites/+/+/temperature"],
            aggregate={"count": 10, "functions": ["mean", "min", "max", "count"]},
            processing_delay={"distribution": "normal", "mean": "2ms", "stddev": "0.5ms"},
            forward={"to": "cloud", "topic": "cloud/{gateway}/temperature", "qos": 1},
        )
        .default_link(latency="1ms")
        .link("temp-*", "broker", latency="20ms", loss=0.02)
        .link("gateway", "cloud", latency="50ms")
    )


def test_the_loaded_basic_scenario_equals_the_built_one():
    loaded = Scenario.from_yaml(SCENARIOS / "basic.yaml")
    built = basic_built().build()

    assert built.raw == loaded.raw
    assert built == loaded
    assert built.spec == loaded.spec
    assert simulate(built, until="10s").trace_digest == simulate(loaded, until="10s").trace_digest


def test_the_loaded_partition_scenario_has_the_built_spec():
    loaded = Scenario.from_yaml(SCENARIOS / "partition.yaml")
    built = (
        ScenarioBuilder("partition", seed=3, duration=60)
        .broker(retry_interval=1)
        .sensors(
            "meter",
            count=5,
            topic="plant/line-1/{name}/power",
            publish={"period": 0.5},
            value={"model": "sine", "mean": 400, "amplitude": 50, "period": 30, "noise": 5},
        )
        .gateway(
            "edge-gw",
            subscribe="plant/+/+/power",
            aggregate={"window": "5000ms", "functions": ["mean", "max", "count"]},
            forward_topic="cloud/plant/{gateway}/power",
            forward_qos=1,
        )
        .default_link(latency=0.002)
        .link("edge-gw", "cloud", latency="0.06s")
        .partition("edge-gw", "cloud", start="20s", end="35s")
        .build()
    )

    # written differently (numbers of seconds, other units), so the raw dicts differ ...
    assert built.raw != loaded.raw
    # ... but they describe the same scenario, and run the same
    assert built.spec == loaded.spec
    assert simulate(built, until="25s").trace_digest == simulate(loaded, until="25s").trace_digest


def test_a_dict_and_a_file_with_the_same_content_are_equal(tmp_path: Path):
    data = basic_built().to_dict()
    path = tmp_path / "same.yaml"
    path.write_text(yaml.safe_dump(data))

    assert Scenario.from_yaml(path) == Scenario.from_dict(data)


def test_a_scenario_file_may_hold_only_the_version():
    scenario = Scenario.from_dict({"edgesim": 1})
    assert scenario.node_names == ("broker", "cloud")
    assert scenario.duration_ticks == 60 * TICKS_PER_SECOND
    assert simulate(scenario).events == 0


def test_the_complete_example_in_the_reference_is_valid(tmp_path: Path):
    reference = (SCENARIOS.parent / "docs" / "scenario-reference.md").read_text()
    example = next(
        block.split("```", 1)[0]
        for block in reference.split("```yaml\n")[1:]
        if block.startswith("# A farm")
    )
    (tmp_path / "farm.yaml").write_text(example)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rain.csv").write_text("time,mm\n0,0.2\n60,1.5\n")

    scenario = Scenario.from_yaml(tmp_path / "farm.yaml")

    assert scenario.name == "farm"
    assert len(scenario.node_names) == 13
    assert [d.name for d in scenario.devices[:2]] == ["soil-00", "soil-01"]
    assert simulate(scenario, until="5s").metrics.node("farm-gateway").delivered > 0


def test_gateways_are_listed_as_devices_are():
    scenario = (
        ScenarioBuilder("two", duration="1s")
        .sensors("temp", count=2, topic="t/{name}", period="1s")
        .gateway("edge-a", subscribe="t/#")
        .gateway("edge-b", subscribe=["t/temp-0"])
        .build()
    )
    assert [gateway.name for gateway in scenario.gateways] == ["edge-a", "edge-b"]
    assert [entry.filter for entry in scenario.gateways[1].subscribe] == ["t/temp-0"]
    assert [device.name for device in scenario.devices] == ["temp-0", "temp-1"]
