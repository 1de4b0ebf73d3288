"""Bring your own node: a user's image (containers/threshold-node) as the gateway.

The image serves the lockstep protocol with the SDK (docs/protocol.md), so a deterministic
test drives it in virtual time like any Python model. Its logic can also be unit-tested
without Docker through the SDK's runtime.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pytest_edgesim.lockstep.sdk import NodeRuntime

NODE_SOURCE = Path(__file__).resolve().parents[1] / "containers/threshold-node/threshold_node.py"


def load_threshold_node():
    spec = importlib.util.spec_from_file_location("threshold_node", NODE_SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ThresholdNode


@pytest.mark.deterministic(replay_check=True)
@pytest.mark.edgesim(scenario="threshold-node.yaml")
def test_the_threshold_container_alerts_once_per_crossing(edge_scenario):
    result = edge_scenario.run()

    alerts = [arrival.payload for arrival in result.arrivals]
    assert alerts, "a 20±5 sine crosses 23.5 every 10 s period"
    assert all(alert["value"] > alert["threshold"] == 23.5 for alert in alerts)
    # each device crosses about once per 10 s period: 3 devices, 30 s (noise adds a few)
    per_device = {name: sum(a["device"] == name for a in alerts) for name in ("boiler-0",)}
    assert 2 <= per_device["boiler-0"] <= 6
    node = result.nodes["alarm"]
    assert node["implementation"] == "docker:lockstep"
    assert node["forwarded"] == len(alerts)  # QoS 1 over a lossless link: all arrive
    # readings below the threshold are the node's own drops: counted as rejected, not overflow
    assert node["dropped_overflow"] == 0
    assert node["dropped_rejected"] + node["forwarded"] == node["received"]
    assert result.metrics.node("alarm").dropped["rejected"] == node["dropped_rejected"]


def test_the_node_logic_without_docker(monkeypatch):
    monkeypatch.setenv("THRESHOLD", "10")
    runtime = NodeRuntime(
        load_threshold_node(), "alarm", 0, {"forward": {"topic": "alerts/alarm", "qos": 0}}
    )

    def reading(value, origin="d"):
        return {"topic": "t", "payload": value, "origin": origin, "seq": 1, "created_at": 0}

    outputs, next_timer = runtime.advance(
        100,
        [(10, reading(5.0)), (20, reading(12.0)), (30, reading(13.0)), (40, reading(11.0, "e"))],
    )
    assert next_timer is None
    assert [(o["t"], o["kind"]) for o in outputs] == [
        (10, "drop"),
        (20, "publish"),
        (30, "drop"),
        (40, "publish"),
    ]
    assert outputs[1]["payload"] == {"device": "d", "value": 12.0, "threshold": 10.0}
