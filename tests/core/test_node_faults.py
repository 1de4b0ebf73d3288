"""Restarts, crashes, pauses and disconnects in the models: what is lost, counted by cause,
in the trace (so the digest), replayed, and refused when impossible."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_edgesim import EdgeScenario, Scenario, Simulation, simulate
from pytest_edgesim.core.faults import AppliedFault
from pytest_edgesim.core.result import RunResult
from pytest_edgesim.errors import EdgesimError, FaultError, ScenarioError


def scenario(*, sensor_qos: int = 0, aggregate: dict[str, Any] | None = None) -> Scenario:
    """Two sensors publishing every second (at 0.5 s, 1.5 s...; 1 ms a hop, so a reading
    reaches the gateway 2 ms later), one gateway forwarding each reading (or aggregating),
    the cloud."""
    gateway: dict[str, Any] = {
        "name": "gw",
        "subscribe": [{"filter": "s/#", "qos": 1}],
        "forward": {"to": "cloud", "topic": "up/{gateway}", "qos": 1},
    }
    if aggregate is not None:
        gateway["aggregate"] = aggregate
    return Scenario.from_dict(
        {
            "edgesim": 1,
            "name": "faults",
            "seed": 7,
            "duration": "10s",
            "devices": [
                {
                    "name": "s",
                    "count": 2,
                    "topic": "s/{name}",
                    "qos": sensor_qos,
                    "publish": {"mode": "periodic", "period": "1s", "offset": "500ms"},
                    "value": {"model": "constant", "value": 1.0},
                }
            ],
            "gateways": [gateway],
            "network": {"model": "latency", "default": {"latency": "1ms"}},
        }
    )


def run_with(actions, *, trace: str = "full", **options: Any) -> tuple[EdgeScenario, RunResult]:
    edge = EdgeScenario(scenario(**options), trace=trace)
    actions(edge)
    return edge, edge.run()


def drops(result: RunResult, node: str) -> int:
    return result.metrics.node(node).dropped["node_down"]


def test_a_run_without_faults_is_clean_and_says_so():
    _, result = run_with(lambda edge: None)
    assert result.faults == ()
    assert result.describe_faults() == ""
    assert "restarts" not in result.nodes["gw"]
    assert result.metrics.totals.dropped["node_down"] == 0


def test_messages_reaching_a_stopped_gateway_are_node_down_drops_of_it_and_their_topic():
    def stop_for_three_seconds(edge: EdgeScenario) -> None:
        edge.run("2s")
        edge.stop("gw")
        edge.run("5s")
        edge.start("gw")

    edge, result = run_with(stop_for_three_seconds, sensor_qos=0)
    # The broker forgets the gateway's subscription at once: readings published while it is
    # down are not routed to it at all (clean session), so nothing reaches it to drop ...
    assert drops(result, "gw") == 0
    # ... and it gets the 2 readings of each second it was up: 0.5, 1.5 | 5.5 ... 9.5
    assert result.nodes["gw"]["received"] == 2 * (2 + 5)
    assert [str(fault) for fault in result.faults] == ["t=2s stop gw", "t=5s start gw"]
    assert result.nodes["gw"]["restarts"] == 1 and result.nodes["gw"]["state"] == "running"
    assert edge.replay_mismatch() is None


def test_what_is_on_the_way_to_a_gateway_when_it_stops_is_lost_in_flight():
    def stop_while_a_reading_is_on_its_link(edge: EdgeScenario) -> None:
        edge.run("2502ms")  # 2.5 s publish + 1 ms to the broker: on the broker->gw link now
        edge.kill("gw")

    _edge, result = run_with(stop_while_a_reading_is_on_its_link)
    assert drops(result, "gw") == 2
    assert result.metrics.topic("s/s-0").dropped["node_down"] == 1
    lost = [event for event in result.trace or () if event[1] == "drop" and event[2] == "gw"]
    assert [(event[0], event[6]) for event in lost] == [(2_502_000, "node_down")] * 2
    assert result.nodes["gw"]["state"] == "stopped"


def test_kill_loses_what_the_gateway_held_and_restart_starts_a_fresh_logic():
    aggregate = {"count": 4, "functions": ["count"]}

    def kill_with_three_readings_in_the_aggregate(edge: EdgeScenario) -> None:
        edge.run("2s")  # 4 readings: one aggregate forwarded; then 0 pending
        edge.run("2600ms")  # 2.5 s: 2 more readings pending in the aggregate
        edge.kill("gw")
        edge.start("gw")

    edge, result = run_with(kill_with_three_readings_in_the_aggregate, aggregate=aggregate)
    assert drops(result, "gw") == 2  # the two readings in the unfinished aggregate
    assert result.faults[0].detail == "lost 2 held message(s)"
    # a fresh aggregate after the restart: 3.5 ... 9.5 s is 14 readings, 3 aggregates of 4
    arrivals = [arrival.payload for arrival in result.arrivals]
    assert [payload["count"] for payload in arrivals] == [4, 4, 4, 4]
    assert result.nodes["gw"]["pending_in_aggregate"] == 2
    assert edge.replay_mismatch() is None


def test_a_clean_stop_finishes_what_is_due_and_a_kill_does_not():
    spec = scenario().to_dict()
    spec["gateways"][0]["processing_delay"] = {"distribution": "constant", "value": "400ms"}
    results = {}
    for action in ("stop", "kill"):
        edge = EdgeScenario(Scenario.from_dict(spec), trace="full")
        # two readings reach it at 1.502 s; the first is done at 1.902 s, which is due now
        edge.run("1902ms")
        getattr(edge, action)("gw")
        results[action] = edge.simulation.result()
    assert drops(results["stop"], "gw") == 1  # the second reading, still being processed
    assert results["stop"].nodes["gw"]["forwarded"] == 3  # the one due now went out
    assert results["kill"].nodes["gw"]["forwarded"] == 2
    assert drops(results["kill"], "gw") == 2


def test_a_paused_gateway_loses_nothing_and_processes_what_waited_on_resume():
    def pause_for_three_seconds(edge: EdgeScenario) -> None:
        edge.run("2s")
        edge.pause("gw")
        edge.run("5s")
        assert edge.node("gw").received == 4  # nothing taken while frozen
        edge.resume("gw")

    edge, result = run_with(pause_for_three_seconds)
    assert result.nodes["gw"]["received"] >= 20
    assert result.metrics.totals.dropped_total == 0
    resumed = [event for event in result.trace or () if event[1] == "forward"]
    # the six readings of 2.5, 3.5, 4.5 s (and the QoS 1 retransmissions) go out at 5 s
    assert sum(1 for event in resumed if event[0] == 5_000_000) >= 6
    assert edge.replay_mismatch() is None


def test_a_disconnected_gateway_reconnects_after_its_duration_and_subscribes_again():
    def disconnect_for_two_seconds(edge: EdgeScenario) -> None:
        edge.run("2s")
        edge.disconnect("gw", duration="2s")

    edge, result = run_with(disconnect_for_two_seconds)
    assert [str(fault) for fault in result.faults] == [
        "t=2s disconnect gw (reconnects at t=4s)",
        "t=4s reconnect gw",
    ]
    assert result.nodes["gw"]["received"] == 2 * (2 + 6)  # 2.5 and 3.5 s missed
    assert result.nodes["gw"]["restarts"] == 0
    assert edge.replay_mismatch() is None


def test_an_early_reconnect_cancels_the_timed_one():
    def reconnect_early(edge: EdgeScenario) -> None:
        edge.run("2s")
        edge.disconnect("gw", duration=5)
        edge.run("3s")
        edge.reconnect("gw")

    _, result = run_with(reconnect_early)
    assert [fault.action for fault in result.faults] == ["disconnect", "reconnect"]


def test_a_broker_restart_loses_what_reaches_it_while_down_and_qos1_publishers_retry():
    def restart_for_three_seconds(edge: EdgeScenario) -> None:
        edge.run("2s")
        edge.stop("broker")
        edge.run("5s")
        edge.start("broker")

    for qos in (0, 1):
        edge, result = run_with(restart_for_three_seconds, sensor_qos=qos)
        broker_drops = drops(result, "broker")
        assert broker_drops >= 6  # 2.5, 3.5 and 4.5 s (and retries of QoS 1)
        assert result.metrics.topic("s/s-0").dropped["node_down"] >= 3
        received = result.nodes["gw"]["received"]
        if qos == 0:
            assert received == 2 * (2 + 5)  # re-subscribed after the restart; three seconds lost
        else:
            assert received == 20  # the sensors' sessions retried until the broker was back
        assert result.faults[0].detail == "1 subscription(s) lost"
        assert edge.replay_mismatch() is None


def test_a_broker_restart_loses_retained_messages_and_in_flight_qos1():
    edge = EdgeScenario(scenario(), trace="full")
    edge.run("1s")
    edge.inject("s/retained", 5.0, qos=1, retain=True)
    edge.run("1001ms")
    assert edge.node("broker").describe()["retained"] == 1
    applied = edge.restart("broker")
    assert "1 retained message(s) lost" in applied.detail
    assert edge.node("broker").describe()["retained"] == 0


def test_a_paused_broker_holds_everything_and_routes_it_on_resume():
    def pause_broker(edge: EdgeScenario) -> None:
        edge.run("2s")
        edge.pause("broker")
        edge.run("5s")
        edge.resume("broker")

    _, result = run_with(pause_broker)
    assert result.metrics.totals.dropped_total == 0
    assert result.nodes["gw"]["received"] == 20


def test_faults_are_in_the_digest_which_is_stable():
    def restart(edge: EdgeScenario) -> None:
        edge.run("3s")
        edge.restart("gw")

    digests = {run_with(restart, trace="digest")[1].trace_digest for _ in range(3)}
    assert len(digests) == 1
    clean = run_with(lambda edge: None, trace="digest")[1].trace_digest
    assert clean not in digests


def test_a_scheduled_fault_happens_during_the_run_and_replays():
    def schedule(edge: EdgeScenario) -> None:
        edge.at("3s", "kill", "gw")
        edge.at("6s", "start", "gw")
        edge.at("7s", "disconnect", "gw", duration="1s")

    edge, result = run_with(schedule)
    assert [str(fault) for fault in result.faults] == [
        "t=3s kill gw",
        "t=6s start gw",
        "t=7s disconnect gw (reconnects at t=8s)",
        "t=8s reconnect gw",
    ]
    assert str(edge.actions[0]) == "t=0s at('3s', 'kill', 'gw')"
    assert edge.replay_mismatch() is None


def test_simulation_offers_the_same_faults():
    with Simulation(scenario()) as simulation:
        simulation.run("2s")
        applied = simulation.restart("gw")
        assert applied == AppliedFault(2_000_000, "restart", "gw", "")
        assert simulation.result().faults == (applied,)


@pytest.mark.parametrize(
    ("act", "message"),
    [
        (lambda e: e.start("gw"), "cannot start 'gw': it is running"),
        (lambda e: e.resume("gw"), "cannot resume 'gw': it is running"),
        (lambda e: e.restart("nope"), "cannot restart 'nope': no such node"),
        (lambda e: e.disconnect("broker"), "cannot disconnect 'broker': a python_model node"),
        (lambda e: e.kill("s-0"), "cannot kill 's-0': .* supports no faults"),
        (lambda e: (e.kill("gw"), e.pause("gw")), "cannot pause 'gw': it is stopped"),
        (lambda e: (e.disconnect("gw"), e.disconnect("gw")), "already disconnected"),
        (lambda e: e.reconnect("gw"), "cannot reconnect 'gw': it is connected"),
        (lambda e: e.disconnect("gw", duration="soon"), "disconnect duration"),
        (lambda e: e.disconnect("gw", duration=0), "a positive time"),
        (lambda e: e.at("1s", "explode", "gw"), "unknown fault 'explode'"),
        (lambda e: e.at("0.5s", "kill", "gw"), "virtual time is already 1s"),
        (lambda e: (e.stop("broker"), e.inject("s/x", 1)), "cannot inject straight into"),
    ],
)
def test_an_impossible_fault_is_a_clear_error_and_is_not_recorded(act, message):
    edge = EdgeScenario(scenario())
    edge.run("1s")
    with pytest.raises(FaultError, match=message):
        act(edge)
    assert issubclass(FaultError, EdgesimError)
    assert all(action.name not in ("explode",) for action in edge.actions)


def test_the_result_carries_the_faults_through_json():
    def restart(edge: EdgeScenario) -> None:
        edge.run("3s")
        edge.restart("gw")

    _, result = run_with(restart)
    back = RunResult.from_dict(result.to_dict())
    assert back.faults == result.faults
    assert result.to_dict()["faults"] == [
        {"time_s": 3.0, "action": "restart", "target": "gw", "detail": ""}
    ]


# --- faults: in a scenario -------------------------------------------------------------------
SCHEDULED = """\
edgesim: 1
name: scheduled
duration: 10s
devices:
  - name: s
    count: 2
    topic: "s/{name}"
    publish: {mode: periodic, period: 1s}
    value: {model: constant, value: 1}
gateways:
  - {name: gw, subscribe: ["s/#"], forward: {to: cloud, topic: up}}
faults:
"""


def test_a_scenarios_faults_happen_at_their_times_and_repeat(tmp_path):
    path = tmp_path / "scheduled.yaml"
    path.write_text(
        SCHEDULED
        + "  - {at: 3s, action: restart, target: gw}\n"
        + "  - {at: 4s, action: disconnect, target: gw, duration: 1s}\n"
        + "  - {at: 5s, action: kill, target: broker}\n"
        + "  - {at: 6s, action: start, target: broker}\n"
    )
    first, second = simulate(path), simulate(path)
    assert first.describe_faults() == (
        "t=3s restart gw; t=4s disconnect gw (reconnects at t=5s); t=5s kill broker; "
        "t=5s reconnect gw; t=6s start broker"
    )
    assert first.trace_digest == second.trace_digest
    clean = tmp_path / "clean.yaml"
    clean.write_text(SCHEDULED.replace("faults:\n", ""))
    assert simulate(clean).trace_digest != first.trace_digest
    edge = EdgeScenario(Scenario.from_yaml(path), trace="full")
    edge.run()
    assert edge.replay_mismatch() is None


def test_a_scenarios_faults_are_checked_with_file_line_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        SCHEDULED
        + "  - {at: 3s, action: restart, target: gx}\n"
        + "  - {at: 4s, action: disconnect, target: broker}\n"
        + "  - {at: 40s, action: kill, target: s-0}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_yaml(path)
    assert caught.value.problems == [
        f"{path}:13: faults[0].target: 'gx' is not a gateway or the broker (did you mean "
        "'gw'?); faults can target: gw, broker",
        f"{path}:14: faults[1].action: the broker cannot disconnect (a gateway's connection "
        "to it can)",
        f"{path}:15: faults[2].target: 's-0' is not a gateway or the broker; faults can "
        "target: gw, broker",
        f"{path}:15: faults[2].at: 40s is not before the end of the run (duration 10s)",
    ]
    path.write_text(SCHEDULED + "  - {at: 3s, action: kill, target: gw, duration: 1s}\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml:13: faults\[0\]: duration is for"):
        Scenario.from_yaml(path)
