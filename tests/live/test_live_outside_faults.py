"""A live run during which the broker went away by no fault of the run's (restarted from
outside, as a CI job or a colleague might) never reads as a clean run: its result, and so
every verdict and report made of it, names the loss and counts the connections lost.
Real engine, real broker (the plugin's session ``mqtt_broker``, restarted here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgesim.core.scenario import Scenario
from pytest_edgesim.live import LiveRun
from pytest_edgesim.pytest_plugin.docker_fixtures import MqttBroker

BASIC = Path(__file__).parents[2] / "scenarios" / "basic.yaml"


def _run(mqtt_broker: MqttBroker, name: str, **options: object) -> LiveRun:
    if mqtt_broker.container is None:
        pytest.fail("these tests restart the broker container (--edgesim-broker=docker)")
    scenario = Scenario.from_yaml(BASIC).with_overrides({"duration": "4s"})
    return LiveRun(
        scenario,
        5,
        broker=mqtt_broker.endpoint,
        time_scale=2.0,
        topic_prefix=mqtt_broker.new_prefix(name),
        **options,  # type: ignore[arg-type]
    )


def test_a_broker_restarted_from_outside_is_named_in_the_result(mqtt_broker: MqttBroker) -> None:
    with _run(mqtt_broker, "outside") as run:
        run.run("1s")
        assert run.faults == ()
        assert mqtt_broker.container is not None
        mqtt_broker.container.restart()  # not through the run: it cannot know, only see
        result = run.run()
    (lost,) = result.faults
    assert (lost.action, lost.target) == ("lost", "broker")
    assert "by no fault of the run's" in lost.detail
    count = int(lost.detail.split(" connection(s)")[0])
    assert count >= 3  # the publisher, the cloud's subscriber and the tap, each at least once
    assert "lost broker" in result.describe_faults()
    assert run.faults == result.faults


def test_the_run_s_own_broker_restart_is_not_counted_twice(mqtt_broker: MqttBroker) -> None:
    with _run(mqtt_broker, "own", broker_control=mqtt_broker.container) as run:
        run.run("1s")
        run.restart("broker")
        result = run.run()
    assert [fault.action for fault in result.faults] == ["restart"]


VERDICT_TEST = """
import pytest

@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim(
    "basic.yaml",
    time_scale=2,
    duration="4s",
    overrides={"gateways.0.implementation": "docker"},  # a live run
)
def test_nothing_unusual(edge_scenario, mqtt_broker):
    edge_scenario.run("1s")
    mqtt_broker.container.restart()  # behind the run's back
    edge_scenario.run()
    assert False, "on purpose"
"""


def test_a_verdict_names_a_broker_lost_from_outside(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", basic=BASIC.read_text())
    pytester.makepyfile(VERDICT_TEST)
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--edgesim-broker=docker", f"--edgesim-report={report}", "-p", "no:randomly"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_nothing_unusual: 0/1 trials passed*faults applied in 1 of 1 trials "
            "(first: t=*s lost broker (* connection(s) of the run's clients (*) lost, by no "
            "fault of the run's*"
        ]
    )
    import json

    (test,) = json.loads(report.read_text())["tests"]
    assert test["verdict"]["fault_trials"] == 1
