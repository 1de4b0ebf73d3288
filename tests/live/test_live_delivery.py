"""Delivery accounting in live runs is measured on the real components: what the real broker
delivered to each gateway's subscriptions, and what the real gateway's forwards (their
``sources``) say reached the cloud. Real Mosquitto, the gateway container (and the gateway
in this process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_edgesim.core.result import RunResult
from pytest_edgesim.core.scenario import Scenario
from pytest_edgesim.gateway.service import GatewayService
from pytest_edgesim.live import LiveRun
from pytest_edgesim.pytest_plugin.docker_fixtures import MqttBroker

BASIC = Path(__file__).parents[2] / "scenarios" / "basic.yaml"
SENSORS = [f"sites/lab/temp-{index}/temperature" for index in range(3)]
AGGREGATE = 5


def _live(mqtt_broker: MqttBroker, gateway: str, *, loss: float) -> RunResult:
    scenario = Scenario.from_yaml(BASIC).with_overrides(
        {
            "duration": "10s",
            "gateways.0.implementation": gateway,
            "gateways.0.aggregate.count": AGGREGATE,
            "network.links.0.loss": loss,
        }
    )
    with LiveRun(
        scenario,
        42,
        broker=mqtt_broker.endpoint,
        time_scale=3.0,
        topic_prefix=mqtt_broker.new_prefix(f"delivery::{gateway}"),
    ) as run:
        return run.run()


@pytest.mark.parametrize("gateway", ["docker", "python_model"])
def test_a_live_run_measures_what_reached_the_gateway_and_the_cloud(
    mqtt_broker: MqttBroker, gateway: str
) -> None:
    result = _live(mqtt_broker, gateway, loss=0.3)
    uplink_losses = sum(result.metrics.topic(topic).dropped["loss"] for topic in SENSORS)
    assert uplink_losses > 0  # (seed 42 loses some of the 30 readings)

    # what reached the gateway: the readings the real broker delivered to its subscriptions
    at_gateway = result.delivery("temp-*", "gateway")
    assert at_gateway.sent == 30
    assert at_gateway.delivered == result.metrics.node("gateway").delivered
    assert at_gateway.lost_by_cause.get("loss", 0) == uplink_losses
    assert at_gateway.delivered + at_gateway.lost == at_gateway.sent

    # what reached the cloud: the readings the real gateway's aggregates name
    at_cloud = result.delivery("temp-*", "cloud")
    named = sum(
        last - first + 1
        for arrival in result.arrivals
        for runs in arrival.payload["sources"].values()
        for first, last in runs
    )
    assert at_cloud.delivered == named == sum(a.payload["count"] for a in result.arrivals)
    assert at_cloud.delivered < at_cloud.sent == 30
    assert at_cloud.lost_by_cause.get("loss", 0) == uplink_losses
    # the rest reached the gateway and waits in an aggregate that is not full
    assert at_cloud.lost_by_cause.get("pending", 0) == at_gateway.delivered - at_cloud.delivered
    assert at_cloud.lost_by_cause.get("pending", 0) < AGGREGATE
    assert at_cloud.duplicated == 0


def test_a_gateway_that_names_no_readings_is_counted_by_its_forwards(
    mqtt_broker: MqttBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A black-box gateway: its forwards carry no ``sources``, so the cloud counts readings
    by forwards (each aggregate counted once) and cannot say which were lost where past
    the gateway."""
    original = GatewayService._publish

    def without_lineage(self: GatewayService, payload: dict[str, Any], created: Any, _: Any):
        return original(self, payload, created, None)

    monkeypatch.setattr(GatewayService, "_publish", without_lineage)
    result = _live(mqtt_broker, "python_model", loss=0.3)
    forwards = result.metrics.node("cloud").delivered
    assert forwards > 0
    assert all("sources" not in arrival.payload for arrival in result.arrivals)
    at_cloud = result.delivery("temp-*", "cloud")
    assert at_cloud.without_lineage == forwards
    assert at_cloud.delivered == forwards  # one per forward: an aggregate's readings are unknown
    uplink_losses = sum(result.metrics.topic(topic).dropped["loss"] for topic in SENSORS)
    assert at_cloud.lost_by_cause.get("loss", 0) == uplink_losses
    assert at_cloud.lost_by_cause.get("unknown", 0) == at_cloud.lost - uplink_losses
