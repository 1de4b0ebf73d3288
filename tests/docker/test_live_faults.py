"""``edge_scenario``'s faults on real containers: a live run restarts, kills, pauses and cuts
off its (pooled) gateway container and restarts the session's broker container.

One pytest session in a subprocess runs them all (they share the broker and the pooled
gateway, as a user's statistical tests do). The scenario: two sensors publish a reading
every 100 ms at QoS 1; the gateway forwards each one to the cloud.
"""

from __future__ import annotations

import json

import pytest

SCENARIO = """
edgesim: 1
name: live-faults
seed: 3
duration: 6s
devices:
  - name: s
    count: 2
    topic: s/{name}
    qos: 1
    publish: {mode: periodic, period: 100ms}
    value: {model: constant, value: 1.0}
gateways:
  - name: gw
    implementation: docker
    subscribe: [{filter: "s/#", qos: 1}]
    forward: {to: cloud, topic: "up/{gateway}", qos: 1}
network:
  default: {latency: 1ms}
"""

TESTS = """
import pytest

LIVE = [pytest.mark.statistical(trials=1), pytest.mark.edgesim("faults.yaml", time_scale=2)]
SECOND = 1_000_000


def forwarded_between(result, start_s, end_s):
    return [a for a in result.arrivals if start_s * SECOND <= a.created_at < end_s * SECOND]


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("faults.yaml", time_scale=2)
def test_restart(edge_scenario):
    edge_scenario.run("2s")
    container = edge_scenario.simulation.gateway("gw").container_id
    applied = edge_scenario.restart("gw")
    result = edge_scenario.run()
    assert str(applied).startswith("t=2s restart gw (received ")  # its counters at SIGTERM
    assert [fault.action for fault in result.faults] == ["restart"]
    assert result.nodes["gw"]["restarts"] == 1
    # the same (pooled) container, forwarding again after its restart
    assert edge_scenario.simulation.gateway("gw").container_id == container
    assert forwarded_between(result, 3, 6), "nothing forwarded after the restart"


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("faults.yaml", time_scale=2)
def test_kill_and_start(edge_scenario):
    edge_scenario.run("1s")
    edge_scenario.kill("gw")
    down = edge_scenario.run("3s")
    sent = down.metrics.topic("s/s-0").sent
    assert down.nodes["gw"]["state"] == "stopped"
    edge_scenario.start("gw")
    result = edge_scenario.run()
    # what the sensors published while it was down never reached the cloud (2 s, 20 a second)
    published = result.metrics.topic("s/s-0").sent + result.metrics.topic("s/s-1").sent
    assert len(result.arrivals) <= published - 30, (len(result.arrivals), published)
    assert not forwarded_between(result, 1.2, 2.8), "forwarded while killed"
    assert forwarded_between(result, 4, 6), "nothing forwarded after the start"
    assert sent > 0


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("faults.yaml", time_scale=2)
def test_pause_and_resume(edge_scenario):
    from pytest_edgesim.docker import faults

    pooled = edge_scenario.simulation.gateway("gw")
    with faults.paused(pooled):  # the functions take a pooled gateway too
        assert pooled.container.state()["Status"] == "paused"
    edge_scenario.run("1s")
    edge_scenario.pause("gw")
    edge_scenario.run("3s")
    edge_scenario.resume("gw")
    result = edge_scenario.run()
    # QoS 1 readings it could not take while frozen were held by the broker and TCP, and
    # taken on resume: (nearly) every reading reached the cloud, the paused ones late
    published = result.metrics.topic("s/s-0").sent + result.metrics.topic("s/s-1").sent
    assert len(result.arrivals) >= published - 10, (len(result.arrivals), published)
    assert not [a for a in result.arrivals if 1.2 * SECOND < a.time < 2.8 * SECOND], "frozen?"
    assert [fault.action for fault in result.faults] == ["pause", "resume"]


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("faults.yaml", time_scale=2)
def test_disconnect_for_a_while(edge_scenario):
    edge_scenario.run("1s")
    edge_scenario.disconnect("gw", duration="2s")
    result = edge_scenario.run()
    assert [fault.action for fault in result.faults] == ["disconnect", "reconnect"]
    assert forwarded_between(result, 4, 6), "nothing forwarded after reconnecting"


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("faults.yaml", time_scale=2)
def test_broker_restart(edge_scenario):
    edge_scenario.run("2s")
    applied = edge_scenario.restart("broker")
    result = edge_scenario.run()
    assert applied.action == "restart"
    assert result.nodes["broker"]["restarts"] == 1
    assert forwarded_between(result, 4, 6), "nothing forwarded after the broker restart"


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("faults.yaml", time_scale=2, duration="2s")
def test_stop_says_what_the_gateway_had_done_and_a_killed_broker_comes_back(edge_scenario):
    edge_scenario.run("1s")
    stopped = edge_scenario.stop("gw")
    assert stopped.detail.startswith("received "), stopped.detail  # its own counters
    edge_scenario.kill("broker")  # left killed: the run brings it back when it closes
    edge_scenario.run()


@pytest.mark.statistical(trials=2)
@pytest.mark.edgesim("faults.yaml", time_scale=2, duration="2s")
def test_a_verdict_names_the_faults(edge_scenario):
    edge_scenario.run("1s")
    edge_scenario.restart("gw")
    edge_scenario.run()
    assert False, "on purpose"
"""


def test_faults_on_a_live_run_drive_the_containers(
    pytester: pytest.Pytester, docker_client: object
) -> None:
    pytester.makefile(".yaml", faults=SCENARIO)
    pytester.makepyfile(TESTS)
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--edgesim-docker=require", f"--edgesim-report={report}", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_a_verdict_names_the_faults: 0/2 trials passed*faults applied in 2 of 2 trials "
            "(first: t=1s restart gw (received *)*"
        ]
    )
    tests = {
        test["nodeid"].split("::")[-1]: test for test in json.loads(report.read_text())["tests"]
    }
    assert tests["test_restart"]["verdict"]["fault_trials"] == 1
