"""The Docker-tier fixtures, run the way a user runs them: pytester, real engine, real broker.

The inner runs are subprocesses: an in-process run would share this process's edgesim
session id, and its end (``pytest_unconfigure``) would remove this session's broker.
"""

from __future__ import annotations

import pytest

from pytest_edgesim.docker.labels import SESSION_LABEL
from pytest_edgesim.live.process_broker import mosquitto_binary
from pytest_edgesim.pytest_plugin.docker_fixtures import MqttBroker

pytest_plugins = ["pytester"]

ROUNDTRIP = """
import threading

def test_roundtrip(mqtt_broker):
    topic = mqtt_broker.topic_prefix + "hello"
    assert mqtt_broker.topic_prefix.startswith("edgesim/")
    arrived = threading.Event()
    got = []
    def on_message(topic, payload):
        got.append((topic, payload))
        arrived.set()
    mqtt_broker.client([(topic, 1)], on_message, role="sub")
    mqtt_broker.client(role="pub").publish(topic, b"edge", qos=1)
    assert arrived.wait(10)
    assert got == [(topic, b"edge")]
    print("BACKEND", mqtt_broker.backend, mqtt_broker.container is not None)

def test_prefixes_differ(mqtt_broker):
    print("PREFIX", mqtt_broker.topic_prefix)

def test_prefixes_differ_too(mqtt_broker):
    print("PREFIX", mqtt_broker.topic_prefix)
"""


def _prefixes(result: pytest.RunResult) -> list[str]:
    return [line.split()[-1] for line in result.outlines if "PREFIX " in line]


@pytest.mark.parametrize("backend", ["docker", "process"])
def test_mqtt_broker_backends(
    pytester: pytest.Pytester, backend: str, docker_client: object
) -> None:
    if backend == "process" and mosquitto_binary() is None:
        pytest.skip("no mosquitto binary on this machine (apt-get install mosquitto)")
    pytester.makepyfile(ROUNDTRIP)
    result = pytester.runpytest_subprocess(f"--edgesim-broker={backend}", "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"*BACKEND {backend} {backend == 'docker'}"])
    prefixes = _prefixes(result)
    assert len(prefixes) == len(set(prefixes)) == 2


def test_mqtt_broker_external(pytester: pytest.Pytester, mqtt_broker: MqttBroker) -> None:
    """``external=HOST:PORT``: this session's broker is the inner session's external one."""
    pytester.makepyfile(ROUNDTRIP)
    result = pytester.runpytest_subprocess(
        f"--edgesim-broker=external={mqtt_broker.host}:{mqtt_broker.port}"
    )
    result.assert_outcomes(passed=3)


def test_a_bad_broker_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--edgesim-broker=rabbit")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edgesim-broker: expected one of docker, process*"])


DOCKER_ITEM = """
import pytest

@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim(duration="2s", gateway="docker", time_scale=4)
def test_gateway_container(edge_scenario):
    result = edge_scenario.run()
    assert result.metrics.node("gateway").delivered > 0
"""

COUNTERS_ITEM = """

@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim(duration="2s", gateway="docker", time_scale=4)
def test_counters(edge_scenario):
    result = edge_scenario.run()
    # the real gateway's own counters, read while its (reused) container goes on
    gateway = result.nodes["gateway"]
    assert gateway["runs_in"].startswith("container ")
    counters = gateway["gateway_counters"]
    assert counters is not None and counters["received"] > 0, gateway
    assert counters["processed"] <= counters["received"]  # (some may still be queued)
"""


def test_require_stops_a_docker_item_when_the_engine_is_gone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/edgesim-dead.sock")
    pytester.makepyfile(DOCKER_ITEM)
    result = pytester.runpytest_subprocess("--edgesim-docker=require")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*implementation: docker (gateway gateway) needs a Docker engine:*"
            "--edgesim-docker=require*"
        ]
    )
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*needs a Docker engine*"])


def test_a_docker_item_runs_live_and_a_failure_shows_the_container_logs(
    pytester: pytest.Pytester, docker_client: object
) -> None:
    pytester.makepyfile(
        DOCKER_ITEM
        + COUNTERS_ITEM
        + """

@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim(duration="2s", gateway="docker", time_scale=4)
def test_fails(edge_scenario):
    edge_scenario.run()
    assert False, "on purpose"
"""
    )
    result = pytester.runpytest_subprocess("--edgesim-docker=require")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*edgesim logs: gateway gateway (*-gateway-*)*", "*gateway gateway ready*"]
    )


def test_docker_gateway_fixture(pytester: pytest.Pytester, docker_client: object) -> None:
    pytester.makepyfile(
        """
        import json, threading

        def test_forwarding(mqtt_broker, docker_gateway):
            prefix = mqtt_broker.topic_prefix
            gateway = docker_gateway(
                {"name": "gw", "subscribe": "in/#", "forward": {"topic": "out", "qos": 1}}
            )
            got = threading.Event()
            mqtt_broker.client([(prefix + "out", 1)], lambda t, p: got.set())
            reading = {"value": 1.5, "origin": "s", "seq": 1, "created_at_us": 0}
            mqtt_broker.client().publish(prefix + "in/s", json.dumps(reading), qos=1)
            assert got.wait(10)
            assert gateway.stop() == {
                "received": 1, "processed": 1, "forwarded": 1, "dropped_overflow": 0,
                "rejected": 0,
            }
            print("CONTAINER", gateway.container_id)
        """
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1)
    container_id = next(line.split()[-1] for line in result.outlines if "CONTAINER" in line)
    client = docker_client
    assert not client.api.containers(all=True, filters={"id": container_id})  # type: ignore[attr-defined]
    labelled = client.api.containers(all=True, filters={"label": SESSION_LABEL})  # type: ignore[attr-defined]
    assert all(summary["Id"] != container_id for summary in labelled)


KEPT_ITEMS = (
    DOCKER_ITEM
    + """

@pytest.mark.edgesim(duration="2s", gateway="docker")
def test_lockstep_node(edge_scenario):
    edge_scenario.run()
"""
)


def test_keep_containers_leaves_them_and_says_how_to_remove_them(
    pytester: pytest.Pytester, docker_client: object
) -> None:
    """The list comes at the end of the run (no -s needed), and no session reaps them."""
    from pytest_edgesim.docker.cleanup import reap_stale

    pytester.makepyfile(KEPT_ITEMS)
    result = pytester.runpytest_subprocess("--edgesim-keep-containers")
    (command,) = [
        line.split("remove them: ")[-1] for line in result.outlines if "remove them:" in line
    ]
    containers, _, networks = command.removeprefix("docker rm -f ").partition(
        " && docker network rm "
    )
    api = docker_client.api  # type: ignore[attr-defined]
    try:
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(
            ["*= edgesim: kept containers =*", "--edgesim-keep-containers: left running*"]
        )
        roles = sorted(name.split("-")[2] for name in containers.split())
        assert roles == ["broker", "gateway", "lockstep"], command
        assert len(networks.split()) == 1
        # the inner session is over: the next session's reaping must leave them
        reap_stale(docker_client)  # type: ignore[arg-type]
        states = [api.inspect_container(name)["State"]["Status"] for name in containers.split()]
        assert states == ["running"] * 3
    finally:
        for name in containers.split():
            api.remove_container(name, force=True)
        for name in networks.split():
            api.remove_network(name)


CROSS_TALK = """
import threading
import pytest

@pytest.mark.parametrize("n", range(6))
def test_only_my_messages(mqtt_broker, n, request):
    mine = request.node.nodeid.encode()
    got = []
    done = threading.Event()
    def on_message(topic, payload):
        got.append(payload)
        if len(got) >= 20:
            done.set()
    mqtt_broker.client([(mqtt_broker.topic_prefix + "#", 1)], on_message)
    publisher = mqtt_broker.client()
    for index in range(20):
        publisher.publish(mqtt_broker.topic_prefix + f"t/{index}", mine, qos=1)
    assert done.wait(10)
    # the other tests publish the same topics under their own prefixes at the same time
    publisher.publish(mqtt_broker.topic_prefix + "t/last", mine, qos=1).wait_for_publish(10)
    assert set(got) == {mine}
"""


def test_xdist_workers_sharing_one_broker_see_no_cross_talk(
    pytester: pytest.Pytester, mqtt_broker: MqttBroker
) -> None:
    """Two workers, one external broker (this session's): topic prefixes keep tests apart."""
    pytester.makepyfile(CROSS_TALK)
    result = pytester.runpytest_subprocess(
        "-n", "2", f"--edgesim-broker=external={mqtt_broker.host}:{mqtt_broker.port}"
    )
    result.assert_outcomes(passed=6)


def test_trials_reuse_one_gateway_container_reset_between_them(
    pytester: pytest.Pytester, docker_client: object
) -> None:
    pytester.makepyfile(
        """
        import pytest

        SEEN = []

        @pytest.mark.statistical(trials=3)
        @pytest.mark.edgesim(duration="3s", gateway="docker", time_scale=3)
        def test_trial(edge_scenario):
            result = edge_scenario.run()
            gateway = edge_scenario.simulation.gateway("gateway")
            counters = gateway.stop()  # this run's counters only: the pool reset them
            SEEN.append((gateway.name, counters["received"], result.metrics.node("gateway")))
            # at most 9 readings in 3 s (3 sensors): more means the last trial's were kept
            assert 0 < result.metrics.node("gateway").delivered <= counters["received"] <= 9

        def test_one_container():
            assert len(SEEN) == 3
            assert len({name for name, _, _ in SEEN}) == 1
        """
    )
    result = pytester.runpytest_subprocess("--edgesim-docker=require")
    result.assert_outcomes(passed=2)


def test_a_missing_gateway_image_is_an_error_of_the_test_not_a_verdict(
    pytester: pytest.Pytester, docker_client: object
) -> None:
    """``docker.mode: mqtt`` (the live run); the lockstep twin is in test_lockstep_docker."""
    missing = "edgesim-test.invalid/no-such-gateway:1"
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.statistical(trials=2)
        @pytest.mark.edgesim(
            duration="2s",
            gateway="docker",
            overrides={{"gateways.0.docker.image": {missing!r}}},
        )
        def test_gateway_image(edge_scenario):
            edge_scenario.run()
        """
    )
    result = pytester.runpytest_subprocess("--edgesim-docker=require", "--edgesim-summary")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at call of test_gateway_image*",
            f"*::test_gateway_image: gateway 'gateway': docker.image '{missing}' is not on the "
            "Docker engine (edgesim does not pull it)*",
            "*test_gateway_image: error in trial 1 of 2",
        ]
    )
    output = result.stdout.str()
    for needless in ("Traceback", "refuted", "replay", "docker.errors"):
        assert needless not in output
