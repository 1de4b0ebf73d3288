"""The user's broker on the real engine: Mosquitto of each Debian release, built offline,
reporting its version; the user's configuration applied; one container per distinct broker
per session, removed at the end."""

from __future__ import annotations

import json
import re
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import paho.mqtt.client as mqtt
import pytest

from pytest_edgesim.docker.broker import BrokerContainer, ReadinessError, start_broker
from pytest_edgesim.docker.broker_choice import BrokerChoice
from pytest_edgesim.docker.labels import SESSION_LABEL

pytest_plugins = ["pytester"]

EXPECTED_VERSIONS = {
    "bookworm": r"mosquitto 2\.0\.11 \(bookworm\)",
    "trixie": r"mosquitto 2\.0\.21 \(trixie\)",
    "forky": r"mosquitto 2\.[1-9]\d*\.\d+ \(forky\)",  # testing: 2.1 now, moving on
}


@pytest.fixture
def start(docker_client: docker.DockerClient, test_session: str) -> Iterator[object]:
    """``start(choice)``: a broker of ``choice`` in this test session, removed after the test."""
    started: list[BrokerContainer] = []

    def run(choice: BrokerChoice) -> BrokerContainer:
        broker = start_broker(docker_client, session=test_session, choice=choice)
        started.append(broker)
        return broker

    yield run
    for broker in started:
        broker.remove()


@pytest.mark.parametrize("release", list(EXPECTED_VERSIONS))
def test_each_release_builds_and_reports_its_version(start, release: str) -> None:
    broker = start(BrokerChoice(release=release))

    assert re.fullmatch(EXPECTED_VERSIONS[release], broker.version or ""), broker.version
    assert broker.configuration == "edgesim's test configuration (anonymous, no persistence)"
    image = broker.client.containers.get(broker.container_id).image
    assert f"edgesim/base:{release}-" in image.labels["edgesim.base"]


def test_bookworm_is_the_default_broker(start) -> None:
    default = start(BrokerChoice())
    bookworm = start(BrokerChoice(release="bookworm"))

    image_of = lambda broker: broker.client.containers.get(broker.container_id).image.id  # noqa: E731
    assert image_of(default) == image_of(bookworm)
    assert default.version == bookworm.version == "mosquitto 2.0.11 (bookworm)"


def queued_after_offline(broker: BrokerContainer, sent: int) -> list[bytes]:
    """What a persistent QoS 1 subscriber receives of ``sent`` messages published while it
    was offline (then one more, sent once it is back, which ends the wait)."""
    topic = f"queue/{uuid.uuid4().hex[:8]}"
    client_id = f"offline-{uuid.uuid4().hex[:8]}"
    received: list[bytes] = []
    events = {name: threading.Event() for name in ("subscribed", "connected", "last")}

    def on_message(_client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        received.append(message.payload)
        if message.payload == b"last":
            events["last"].set()

    def client(client_id: str, clean_session: bool, **callbacks: object) -> mqtt.Client:
        made = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
        )
        for name, callback in callbacks.items():
            setattr(made, name, callback)
        made.connect(broker.host, broker.port)
        made.loop_start()
        return made

    subscriber = client(client_id, False, on_subscribe=lambda *_: events["subscribed"].set())
    subscriber.subscribe(topic, qos=1)
    assert events["subscribed"].wait(10)
    subscriber.disconnect()
    subscriber.loop_stop()
    publisher = client(f"publisher-{uuid.uuid4().hex[:8]}", True)
    for index in range(sent):
        publisher.publish(topic, str(index).encode(), qos=1).wait_for_publish(10)
    subscriber = client(
        client_id, False, on_message=on_message, on_connect=lambda *_: events["connected"].set()
    )
    assert events["connected"].wait(10)
    publisher.publish(topic, b"last", qos=1).wait_for_publish(10)
    assert events["last"].wait(10)
    for each in (subscriber, publisher):
        each.disconnect()
        each.loop_stop()
    return received[:-1]


@pytest.mark.parametrize("release", ["bookworm", "trixie"])
def test_the_users_configuration_is_applied(start, tmp_path: Path, release: str) -> None:
    config = tmp_path / "production.conf"
    config.write_text("allow_anonymous true\nmax_queued_messages 3\n")

    configured = start(BrokerChoice(release=release, config=config))
    plain = start(BrokerChoice(release=release))

    assert queued_after_offline(configured, 10) == [b"0", b"1", b"2"]
    assert queued_after_offline(plain, 10) == [str(index).encode() for index in range(10)]
    assert configured.configuration == f"{config} (edgesim added: listener 1883)"
    mounted = configured.client.containers.get(configured.container_id).attrs["Mounts"]
    assert {mount["Destination"]: mount["RW"] for mount in mounted} == {
        "/edgesim/mosquitto.conf": False,
        "/edgesim/user/user.conf": False,
    }


def test_a_configuration_with_its_own_listener_gets_nothing_added(start, tmp_path: Path) -> None:
    config = tmp_path / "mosquitto.conf"
    config.write_text("listener 1883\nallow_anonymous true\n")

    broker = start(BrokerChoice(release="trixie", config=config))

    assert broker.configuration == f"{config} (edgesim added: nothing)"
    assert queued_after_offline(broker, 2) == [b"0", b"1"]


def test_a_configuration_that_refuses_anonymous_clients_is_a_clear_error(
    docker_client: docker.DockerClient, test_session: str, tmp_path: Path
) -> None:
    config = tmp_path / "locked.conf"
    config.write_text("allow_anonymous false\n# password_file /secret/do-not-print\n")

    with pytest.raises(ReadinessError) as raised:
        start_broker(
            docker_client,
            session=test_session,
            choice=BrokerChoice(release="trixie", config=config),
        )

    message = str(raised.value)
    assert "CONNACK code 5" in message and "anonymous clients" in message
    assert "do-not-print" not in message  # the configuration's content is never shown
    label = {"label": f"{SESSION_LABEL}={test_session}"}
    assert not [
        c
        for c in docker_client.api.containers(all=True, filters=label)
        if "broker" in c["Names"][0]
    ]


SHARED = """
import os
import pytest

def show(request, mqtt_broker):
    print(f"BROKER {request.node.name} {mqtt_broker.container.container_id[:12]}")

@pytest.mark.edgesim(broker=["bookworm", "trixie"])
def test_one(request, mqtt_broker):
    mqtt_broker.client().disconnect()
    show(request, mqtt_broker)

@pytest.mark.edgesim(broker=["trixie"])
def test_two(request, mqtt_broker):
    show(request, mqtt_broker)

@pytest.mark.edgesim(broker=[{"release": "trixie", "config": "strict.conf"}])
def test_three(request, mqtt_broker):
    show(request, mqtt_broker)

def test_session_label():
    from pytest_edgesim.docker.labels import session_id
    print(f"SESSION {session_id()}")
"""


def test_brokers_are_shared_per_session_and_leave_nothing_labelled(
    pytester: pytest.Pytester, docker_client: docker.DockerClient
) -> None:
    pytester.makefile(".conf", strict="allow_anonymous true\nmax_queued_messages 1\n")
    pytester.makepyfile(SHARED)

    result = pytester.runpytest_subprocess("-s", "-p", "no:randomly", "--edgesim-docker=require")

    result.assert_outcomes(passed=5)
    output = "\n".join(result.outlines)
    containers = dict(re.findall(r"BROKER (\S+) (\w+)", output))
    assert set(containers) == {
        "test_one[bookworm]", "test_one[trixie]", "test_two[trixie]", "test_three[trixie-strict]"
    }  # fmt: skip
    # the same broker is one container; another release or configuration is another
    assert containers["test_one[trixie]"] == containers["test_two[trixie]"]
    assert len(set(containers.values())) == 3
    session = re.findall(r"SESSION (\S+)", output)[0]
    label = {"label": f"{SESSION_LABEL}={session}"}
    assert docker_client.api.containers(all=True, filters=label) == []
    assert docker_client.api.networks(filters=label) == []


def test_a_scenario_names_its_broker_for_live_runs(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makefile(".conf", production="allow_anonymous true\n")
    pytester.makefile(
        ".yaml",
        live=textwrap.dedent(
            """
            edgesim: 1
            duration: 2s
            broker:
              implementation: docker
              docker: {release: trixie}
              config: production.conf
            devices:
              - {name: temp, count: 2, topic: "s/{name}", qos: 1, publish: {period: 1s}}
            gateways:
              - name: gateway
                implementation: docker
                subscribe: [{filter: "s/+", qos: 1}]
                forward: {qos: 1}
            """
        ),
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=1)
        @pytest.mark.edgesim(scenario="live.yaml", time_scale=2)
        def test_live(edge_scenario):
            result = edge_scenario.run()
            print("VERSION", result.nodes["broker"]["broker_version"])
            print("CONFIG", result.nodes["broker"]["broker_config"])
        """
    )
    report = tmp_path / "report.json"

    result = pytester.runpytest_subprocess("-s", f"--edgesim-report={report}")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*VERSION mosquitto 2.0.21 (trixie)", "CONFIG */production.conf (edgesim added: *1883)"]
    )
    runs = json.loads(report.read_text())["tests"][0]["runs"]
    assert runs[0]["broker_version"] == "mosquitto 2.0.21 (trixie)"


def test_the_users_build_context_and_image(
    start, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    context = tmp_path / "edge-broker"
    context.mkdir()
    (context / "edge.conf").write_text("listener 1883\nallow_anonymous true\n")
    (context / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY edge.conf /etc/mosquitto/edge.conf\n"
        'ENTRYPOINT []\nCMD ["mosquitto", "-c", "/etc/mosquitto/edge.conf"]\n'
    )

    built = start(BrokerChoice(build=context))

    assert re.fullmatch(rf"mosquitto 2\.\d+\.\d+ \(build {context}\)", built.version or "")
    assert built.configuration == "the image's own configuration"
    assert queued_after_offline(built, 2) == [b"0", b"1"]
    image = docker_client.containers.get(built.container_id).image
    reference = f"edgesim-test/users-broker:{uuid.uuid4().hex[:8]}"
    image.tag(reference)
    try:
        tagged = start(BrokerChoice(image=reference))
        assert tagged.version == built.version.replace(f"build {context}", f"image {reference}")
    finally:
        docker_client.images.remove(reference)


def test_a_broker_that_refuses_edgesim_is_a_set_up_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".conf", locked="allow_anonymous false\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(broker=[{"release": "trixie", "config": "locked.conf"}])
        def test_it(mqtt_broker):
            pass
        """
    )

    result = pytester.runpytest_subprocess("--edgesim-docker=require")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the broker trixie (*locked.conf (edgesim added: listener 1883)) did not start: "
            "broker edgesim-* refused the readiness CONNECT (CONNACK code 5): its configuration "
            "must let anonymous clients connect on the listener edgesim publishes (port 1883)",
        ]
    )
    assert "Traceback" not in result.stdout.str()
