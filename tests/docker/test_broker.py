from __future__ import annotations

import os
import socket
import threading
import time

import docker
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pytest_edgesim.docker.broker import BrokerContainer, ReadinessError, mqtt_connack
from pytest_edgesim.docker.engine import NoPublishedPortError, published_port
from pytest_edgesim.docker.labels import (
    CREATED_LABEL,
    HOST_LABEL,
    PID_LABEL,
    ROLE_LABEL,
    SESSION_LABEL,
    hostname,
    resource_labels,
)


def _config_command(*lines: str) -> list[str]:
    """Run the image's mosquitto on a configuration written by the command itself."""
    text = "\\n".join(lines)
    return ["sh", "-c", f"printf '{text}\\n' > /tmp/test.conf && exec mosquitto -c /tmp/test.conf"]


def test_the_broker_answers_connect_with_connack(broker: BrokerContainer) -> None:
    assert mqtt_connack(broker.host, broker.port) == 0


def test_a_paho_client_publishes_and_subscribes_through_it(broker: BrokerContainer) -> None:
    topic = f"edgesim-test/{os.getpid()}/roundtrip"
    received: list[bytes] = []
    arrived = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        received.append(message.payload)
        arrived.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edgesim-test-{os.getpid()}")
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        subscribed = threading.Event()
        client.on_subscribe = lambda *args: subscribed.set()
        client.subscribe(topic, qos=1)
        assert subscribed.wait(5), "no SUBACK"
        client.publish(topic, b"hello edge", qos=1).wait_for_publish(5)
        assert arrived.wait(5), "message did not come back"
    finally:
        client.loop_stop()
        client.disconnect()
    assert received == [b"hello edge"]


def test_the_container_carries_the_session_labels(
    broker: BrokerContainer, docker_client: docker.DockerClient, test_session: str
) -> None:
    labels = docker_client.containers.get(broker.container_id).labels
    assert labels[SESSION_LABEL] == test_session
    assert labels[PID_LABEL] == str(os.getpid())
    assert labels[HOST_LABEL] == hostname()
    assert abs(int(labels[CREATED_LABEL]) - time.time()) < 3600
    assert labels[ROLE_LABEL] == "broker"
    assert broker.name.startswith(f"{test_session}-broker-")


def test_a_bad_configuration_fails_fast_with_the_broker_log(
    docker_client: docker.DockerClient, broker_image: str, test_session: str
) -> None:
    started = time.monotonic()
    with pytest.raises(ReadinessError) as raised:
        BrokerContainer.start(
            broker_image,
            docker_client,
            session=test_session,
            command=_config_command("listener 1883", "no_such_option true"),
            ready_timeout_s=30,
        )
    assert time.monotonic() - started < 10, "an exited broker must not wait for the timeout"
    message = str(raised.value)
    assert "exited with exit code" in message
    assert "no_such_option" in message
    assert any("no_such_option" in line for line in raised.value.log_tail)
    assert _containers_of(docker_client, test_session, role="broker", exclude_running=True) == []


def test_a_broker_that_exited_before_its_port_was_read_reports_the_exit(
    docker_client: docker.DockerClient, broker_image: str, test_session: str
) -> None:
    # The race that the test above can lose: the container is already gone when its port
    # is read. Here it is certain: the command exits at once and we wait for it.
    command = ["sh", "-c", "echo bad configuration; exit 3"]
    with pytest.raises(ReadinessError) as raised:
        BrokerContainer.start(
            broker_image,
            docker_client,
            session=test_session,
            command=["sh", "-c", "sleep 0.5; echo bad configuration; exit 3"],
            ready_timeout_s=30,
        )
    assert "exited with exit code 3" in str(raised.value)
    broker = docker_client.containers.create(
        broker_image,
        command=command,
        # every label a session's own container has: with only some, another session's
        # reaper (tests/docker/test_cleanup.py runs one) takes it for a dead session's
        labels=resource_labels("broker", session=test_session),
        ports={"1883/tcp": ("127.0.0.1", None)},
    )
    try:
        broker.start()
        assert broker.wait(timeout=30)["StatusCode"] == 3
        with pytest.raises(NoPublishedPortError, match="exited with exit code 3"):
            published_port(docker_client, broker.id, 1883)
    finally:
        broker.remove(force=True)


def test_a_broker_refusing_clients_is_reported(
    docker_client: docker.DockerClient, broker_image: str, test_session: str
) -> None:
    with pytest.raises(ReadinessError, match="CONNACK code 5"):
        BrokerContainer.start(
            broker_image,
            docker_client,
            session=test_session,
            command=_config_command("listener 1883", "allow_anonymous false"),
        )


def test_a_broker_that_never_listens_times_out_with_its_log(
    docker_client: docker.DockerClient, broker_image: str, test_session: str
) -> None:
    never_answers = r"did not answer MQTT CONNECT .* within 1 s"
    with pytest.raises(ReadinessError, match=never_answers) as raised:
        BrokerContainer.start(
            broker_image,
            docker_client,
            session=test_session,
            command=["sh", "-c", "echo 'pretending to start'; exec sleep 60"],
            ready_timeout_s=1,
        )
    assert raised.value.log_tail == ["pretending to start"]


def test_restart_waits_for_connack_again_on_a_pinned_port(
    docker_client: docker.DockerClient, broker_image: str, test_session: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with BrokerContainer.start(
        broker_image, docker_client, session=test_session, host_port=free_port
    ) as broker:
        assert broker.port == free_port
        broker.restart()
        assert broker.port == free_port
        assert mqtt_connack(broker.host, broker.port) == 0


def test_stop_and_remove(
    docker_client: docker.DockerClient, broker_image: str, test_session: str
) -> None:
    broker = BrokerContainer.start(broker_image, docker_client, session=test_session)
    broker.stop()
    assert broker.state()["Status"] == "exited"
    broker.remove()
    broker.remove()
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(broker.container_id)


def _containers_of(
    client: docker.DockerClient, session: str, *, role: str, exclude_running: bool
) -> list[str]:
    found = client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={session}"})
    return [
        container.name
        for container in found
        if container.labels.get(ROLE_LABEL) == role
        and not (exclude_running and container.status == "running")
    ]
