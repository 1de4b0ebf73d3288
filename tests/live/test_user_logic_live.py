"""A user's logic as a real MQTT client (LogicService) on the session's real broker."""

from __future__ import annotations

import json
import queue

import pytest

from pytest_edgesim.gateway.logic_service import LogicService
from pytest_edgesim.pytest_plugin.docker_fixtures import MqttBroker


def start(mqtt_broker: MqttBroker, logic: str, **logic_config) -> LogicService:
    prefix = mqtt_broker.topic_prefix
    config = {
        "name": "gw",
        "topic_prefix": prefix,
        "subscribe": [{"filter": "sensors/#", "qos": 0}],
        "forward": {"topic": "cloud/out", "qos": 0},
        "logic": logic,
        "logic_config": {"forward_topic": "cloud/out", "forward_qos": 0, **logic_config},
        "time_scale": 10.0,
    }
    service = LogicService(config, mqtt_broker.host, mqtt_broker.port)
    service.start(connect_timeout_s=10)
    return service


@pytest.fixture
def forwarded(mqtt_broker: MqttBroker) -> queue.Queue[dict]:
    received: queue.Queue[dict] = queue.Queue()
    mqtt_broker.client(
        [(mqtt_broker.topic_prefix + "cloud/out", 0)],
        lambda topic, payload: received.put(json.loads(payload)),
    )
    return received


def test_a_reading_reaches_the_logic_as_in_virtual_time(mqtt_broker, forwarded):
    service = start(mqtt_broker, "user_logics:Forwarder", scale=7)
    try:
        publisher = mqtt_broker.client()
        reading = {"value": 21.5, "origin": "s-0", "seq": 1, "created_at_us": 1}
        publisher.publish(mqtt_broker.topic_prefix + "sensors/s-0", json.dumps(reading))
        out = forwarded.get(timeout=10)
    finally:
        service.stop()
    assert out["value"] == 21.5 and out["scale"] == 7
    assert out["origin"] == "gw" and out["seq"] == 1 and "created_at_us" in out
    assert service.counters["received"] == 1 and service.counters["forwarded"] == 1


def test_the_logics_timers_run_on_the_scaled_wall_clock(mqtt_broker, forwarded):
    service = start(mqtt_broker, "user_logics:Ticker", period_s=1.0)  # 0.1 s of wall time
    try:
        ticks = [forwarded.get(timeout=10)["tick"] for _ in range(3)]
    finally:
        service.stop()
    assert ticks == [1, 2, 3]
