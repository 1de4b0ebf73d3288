"""The gateway container across a broker restart on a pinned host port: it reconnects and
subscribes again by itself; what a publisher sent while the broker was down reaches the
cloud at QoS 1 (paho queues it and sends it on reconnection) and is lost at QoS 0."""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import paho.mqtt.client as mqtt
import pytest
from mqtt_probe import Probe, reading

from pytest_edgesim.docker import faults
from pytest_edgesim.docker.broker import BrokerContainer
from pytest_edgesim.docker.engine import publish_ip
from pytest_edgesim.docker.gateway import GatewayContainer
from pytest_edgesim.docker.images import ensure_image
from pytest_edgesim.docker.labels import resource_labels, resource_name

PREFIX = "edgesim-test/reconnect/"
PHASES = {"before": 0, "down": 10, "after": 20}  # phase -> value of its first reading
END = 99


@pytest.fixture
def network(docker_client: docker.DockerClient, test_session: str) -> Iterator[str]:
    created = docker_client.networks.create(
        resource_name("network", session=test_session),
        labels=resource_labels("network", session=test_session),
    )
    yield created.name
    created.remove()


@pytest.mark.parametrize("qos", [0, 1])
def test_the_gateway_container_reconnects_and_qos_decides_what_is_lost(
    docker_client: docker.DockerClient,
    broker_image: str,
    test_session: str,
    network: str,
    qos: int,
) -> None:
    port = faults.free_host_port(publish_ip(docker_client))
    config = {
        "name": "gw",
        "topic_prefix": PREFIX,
        "subscribe": [{"filter": "sensors/#", "qos": qos}],
        "aggregate": None,
        "forward": {"topic": "cloud/gw", "qos": qos},
    }
    with (
        BrokerContainer.start(
            broker_image, docker_client, session=test_session, network=network, host_port=port
        ) as broker,
        GatewayContainer.start(
            ensure_image("gateway", docker_client),
            config,
            broker.name,
            1883,
            docker_client,
            network=network,
            session=test_session,
        ) as gateway,
    ):
        cloud = Probe(broker.host, port, name="cloud", subscribe=((PREFIX + "cloud/gw", qos),))
        sensor = Probe(broker.host, port, name="sensor", clean_session=False)
        codes: dict[int, int] = {}
        try:

            def send(phase: str) -> None:
                for value in range(PHASES[phase], PHASES[phase] + 3):
                    codes[value] = sensor.publish(PREFIX + "sensors/t1", reading(value), qos).rc

            send("before")
            arrived = [_value(cloud.receive(30).payload) for _ in range(3)]  # all through
            faults.kill(broker)
            assert sensor.wait_disconnects(1, 10)
            # Hold the sensor back until the gateway and the cloud are subscribed again, so
            # what arrives depends on what each QoS promises, not on who reconnects first.
            sensor.client.loop_stop()
            send("down")
            faults.start(broker)
            assert cloud.wait_subscribed(2, 30)
            assert gateway.wait_log("gw: subscribed", count=2, timeout_s=30)
            sensor.client.reconnect()
            sensor.client.loop_start()
            assert sensor.wait_connects(2, 30)
            send("after")
            sensor.publish(PREFIX + "sensors/t1", reading(END), 1)
            wanted = set(_expected(qos))
            while not wanted <= set(arrived):
                arrived.append(_value(cloud.receive(30).payload))
        finally:
            sensor.close()
            cloud.close()
        counters = gateway.stop()
        logs = gateway.logs("all")

    assert any("disconnected" in line for line in logs), logs
    if qos == 0:  # published while the broker was down: paho refuses QoS 0 unconnected
        assert [codes[value] for value in _phase("down")] == [mqtt.MQTT_ERR_NO_CONN] * 3
    expected = _expected(qos)
    assert sorted(arrived) == expected  # each once: nothing lost at QoS 1, no duplicates
    assert counters is not None and counters["forwarded"] == len(expected)


def _value(payload: bytes) -> int:
    return int(json.loads(payload)["value"])


def _phase(name: str) -> list[int]:
    return list(range(PHASES[name], PHASES[name] + 3))


def _expected(qos: int) -> list[int]:
    """What reaches the cloud: every reading at QoS 1; at QoS 0 none of those sent while the
    broker was down."""
    phases = ["before", "down", "after"] if qos == 1 else ["before", "after"]
    return [value for phase in phases for value in _phase(phase)] + [END]
