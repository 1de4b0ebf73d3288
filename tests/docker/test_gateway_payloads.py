"""The gateway image against a real broker: payloads that are no reading, and a configuration
it cannot run. A bad message is counted and logged, and the gateway goes on forwarding."""

from __future__ import annotations

import json
import queue
from typing import Any

import docker
import pytest

from pytest_edgesim.docker.broker import ReadinessError
from pytest_edgesim.docker.gateway import GatewayContainer
from pytest_edgesim.docker.images import ensure_image
from pytest_edgesim.pytest_plugin.docker_fixtures import MqttBroker


def _forwards(mqtt_broker: MqttBroker, topic: str) -> queue.Queue[bytes]:
    arrived: queue.Queue[bytes] = queue.Queue()
    mqtt_broker.client([(mqtt_broker.topic_prefix + topic, 1)], lambda _t, p: arrived.put(p))
    return arrived


def _publish(mqtt_broker: MqttBroker, topic: str, payloads: list[bytes]) -> None:
    publisher = mqtt_broker.client(role="pub")
    for payload in payloads:
        publisher.publish(mqtt_broker.topic_prefix + topic, payload, qos=1)


def test_bad_payloads_do_not_stop_an_aggregating_gateway(
    mqtt_broker: MqttBroker, docker_gateway: Any
) -> None:
    gateway = docker_gateway(
        {
            "name": "gw",
            "subscribe": [{"filter": "in/#", "qos": 1}],
            "aggregate": {"count": 2, "functions": ["mean", "count"]},
            "forward": {"topic": "out", "qos": 1},
        }
    )
    forwards = _forwards(mqtt_broker, "out")
    bad = [b"warm", b'"warm"', b"[21.5]", b'{"value": true}']
    # a bare number first: before the fix it was the message that stopped the worker
    good = [b"21.5", b'{"value": "22.5", "origin": "s1"}', b"1", b'{"value": 3}']
    _publish(mqtt_broker, "in/s1", [good[0], *bad, *good[1:]])
    aggregates = [json.loads(forwards.get(timeout=10)) for _ in range(2)]
    assert [(a["mean"], a["count"]) for a in aggregates] == [(22.0, 2), (2.0, 2)]
    assert gateway.stop() == {
        "received": 8,
        "processed": 8,
        "forwarded": 2,
        "dropped_overflow": 0,
        "rejected": 4,
    }
    rejections = [line for line in gateway.logs("all") if "rejected a message" in line]
    assert rejections and "gw: rejected a message on in/s1: no number in b'warm'" in rejections[0]
    assert len(rejections) < len(bad)  # at most one line per interval, not one per message


def test_a_gateway_image_reads_the_number_in_the_configured_field(
    mqtt_broker: MqttBroker, docker_gateway: Any
) -> None:
    """Sensors that publish {"sensor": {"temp": ...}}: the container reads the nested field."""
    docker_gateway(
        {
            "name": "gw",
            "subscribe": [{"filter": "in/#", "qos": 1}],
            "aggregate": {"count": 2, "functions": ["max"], "value_field": "sensor.temp"},
            "forward": {"topic": "out", "qos": 1},
        }
    )
    forwards = _forwards(mqtt_broker, "out")
    readings = [b'{"sensor": {"temp": 19.5}}', b'{"value": 99}', b'{"sensor": {"temp": 20.5}}']
    _publish(mqtt_broker, "in/s1", readings)
    assert json.loads(forwards.get(timeout=10))["max"] == 20.5


def test_a_forwarding_gateway_forwards_any_payload(
    mqtt_broker: MqttBroker, docker_gateway: Any
) -> None:
    gateway = docker_gateway(
        {
            "name": "gw",
            "subscribe": [{"filter": "in/#", "qos": 1}],
            "forward": {"topic": "out", "qos": 1},
        }
    )
    forwards = _forwards(mqtt_broker, "out")
    reading = {"value": 21.5, "origin": "s1", "seq": 4, "created_at_us": 17}
    payloads = [b"21.5", b"warm", json.dumps(reading).encode()]
    _publish(mqtt_broker, "in/s1", payloads)
    got = [forwards.get(timeout=10) for _ in payloads]
    assert got[:2] == payloads[:2]
    assert json.loads(got[2]) == {
        **reading,
        "origin": "gw",
        "seq": 3,
        "sources": {"s1": [[4, 4]]},
    }
    assert gateway.stop() == {
        "received": 3,
        "processed": 3,
        "forwarded": 3,
        "dropped_overflow": 0,
        "rejected": 0,
    }


def test_a_configuration_without_forward_exits_2_before_it_is_ready(
    docker_client: docker.DockerClient, test_session: str
) -> None:
    config = {"name": "g", "subscribe": [{"filter": "a/#", "qos": 0}]}
    with pytest.raises(ReadinessError) as raised:
        GatewayContainer.start(
            ensure_image("gateway", docker_client),
            config,
            "127.0.0.1",
            1,
            docker_client,
            session=test_session,
        )
    assert "with exit code 2 before it was ready" in str(raised.value)
    assert raised.value.log_tail == [
        "EDGESIM_GATEWAY_CONFIG is not a gateway configuration: "
        'forward is missing: expected {"topic": "cloud/out"}'
    ]
