"""Faults on the real broker and gateway containers: pause, restart, kill, partition.

What these tests pin down (Mosquitto configured for tests: ``persistence false``):

* a paused broker holds its connections but answers nothing: a QoS 1 PUBLISH gets no PUBACK
  until it is unpaused, then it completes and is delivered;
* a restart with a pinned host port keeps the port, and a paho client with automatic
  reconnect resumes (resubscribing in ``on_connect``);
* a broker killed mid-run: QoS 1 messages a client publishes while the broker is down wait
  in paho's queue and are delivered after the restart; QoS 0 ones are refused
  (``MQTT_ERR_NO_CONN``) and lost;
* without persistence, the broker's own state dies with it: QoS 1 messages it queued for an
  offline persistent session are delivered on reconnect only if the broker did not restart;
* a gateway cut off its network receives nothing; after healing, the same TCP connection
  carries the held QoS 1 message (retransmitted by TCP) and the gateway never reconnects.
"""

from __future__ import annotations

import json
import os
import queue
from collections.abc import Iterator

import docker
import paho.mqtt.client as mqtt
import pytest
from mqtt_probe import Probe, reading, start_passthrough_gateway

from pytest_edgesim.docker import faults
from pytest_edgesim.docker.broker import BrokerContainer
from pytest_edgesim.docker.engine import publish_ip
from pytest_edgesim.docker.images import ensure_image


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    return f"edgesim-test/{os.getpid()}/{request.node.name}"


@pytest.fixture
def pinned_broker(
    docker_client: docker.DockerClient, broker_image: str, test_session: str
) -> Iterator[BrokerContainer]:
    """A broker of its own (these tests break it) on a pinned host port."""
    port = faults.free_host_port(publish_ip(docker_client))
    with BrokerContainer.start(
        broker_image, docker_client, session=test_session, host_port=port
    ) as started:
        yield started


def test_restart_refuses_a_container_whose_port_would_change(broker: BrokerContainer) -> None:
    with pytest.raises(faults.FaultError, match="ephemeral host port"):
        faults.restart(broker)
    assert broker.state()["Status"] == "running"


def test_pause_makes_publishes_time_out_and_unpause_recovers(
    broker: BrokerContainer, topic: str
) -> None:
    subscriber = Probe(broker.host, broker.port, subscribe=((topic, 1),))
    publisher = Probe(broker.host, broker.port)
    try:
        with faults.paused(broker):
            assert broker.state()["Status"] == "paused"
            info = publisher.publish(topic, b"while paused", qos=1)
            info.wait_for_publish(timeout=0.5)  # a negative check can only wait a bound
            assert not info.is_published()
        info.wait_for_publish(timeout=10)
        assert info.is_published()
        assert subscriber.receive().payload == b"while paused"
        assert publisher.disconnects == 0
    finally:
        publisher.close()
        subscriber.close()


def test_restart_keeps_the_port_and_a_reconnecting_client_resumes(
    pinned_broker: BrokerContainer, topic: str
) -> None:
    port = pinned_broker.port
    subscriber = Probe(pinned_broker.host, port, subscribe=((topic, 1),))
    try:
        faults.restart(pinned_broker)
        assert pinned_broker.port == port
        assert subscriber.wait_disconnects(1, 10)
        assert subscriber.wait_connects(2, 30)
        assert subscriber.wait_subscribed(2, 10)
        publisher = Probe(pinned_broker.host, pinned_broker.port)
        try:
            publisher.publish(topic, b"after restart", qos=1).wait_for_publish(10)
        finally:
            publisher.close()
        assert subscriber.receive().payload == b"after restart"
    finally:
        subscriber.close()


def test_killed_broker_qos1_queued_in_the_client_survives_and_qos0_is_lost(
    pinned_broker: BrokerContainer, topic: str
) -> None:
    subscriber = Probe(pinned_broker.host, pinned_broker.port, subscribe=((topic, 1),))
    publisher = Probe(pinned_broker.host, pinned_broker.port, clean_session=False)
    try:
        faults.kill(pinned_broker)
        assert publisher.wait_disconnects(1, 10)
        # Hold the publisher back until the subscriber is back, so that what arrives
        # depends only on what each QoS level promises, not on who reconnects first.
        publisher.client.loop_stop()
        results = {}
        for sequence in range(5):
            for qos in (1, 0):
                name = f"qos{qos}-{sequence}"
                results[name] = publisher.publish(topic, name.encode(), qos=qos).rc
        assert all(results[f"qos0-{n}"] == mqtt.MQTT_ERR_NO_CONN for n in range(5))

        faults.start(pinned_broker)
        assert subscriber.wait_subscribed(2, 30)
        publisher.client.reconnect()
        publisher.client.loop_start()
        assert publisher.wait_connects(2, 30)
        publisher.publish(topic, b"end", qos=1)

        arrived = []
        while not arrived or arrived[-1] != "end":
            arrived.append(subscriber.receive(30).payload.decode())
    finally:
        publisher.close()
        subscriber.close()
    # Messages from one connection arrive in order: anything sent before "end" is in.
    assert arrived == [f"qos1-{n}" for n in range(5)] + ["end"]


@pytest.mark.parametrize("broker_restarts", [False, True], ids=["no-restart", "restart"])
def test_messages_queued_for_an_offline_session_die_with_a_broker_without_persistence(
    pinned_broker: BrokerContainer, topic: str, broker_restarts: bool
) -> None:
    client_id = f"edgesim-offline-{os.getpid()}-{broker_restarts}"

    def persistent_subscriber() -> Probe:
        return Probe(
            pinned_broker.host, pinned_broker.port, client_id=client_id, clean_session=False
        )

    first = persistent_subscriber()
    first.subscribe(topic, qos=1)
    first.close()
    publisher = Probe(pinned_broker.host, pinned_broker.port)
    try:
        for sequence in range(3):
            publisher.publish(topic, f"queued-{sequence}".encode(), qos=1).wait_for_publish(10)
    finally:
        publisher.close()
    if broker_restarts:
        faults.kill(pinned_broker)
        faults.start(pinned_broker)

    second = persistent_subscriber()
    try:
        second.subscribe(topic, qos=1)
        publisher = Probe(pinned_broker.host, pinned_broker.port)
        try:
            publisher.publish(topic, b"end", qos=1).wait_for_publish(10)
        finally:
            publisher.close()
        arrived = []
        while not arrived or arrived[-1] != "end":
            arrived.append(second.receive(30).payload.decode())
    finally:
        second.close()
    queued = [f"queued-{n}" for n in range(3)]
    assert arrived == ([] if broker_restarts else queued) + ["end"]


def test_a_partitioned_gateway_gets_nothing_and_healing_delivers_what_was_held(
    docker_client: docker.DockerClient, broker_image: str, test_session: str, topic: str
) -> None:
    gateway_image = ensure_image("gateway", docker_client)
    with (
        faults.create_network(docker_client, session=test_session) as network,
        BrokerContainer.start(
            broker_image, docker_client, session=test_session, network=network.name
        ) as broker,
    ):
        gateway = start_passthrough_gateway(
            docker_client,
            gateway_image,
            session=test_session,
            prefix=topic,
            broker_host=broker.name,
            network=network.name,
        )
        try:
            cloud = Probe(broker.host, broker.port, subscribe=((f"{topic}/cloud/#", 1),))
            sensor = Probe(broker.host, broker.port)
            try:
                sensor.publish(f"{topic}/sensors/t1", reading(1), qos=1)
                assert json.loads(cloud.receive().payload)["value"] == 1

                address = _address(docker_client, gateway.id, network.name)
                partition = faults.disconnect(_Handle(docker_client, gateway.id), network.name)
                sensor.publish(f"{topic}/sensors/t1", reading(2), qos=1).wait_for_publish(10)
                # The broker has taken the reading and sent it into the partition.
                with pytest.raises(queue.Empty):
                    cloud.receive(1.0)  # a negative check can only wait a bound

                partition.heal()
                assert _address(docker_client, gateway.id, network.name) == address
                assert json.loads(cloud.receive(30).payload)["value"] == 2
            finally:
                sensor.close()
                cloud.close()
            logs = gateway.logs().decode(errors="replace")
            assert "disconnected" not in logs, logs  # the partition was invisible to MQTT
        finally:
            gateway.remove(force=True)


def test_disconnecting_from_a_network_it_is_not_on_is_a_clear_error(
    broker: BrokerContainer,
) -> None:
    with pytest.raises(faults.FaultError, match="is not on network 'nowhere'"):
        faults.disconnect(broker, "nowhere")


class _Handle:
    def __init__(self, client: docker.DockerClient, container_id: str):
        self.client = client
        self.container_id = container_id


def _address(client: docker.DockerClient, container_id: str, network: str) -> str:
    networks = client.api.inspect_container(container_id)["NetworkSettings"]["Networks"]
    return str(networks[network]["IPAddress"])
