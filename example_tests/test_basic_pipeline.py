"""What a user writes first: run the scenarios in scenarios/ and assert on what arrived.

The scenario directory is set in pyproject.toml (``edgesim_scenario_dir = "scenarios"``),
so ``scenario="basic.yaml"`` finds ``scenarios/basic.yaml``.
"""

from __future__ import annotations

import pytest


@pytest.mark.deterministic(replay_check=True)
@pytest.mark.edgesim(scenario="basic.yaml")
def test_every_aggregate_reaches_the_cloud(edge_scenario):
    result = edge_scenario.run()

    cloud = result.metrics.node("cloud")
    gateway = result.metrics.node("gateway")
    assert gateway.delivered > 0
    # the gateway forwards one aggregate per 10 readings, at QoS 1 over a lossless WAN
    assert cloud.delivered == gateway.delivered // 10
    assert all(arrival.topic == "cloud/gateway/temperature" for arrival in result.arrivals)
    # 50 ms WAN link: no aggregate can arrive sooner after it was sent
    assert result.metrics.link("gateway", "cloud").latency_ms["min"] >= 50


@pytest.mark.edgesim(scenario="basic.yaml", overrides={"network.links[0].loss": 0.0})
def test_without_uplink_loss_nothing_is_lost(edge_scenario):
    result = edge_scenario.run()
    for index in range(3):
        sensor = result.metrics.topic(f"sites/lab/temp-{index}/temperature")
        assert sensor.sent == 60
        assert sensor.delivered == sensor.sent
        assert sensor.dropped_total == 0


@pytest.mark.edgesim(scenario="partition.yaml")
def test_qos1_aggregates_survive_a_wan_partition(edge_scenario):
    edge_scenario.run("30s")  # in the middle of the 20 s - 35 s cut
    assert edge_scenario.network.is_partitioned("edge-gw", "cloud")
    during = len(edge_scenario.cloud_arrivals)

    result = edge_scenario.run()
    cut = result.metrics.link("edge-gw", "cloud").dropped.get("partition", 0)
    assert cut > 0, "the scheduled partition should have cut some transmissions"
    # QoS 1 is at-least-once: every 5 s window's aggregate (11 in 60 s) arrives once the
    # link heals, the ones held back by the cut included
    assert len(result.arrivals) > during
    assert sorted({arrival.seq for arrival in result.arrivals}) == list(range(1, 12))
    assert all(arrival.payload["count"] == 50 for arrival in result.arrivals)


@pytest.mark.edgesim(scenario="basic.yaml")
def test_cutting_the_uplink_from_the_test(edge_scenario):
    edge_scenario.run("10s")
    edge_scenario.network.partition("temp-0", "broker")
    edge_scenario.run("20s")
    edge_scenario.network.heal()
    result = edge_scenario.run("30s")

    uplink = result.metrics.link("temp-0", "broker")
    assert uplink.dropped.get("partition", 0) == 10  # one reading a second for 10 s
    assert result.metrics.link("temp-1", "broker").dropped.get("partition", 0) == 0
