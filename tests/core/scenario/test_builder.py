"""ScenarioBuilder: a scenario in code, validated exactly as a YAML file is."""

from __future__ import annotations

import pytest
import yaml

from pytest_edgesim import Scenario, ScenarioBuilder, ScenarioError, simulate
from pytest_edgesim.core.scenario.schema import GilbertElliottLoss, PoissonPublish
from pytest_edgesim.core.units import TICKS_PER_MS, TICKS_PER_SECOND


def example() -> ScenarioBuilder:
    return (
        ScenarioBuilder("name", seed=1, duration="60s")
        .sensors("temp", count=3, topic="sites/{name}/t", period="1s")
        .gateway("gw", subscribe=["sites/#"], aggregate={"count": 10})
        .link("temp-*", "broker", latency="20ms", loss=0.02)
        .partition("gw", "cloud", start="20s", end="35s")
    )


def test_the_example_builds_a_validated_scenario():
    scenario = example().build()

    assert isinstance(scenario, Scenario)
    assert scenario.name == "name"
    assert scenario.seed == 1
    assert scenario.duration_ticks == 60 * TICKS_PER_SECOND
    assert [d.name for d in scenario.devices] == ["temp-0", "temp-1", "temp-2"]
    assert [d.topic for d in scenario.devices] == [
        "sites/temp-0/t",
        "sites/temp-1/t",
        "sites/temp-2/t",
    ]
    assert set(scenario.node_names) == {"broker", "cloud", "temp-0", "temp-1", "temp-2", "gw"}
    link = scenario.spec.network.links[0]
    assert (link.from_, link.to, link.latency) == ("temp-*", "broker", 20 * TICKS_PER_MS)
    assert link.loss is not None and link.loss.rate == 0.02
    partition = scenario.spec.network.partitions[0]
    assert partition.between == (["gw"], ["cloud"])
    assert (partition.start, partition.end) == (20 * TICKS_PER_SECOND, 35 * TICKS_PER_SECOND)


def test_the_built_dict_is_the_yaml_shape():
    assert example().to_dict() == {
        "edgesim": 1,
        "name": "name",
        "seed": 1,
        "duration": "60s",
        "devices": [
            {
                "name": "temp",
                "count": 3,
                "topic": "sites/{name}/t",
                "publish": {"mode": "periodic", "period": "1s"},
            }
        ],
        "gateways": [{"name": "gw", "subscribe": ["sites/#"], "aggregate": {"count": 10}}],
        "network": {
            "links": [{"from": "temp-*", "to": "broker", "latency": "20ms", "loss": 0.02}],
            "partitions": [{"between": ["gw", "cloud"], "start": "20s", "end": "35s"}],
        },
    }


def test_a_built_scenario_runs_and_its_yaml_round_trips():
    scenario = example().build()
    text = scenario.to_yaml()

    again = Scenario.from_dict(yaml.safe_load(text))
    assert again == scenario
    assert again.spec == scenario.spec
    first = simulate(scenario, until="10s")
    assert first.metrics.node("gw").delivered > 0
    assert simulate(again, until="10s").trace_digest == first.trace_digest


def test_to_yaml_is_readable():
    text = example().build().to_yaml()
    assert text.splitlines()[0] == "edgesim: 1"
    assert "publish: {mode: periodic, period: 1s}" in text
    assert "between: [gw, cloud]" in text


def test_every_node_kind_and_setting():
    scenario = (
        ScenarioBuilder("full", duration=5, description="all of it")
        .broker(processing_delay="1ms", retry_interval="500ms")
        .cloud("backend")
        .sensor("rain", topic="farm/rain", rate="2/s", value=3.5, qos=1, payload_bytes=10)
        .sensors(
            "soil",
            count=12,
            topic="farm/{name}/moisture",
            publish={"mode": "periodic", "period": "2s", "offset": 0},
            value={"model": "random_walk", "start": 30, "step": 0.5},
        )
        .gateway(
            "edge",
            subscribe="farm/#",
            processing_delay={"distribution": "uniform", "low": "1ms", "high": "3ms"},
            queue={"capacity": 5, "drop": "oldest"},
            forward_to="backend",
            forward_topic="up/{gateway}",
            forward_qos=1,
        )
        .default_link(latency="2ms", jitter="1ms")
        .link(
            "soil-*",
            "broker",
            loss={"model": "gilbert_elliott", "p_good_to_bad": 0.1, "p_bad_to_good": 0.5},
            bandwidth="20kbps",
            reorder=True,
            bidirectional=False,
        )
        .partition(["soil-0*"], ["broker", "edge"], start="1s")
        .build()
    )

    assert scenario.spec.description == "all of it"
    assert scenario.spec.cloud.name == "backend"
    assert scenario.spec.broker.retry_interval == 500 * TICKS_PER_MS
    rain = scenario.devices[0]
    assert rain.name == "rain" and rain.topic == "farm/rain"
    assert isinstance(rain.spec.publish, PoissonPublish) and rain.spec.publish.rate == 2.0
    # 12 sensors: two-digit indices
    assert [d.name for d in scenario.devices[1:3]] == ["soil-00", "soil-01"]
    gateway = scenario.spec.gateways[0]
    assert (gateway.forward.to, gateway.forward.topic, gateway.forward.qos) == (
        "backend",
        "up/{gateway}",
        1,
    )
    link = scenario.spec.network.links[0]
    assert isinstance(link.loss, GilbertElliottLoss)
    assert (link.bandwidth, link.reorder, link.bidirectional) == (20_000, True, False)
    assert scenario.spec.network.partitions[0].end is None
    result = simulate(scenario)
    assert result.metrics.node("backend").delivered > 0


def test_set_reaches_any_field_by_path():
    scenario = example().set("gateways.gw.queue.capacity", 7).set("devices[0].qos", 1).build()
    assert scenario.spec.gateways[0].queue.capacity == 7
    assert scenario.spec.devices[0].qos == 1


def test_direct_network():
    scenario = example().network("direct").build()
    assert scenario.spec.network.model == "direct"


def test_a_bad_value_names_the_field_and_the_call():
    builder = ScenarioBuilder("bad").sensors("t", period="0s").link("t", "broker", loss=1.5)

    with pytest.raises(ScenarioError) as caught:
        builder.build()

    assert caught.value.problems == [
        "ScenarioBuilder('bad'): devices[0].publish.period: must be longer than zero, "
        "got '0s' (set by .sensors('t'))",
        "ScenarioBuilder('bad'): network.links[0].loss: must be between 0 and 1, "
        "got 1.5 (set by .link('t', 'broker'))",
    ]


def test_a_problem_names_the_call_as_it_was_made():
    with pytest.raises(ScenarioError) as caught:
        ScenarioBuilder("bad").sensor("t", period="0s").build()
    assert caught.value.problems[0].endswith("(set by .sensor('t'))")


def test_an_unknown_node_is_caught_before_the_run():
    builder = example().link("temp-*", "gatway", latency="1ms")

    with pytest.raises(ScenarioError, match=r"network\.links\[1\]\.to: 'gatway' matches no node"):
        builder.build()


def test_duplicate_names_are_an_error():
    builder = example().sensor("gw")
    with pytest.raises(ScenarioError, match="the node name 'gw' is used twice"):
        builder.build()


def test_a_bad_topic_filter_is_an_error():
    builder = ScenarioBuilder("f").sensor("t").gateway("gw", subscribe=["a/#/b"])
    with pytest.raises(ScenarioError, match=r"gateways\[0\]\.subscribe\[0\]: '#' must be"):
        builder.build()


def test_contradictory_publish_arguments():
    with pytest.raises(ScenarioError, match="rate= makes publishing Poisson"):
        ScenarioBuilder().sensors("t", rate="1/s", period="1s")
    with pytest.raises(ScenarioError, match="either publish="):
        ScenarioBuilder().sensors("t", publish={"mode": "periodic"}, period="1s")


def test_to_dict_is_a_copy_and_build_can_be_called_again():
    builder = example()
    builder.to_dict()["devices"].clear()
    first = builder.build()
    assert len(first.devices) == 3
    assert builder.sensor("extra").build() != first
