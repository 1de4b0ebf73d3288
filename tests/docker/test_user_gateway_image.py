"""A user's gateway image as a black box, on the real engine and a real Mosquitto: the
placeholders it is given, each wait strategy (ready, and never ready: a set-up error with
the log tail), trials kept apart by prefix and by restart, and a program that does not
answer the control protocol, waited on once in a session."""

from __future__ import annotations

import json
import queue
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_edgesim.docker.readiness import GatewayNotReadyError, filter_covers
from pytest_edgesim.errors import SetupError
from pytest_edgesim.live.mqtt import BrokerEndpoint
from pytest_edgesim.live.pool import FIRST_ANSWER_TIMEOUT_S, GatewayPool, NoControlAnswer
from pytest_edgesim.pytest_plugin.docker_fixtures import MqttBroker

pytest_plugins = ["pytester"]

PROGRAM = Path(__file__).resolve().parents[2] / "example_tests" / "blackbox_gateway"
AVERAGER = ["python3", "/opt/moving-average/moving_average.py"]
#: a program that prints what it was given, then waits
SHOW = textwrap.dedent(
    """\
    import json, os, sys, time
    keys = ["EDGESIM_BROKER_HOST", "EDGESIM_BROKER_PORT", "EDGESIM_TOPIC_PREFIX",
            "EDGESIM_GATEWAY_NAME", "EDGESIM_CLIENT_ID", "EDGESIM_CONTROL_TOPIC", "MINE", "JSON"]
    print("GIVEN " + json.dumps([sys.argv[1:], {k: os.environ.get(k) for k in keys}]))
    print("WAITING", flush=True)
    time.sleep(600)
    """
)


def _spec(docker: dict[str, Any], name: str = "avg") -> dict[str, Any]:
    return {
        "name": name,
        "implementation": "docker",
        "subscribe": "sensors/+/temperature",
        "forward": {"topic": "averages"},
        "docker": {"build": str(PROGRAM), **docker},
    }


def _averager(*options: str) -> list[str]:
    return [
        *AVERAGER,
        "--host={broker_host}",
        "--port={broker_port}",
        "--client-id={client_id}",
        "--subscribe={topic_prefix}sensors/+/temperature",
        "--publish={topic_prefix}averages",
        *options,
    ]


# --- what the program is given ------------------------------------------------------------
def test_placeholders_fill_the_command_and_the_environment(
    mqtt_broker: MqttBroker, docker_gateway: Any
) -> None:
    gateway = docker_gateway(
        _spec(
            {
                "command": ["python3", "-c", SHOW, "{broker_host}:{broker_port}", "{name}"],
                "environment": {"MINE": "{topic_prefix}in", "JSON": '{"a": [1]} {client_id}'},
                "ready": {"log": "^WAITING$"},
            },
            name="shown",
        )
    )
    line = next(line for line in gateway.logs("all") if line.startswith("GIVEN "))
    args, env = json.loads(line.removeprefix("GIVEN "))
    _network, host, port = mqtt_broker.endpoint.for_container()
    prefix = mqtt_broker.topic_prefix
    assert args == [f"{host}:{port}", "shown"]
    assert env["EDGESIM_BROKER_HOST"] == host and env["EDGESIM_BROKER_PORT"] == str(port)
    assert env["EDGESIM_TOPIC_PREFIX"] == prefix and env["MINE"] == prefix + "in"
    assert env["EDGESIM_GATEWAY_NAME"] == "shown"
    client_id = env["EDGESIM_CLIENT_ID"]
    assert client_id.startswith("shown-") and env["JSON"] == '{"a": [1]} ' + client_id
    assert env["EDGESIM_CONTROL_TOPIC"] == ""  # only a pooled gateway has one


def test_each_container_has_its_own_client_id(docker_gateway: Any) -> None:
    spec = _spec({"command": ["python3", "-c", SHOW], "ready": {"log": "WAITING"}})
    ids = set()
    for _ in range(2):
        line = next(line for line in docker_gateway(spec).logs("all") if "GIVEN" in line)
        ids.add(json.loads(line.removeprefix("GIVEN "))[1]["EDGESIM_CLIENT_ID"])
    assert len(ids) == 2


# --- wait strategies ------------------------------------------------------------------------
def test_subscribed_means_a_reading_published_at_once_is_received(
    mqtt_broker: MqttBroker, docker_gateway: Any
) -> None:
    """The default for a user's program: ready once the broker logged its subscription. A
    reading published the moment the container is ready is averaged, never lost."""
    prefix = mqtt_broker.topic_prefix
    averages: queue.Queue[bytes] = queue.Queue()
    mqtt_broker.client([(prefix + "averages", 0)], lambda _t, payload: averages.put(payload))
    docker_gateway(_spec({"command": _averager()}))  # no ready: subscribed by default
    mqtt_broker.client(role="pub").publish(prefix + "sensors/t1/temperature", b"20.5", qos=1)
    average = json.loads(averages.get(timeout=10))
    assert average == {"sensor": prefix + "sensors/t1/temperature", "average": 20.5, "readings": 1}


def test_an_image_already_on_the_engine_runs_the_same_way(
    mqtt_broker: MqttBroker, docker_gateway: Any, docker_client: Any
) -> None:
    from pytest_edgesim.docker.images import ensure_image, user_image_spec
    from pytest_edgesim.docker.lockstep_gateway import BUILD_BASE

    image = ensure_image(user_image_spec(PROGRAM, BUILD_BASE), docker_client)
    prefix = mqtt_broker.topic_prefix
    averages: queue.Queue[bytes] = queue.Queue()
    mqtt_broker.client([(prefix + "averages", 0)], lambda _t, payload: averages.put(payload))
    spec = _spec({"command": _averager("--window=2")})
    spec["docker"] = {"image": image, "command": spec["docker"]["command"]}
    docker_gateway(spec)
    publisher = mqtt_broker.client(role="pub")
    for value in (b"1", b"2", b"4"):
        publisher.publish(prefix + "sensors/t1/temperature", value, qos=1)
    got = [json.loads(averages.get(timeout=10))["average"] for _ in range(3)]
    assert got == [1.0, 1.5, 3.0]


@pytest.mark.parametrize(
    "command, ready",
    [
        (["python3", "-m", "http.server", "8321"], {"port": 8321}),
        (
            ["sh", "-c", "sleep 0.3; touch /tmp/up; exec sleep 600"],
            {"command": ["test", "-e", "/tmp/up"]},
        ),
        (
            ["sh", "-c", "echo starting; sleep 0.3; echo 'up and running'; exec sleep 600"],
            {"log": "up and r.nning"},
        ),
    ],
    ids=["port", "command", "log"],
)
def test_a_wait_strategy_waits_for_its_condition(
    docker_gateway: Any, command: list[str], ready: dict[str, Any]
) -> None:
    started = time.monotonic()
    gateway = docker_gateway(_spec({"command": command, "ready": {**ready, "timeout": "20s"}}))
    assert gateway.alive()
    if "command" in ready or "log" in ready:
        assert time.monotonic() - started >= 0.3  # not before the condition holds


@pytest.mark.parametrize(
    "ready, described",
    [
        ("subscribed", "ready: subscribed (the broker logging a subscription to"),
        ({"log": "never"}, "ready: {log: 'never'}"),
        ({"port": 8322}, "ready: {port: 8322}"),
        ({"command": ["false"]}, "ready: {command: ['false']}"),
    ],
    ids=["subscribed", "log", "port", "command"],
)
def test_never_ready_is_a_setup_error_naming_the_strategy_with_the_log_tail(
    docker_gateway: Any, ready: Any, described: str
) -> None:
    command = ["sh", "-c", "echo 'no broker for me'; exec sleep 600"]
    if isinstance(ready, dict):
        ready = {**ready, "timeout": "1s"}
    else:
        ready = {"subscribed": True, "timeout": "1s"}
    with pytest.raises(GatewayNotReadyError) as raised:
        docker_gateway(_spec({"command": command, "ready": ready}, name="mute"))
    message = str(raised.value)
    assert isinstance(raised.value, SetupError)
    assert "gateway 'mute'" in message and "was not ready within 1 s" in message
    assert described in message
    assert raised.value.log_tail == ["no broker for me"]


def test_a_program_that_exits_is_not_waited_for(docker_gateway: Any) -> None:
    command = ["sh", "-c", "echo 'cannot parse --hots'; exit 3"]
    started = time.monotonic()
    with pytest.raises(GatewayNotReadyError) as raised:
        docker_gateway(_spec({"command": command, "ready": {"timeout": "30s"}}))
    assert time.monotonic() - started < 10
    assert "exited with exit code 3 before it was ready" in str(raised.value)
    assert raised.value.log_tail == ["cannot parse --hots"]


def test_a_subscription_covers_the_filters_it_matches() -> None:
    assert filter_covers("p/#", "p/sensors/+/temperature")
    assert filter_covers("p/sensors/+/+", "p/sensors/+/temperature")
    assert filter_covers("p/sensors/+/temperature", "p/sensors/+/temperature")
    assert not filter_covers("p/sensors/t1/temperature", "p/sensors/+/temperature")
    assert not filter_covers("p/sensors/+", "p/sensors/+/temperature")
    assert not filter_covers("q/#", "p/sensors/+/temperature")


# --- the control protocol, asked once --------------------------------------------------------
class _Silent:
    """A container whose program never answers the control protocol."""

    def __init__(self) -> None:
        self.name = self.container_id = "silent"
        self.restarts = self.removals = 0

    def logs(self, tail: Any = 40) -> list[str]:
        return []

    def restart(self) -> None:
        self.restarts += 1

    def remove(self) -> None:
        self.removals += 1


def test_a_program_that_does_not_answer_is_waited_on_once(mqtt_broker: MqttBroker) -> None:
    pool = GatewayPool(BrokerEndpoint(mqtt_broker.host, mqtt_broker.port))
    started: list[_Silent] = []

    def start(_config: Any) -> _Silent:
        started.append(_Silent())
        return started[-1]

    config = {"name": "g", "topic_prefix": ""}
    try:
        first = pool.acquire(config, "image", start, program="silent", isolation="restart")
        with pytest.raises(NoControlAnswer):
            first.report()  # asked at once: the only wait, at most FIRST_ANSWER_TIMEOUT_S
        assert pool.answers_control("silent") is False and pool.unanswered_waits == 1
        first.stop()  # not asked again: parked, and restarted in the background
        first.remove()
        pool.note_activity()  # the next run: nothing else used the broker in between
        second = pool.acquire(config, "image", start, program="silent", isolation="restart")
        assert second is first and started[0].restarts == 1
        with pytest.raises(NoControlAnswer):
            second.report()
        second.stop()
        second.remove()
        pool.note_activity()  # another test used the broker: the early restart does not count
        pool.note_activity()
        third = pool.acquire(config, "image", start, program="silent", isolation="restart")
        assert third is first and started[0].restarts == 3
        third.stop()
        assert pool.unanswered_waits == 1 and len(started) == 1
        # a new container of the same program is not asked either
        prefixed = pool.acquire(config, "image", start, program="silent", isolation="prefix")
        prefixed.stop()
        prefixed.remove()  # its prefix cannot change: removed (in the background), not kept
        assert pool.unanswered_waits == 1 and len(started) == 2
    finally:
        pool.close()
    assert [container.removals for container in started] == [1, 1]
    assert FIRST_ANSWER_TIMEOUT_S < 10


# --- trials kept apart, through the plugin ----------------------------------------------------
SCENARIO = """\
edgesim: 1
duration: 3s
devices:
  - name: temp
    count: 2
    topic: sensors/{{name}}/temperature
    publish: {{period: 200ms, stop: 2s}}
    value: 21.0
gateways:
  - name: avg
    implementation: docker
    subscribe: sensors/+/temperature
    forward: {{topic: averages}}
    docker:
      build: {program}
      command: {command}
{extra}
network:
  default: {{latency: 1ms}}
"""

CHECK_FRESH = """\
import pytest

def check_fresh(result):
    # a fresh program starts each sensor's window at one reading: state left over from an
    # earlier trial (or a second program on the same topics) would show here
    by_sensor = {}
    for arrival in result.arrivals:
        by_sensor.setdefault(arrival.payload["sensor"], []).append(arrival.payload["readings"])
    assert len(by_sensor) == 2, by_sensor
    for counts in by_sensor.values():
        assert counts == [min(k, 5) for k in range(1, len(counts) + 1)], counts
    assert len(result.arrivals) == result.metrics.node("avg").delivered

"""

TRIALS = (
    CHECK_FRESH
    + """
@pytest.mark.statistical(trials=3)
@pytest.mark.edgesim(scenario="prefix.yaml", time_scale=3)
def test_prefix(edge_scenario):
    check_fresh(edge_scenario.run())

@pytest.mark.statistical(trials=3)
@pytest.mark.edgesim(scenario="restart.yaml", time_scale=3)
def test_restart(edge_scenario):
    check_fresh(edge_scenario.run())

@pytest.mark.statistical(trials=5)
@pytest.mark.edgesim(scenario="mute.yaml", time_scale=3)
def test_never_ready(edge_scenario):
    edge_scenario.run()

def test_the_pool_asked_each_program_once(mqtt_broker):
    pool = mqtt_broker.gateway_pool
    print("UNANSWERED_WAITS", pool.unanswered_waits)
    print("ANSWERS", sorted(pool._answers.values()))
"""
)


def _yaml(command: list[str], extra: str = "") -> str:
    return SCENARIO.format(program=PROGRAM, command=json.dumps(command), extra=extra)


def test_trials_are_kept_apart_by_prefix_and_by_restart(pytester: pytest.Pytester) -> None:
    """Three trials each: every trial's averages start afresh (no state, no messages from
    another trial); a program that never becomes ready is one ERROR, not five failed trials;
    the pool waited on an unanswered control request at most once per program."""
    unprefixed = [
        *AVERAGER,
        "--host={broker_host}",
        "--port={broker_port}",
        "--client-id={client_id}",
        "--subscribe=sensors/+/temperature",
        "--publish=averages",
    ]
    pytester.makefile(
        ".yaml",
        prefix=_yaml(_averager()),
        restart=_yaml(unprefixed),  # no {topic_prefix}: restart is the default
        mute=_yaml(
            ["sh", "-c", "echo 'listening nowhere'; exec sleep 600"],
            "      ready: {log: 'listening on', timeout: 1s}",
        ),
    )
    pytester.makepyfile(TRIALS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-s", "-rE")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_never_ready*gateway 'avg' (container *) was not ready within 1 s; "
            "waited for ready: {log: 'listening on'}*",
            "*listening nowhere*",
        ]
    )
    waits = next(line for line in result.outlines if "UNANSWERED_WAITS" in line)
    assert int(waits.split()[-1]) <= 2  # two programs (one per isolation), each waited on once
    assert "ANSWERS [False, False]" in result.stdout.str()


def test_kept_containers_on_their_own_topics_do_not_hear_the_next_trial(
    pytester: pytest.Pytester, docker_client: Any
) -> None:
    """--edgesim-keep-containers with isolation restart: each trial keeps its container, and
    the one kept before is stopped (not removed), so the trials still see only their own."""
    unprefixed = [
        *AVERAGER,
        "--host={broker_host}",
        "--port={broker_port}",
        "--client-id={client_id}",
        "--subscribe=sensors/+/temperature",
        "--publish=averages",
    ]
    pytester.makefile(".yaml", restart=_yaml(unprefixed))
    pytester.makepyfile(CHECK_FRESH + KEPT_TRIALS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--edgesim-keep-containers")
    (command,) = [
        line.split("remove them: ")[-1] for line in result.outlines if "remove them:" in line
    ]
    containers, _, networks = command.removeprefix("docker rm -f ").partition(
        " && docker network rm "
    )
    api = docker_client.api
    try:
        result.assert_outcomes(passed=1)
        gateways = [name for name in containers.split() if "-gateway-" in name]
        states = sorted(api.inspect_container(name)["State"]["Status"] for name in gateways)
        assert states == ["exited", "exited", "running"]
    finally:
        for name in containers.split():
            api.remove_container(name, force=True)
        for name in networks.split():
            api.remove_network(name)


KEPT_TRIALS = """
@pytest.mark.statistical(trials=3)
@pytest.mark.edgesim(scenario="restart.yaml", time_scale=3)
def test_restart(edge_scenario):
    check_fresh(edge_scenario.run())
"""
