"""A broker on a remote engine takes no anonymous clients: it gets a user name and password
generated for the session, and every client of the tool's logs in with them.

"Remote" is simulated on the local engine by ``EDGESIM_REMOTE_ENGINE=1`` (which is all a
remote ``DOCKER_HOST`` changes about the broker; its port would also be published on all
addresses rather than the loopback one). The broker is the real Mosquitto container.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import paho.mqtt.client as paho
import pytest

from pytest_edgesim.core.scenario import Scenario
from pytest_edgesim.docker.broker import BrokerContainer, start_broker
from pytest_edgesim.docker.credentials import (
    REMOTE_ENGINE_ENV,
    authenticated_config,
    password_entry,
    remote_mode,
)
from pytest_edgesim.docker.engine import publish_ip
from pytest_edgesim.live import LiveRun
from pytest_edgesim.live.mqtt import BrokerCredentials, BrokerEndpoint
from pytest_edgesim.live.probe import mqtt_connack

BASIC = Path(__file__).parents[2] / "scenarios" / "basic.yaml"


def test_remote_mode_follows_the_published_address_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REMOTE_ENGINE_ENV, raising=False)
    assert remote_mode("0.0.0.0") and not remote_mode("127.0.0.1")
    monkeypatch.setenv(REMOTE_ENGINE_ENV, "1")
    assert remote_mode("127.0.0.1")
    monkeypatch.setenv(REMOTE_ENGINE_ENV, "0")
    assert not remote_mode("0.0.0.0")


def test_the_password_file_entry_is_mosquitto_s_pbkdf2_format() -> None:
    salt = bytes(range(12))
    entry = password_entry(BrokerCredentials("edgesim", "s3cret"), salt=salt)
    user, rest = entry.split(":", 1)
    _, kind, iterations, salt_b64, hash_b64 = rest.split("$")
    assert (user, kind, iterations) == ("edgesim", "7", "101")
    assert base64.b64decode(salt_b64) == salt
    assert base64.b64decode(hash_b64) == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)
    assert "s3cret" not in entry


def test_the_configuration_loses_anonymous_access() -> None:
    config = authenticated_config("listener 1883\nallow_anonymous true\npersistence false\n")
    lines = config.splitlines()
    assert "allow_anonymous true" not in lines
    assert "allow_anonymous false" in lines and "listener 1883" in lines
    assert any(line.startswith("password_file ") for line in lines)


def test_credentials_are_never_shown() -> None:
    assert "hunter2" not in repr(BrokerCredentials("edgesim", "hunter2"))
    endpoint = BrokerEndpoint("h", 1, credentials=BrokerCredentials("edgesim", "hunter2"))
    assert "hunter2" not in repr(endpoint)


# --- against the real broker ----------------------------------------------------------------
@pytest.fixture(scope="module")
def remote_broker(
    docker_client: docker.DockerClient, test_session: str
) -> Iterator[tuple[BrokerContainer, str]]:
    """The project's broker as a remote engine gets it, on a network of its own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(REMOTE_ENGINE_ENV, "1")
        from pytest_edgesim.docker.labels import resource_labels, resource_name

        network = docker_client.networks.create(
            resource_name("network", session=test_session),
            labels=resource_labels("network", session=test_session),
        )
        broker = start_broker(docker_client, session=test_session, network=network.name)
    try:
        yield broker, network.name
    finally:
        broker.remove()
        network.remove()


def _paho_connect(broker: BrokerContainer, credentials: BrokerCredentials | None) -> str:
    """The reason code the real broker gives a paho client's CONNECT."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="edgesim-remote-test")
    answered = threading.Event()
    reason: list[str] = []

    def on_connect(_c: object, _u: object, _f: object, code: object, _p: object) -> None:
        reason.append(str(code))
        answered.set()

    client.on_connect = on_connect
    if credentials is not None:
        client.username_pw_set(credentials.username, credentials.password)
    client.connect(broker.host, broker.port, keepalive=10)
    client.loop_start()
    try:
        assert answered.wait(10), "the broker never answered CONNECT"
    finally:
        client.disconnect()
        client.loop_stop()
    return reason[0]


def test_the_broker_refuses_anonymous_clients_and_takes_the_session_s(
    remote_broker: tuple[BrokerContainer, str],
) -> None:
    broker, _network = remote_broker
    assert broker.credentials is not None
    assert "password" in (broker.configuration or "")
    assert _paho_connect(broker, None) == "Not authorized"
    wrong = BrokerCredentials(broker.credentials.username, "not-the-password")
    assert _paho_connect(broker, wrong) == "Not authorized"
    assert _paho_connect(broker, broker.credentials) == "Success"
    # the raw readiness probe, too
    assert mqtt_connack(broker.host, broker.port) == 5
    pair = (broker.credentials.username, broker.credentials.password)
    assert mqtt_connack(broker.host, broker.port, credentials=pair) == 0


def test_a_restarted_broker_still_requires_them(
    remote_broker: tuple[BrokerContainer, str],
) -> None:
    broker, _network = remote_broker
    broker.restart()
    assert broker.credentials is not None
    assert _paho_connect(broker, None) == "Not authorized"
    assert _paho_connect(broker, broker.credentials) == "Success"


@pytest.mark.parametrize("gateway", ["python_model", "docker"])
def test_a_live_run_logs_in_everywhere(
    remote_broker: tuple[BrokerContainer, str], gateway: str
) -> None:
    """Sensors, the cloud's subscriber and the gateway (in this process, or the project's
    gateway container) all log in: readings reach the cloud."""
    broker, network = remote_broker
    endpoint = BrokerEndpoint(
        broker.host, broker.port, network, broker.name, credentials=broker.credentials
    )
    scenario = Scenario.from_yaml(BASIC).with_overrides(
        {"duration": "4s", "gateways.0.implementation": gateway}
    )
    with LiveRun(
        scenario, 3, broker=endpoint, time_scale=2.0, topic_prefix=f"remote/{gateway}/"
    ) as run:
        result = run.run()
    assert result.metrics.node("gateway").delivered >= 1
    assert result.metrics.node("gateway").delivered == sum(
        result.metrics.topic(f"sites/lab/temp-{index}/temperature").delivered for index in range(3)
    )


def test_a_local_engine_publishes_on_loopback(docker_client: docker.DockerClient) -> None:
    assert publish_ip(docker_client) == "127.0.0.1"


def test_a_black_box_gateway_gets_them_as_placeholders_and_variables() -> None:
    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.docker.user_gateway import (
        container_command,
        container_environment,
        placeholder_values,
    )

    spec = GatewaySpec.model_validate(
        {
            "name": "gw",
            "implementation": "docker",
            "subscribe": [{"filter": "sensors/#"}],
            "docker": {
                "image": "my/gateway:1",
                "command": ["gw", "--user={broker_username}", "--password={broker_password}"],
                "environment": {"MQTT_USER": "{broker_username}"},
            },
        }
    )
    secret = BrokerCredentials("edgesim", "pw-123")
    values = placeholder_values(spec, {}, "broker", 1883, secret)
    assert container_command(spec, values) == ["gw", "--user=edgesim", "--password=pw-123"]
    assert container_environment(spec, values)["MQTT_USER"] == "edgesim"
    anonymous = placeholder_values(spec, {}, "broker", 1883)
    assert container_command(spec, anonymous) == ["gw", "--user=", "--password="]


PLUGIN_TESTS = """
import pytest
from pytest_edgesim.live.probe import mqtt_connack


def test_the_session_broker_logs_everyone_in(mqtt_broker):
    credentials = mqtt_broker.container.credentials
    assert credentials is not None
    assert mqtt_connack(mqtt_broker.host, mqtt_broker.port) == 5  # anonymous: refused
    received = []
    topic = mqtt_broker.topic_prefix + "t"
    client = mqtt_broker.client([(topic, 1)], lambda t, p: received.append(p))
    client.publish(topic, b"hello", qos=1).wait_for_publish(10)
    for _ in range(200):
        if received:
            break
        import time
        time.sleep(0.05)
    assert received == [b"hello"]


@pytest.mark.statistical(trials=2)
@pytest.mark.edgesim(
    "basic.yaml", time_scale=2, duration="3s", overrides={"gateways.0.implementation": "docker"}
)
def test_a_pooled_gateway_container_logs_in(edge_scenario):
    result = edge_scenario.run()
    assert result.metrics.node("gateway").delivered >= 1
"""


def test_the_plugin_on_a_remote_engine(pytester: pytest.Pytester) -> None:
    """The session's broker, the clients tests get, the gateway pool's control client and
    the pooled gateway container: all log in, over two trials (the second reuses the
    container)."""
    pytester.makefile(".yaml", basic=BASIC.read_text())
    pytester.makepyfile(PLUGIN_TESTS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(REMOTE_ENGINE_ENV, "1")
        result = pytester.runpytest_subprocess(
            "--edgesim-broker=docker", "--edgesim-docker=require", "-p", "no:randomly"
        )
    result.assert_outcomes(passed=2)


BLACK_BOX_TEST = """
import pytest


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim(scenario="blackbox-gateway.yaml", time_scale=3, duration="6s")
def test_the_black_box_logs_in(edge_scenario):
    result = edge_scenario.run()
    assert result.metrics.node("averager").delivered >= 1
    assert result.arrivals, "no average reached the cloud"
"""


def test_the_example_black_box_logs_in_through_its_placeholders(
    pytester: pytest.Pytester,
) -> None:
    """The example's own program (raw MQTT, no edgesim code) is given the session's
    credentials through ``{broker_username}`` and ``{broker_password}``."""
    examples = Path(__file__).parents[2] / "example_tests"
    pytester.makefile(
        ".yaml", **{"blackbox-gateway": (examples / "blackbox-gateway.yaml").read_text()}
    )
    shutil.copytree(examples / "blackbox_gateway", pytester.path / "blackbox_gateway")
    pytester.makepyfile(BLACK_BOX_TEST)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(REMOTE_ENGINE_ENV, "1")
        result = pytester.runpytest_subprocess(
            "--edgesim-broker=docker", "--edgesim-docker=require", "-p", "no:randomly"
        )
    result.assert_outcomes(passed=1)
