"""A scenario's fault schedule on real containers (docs/faults.md, "What each tier can do").

One pytest session in a subprocess runs live trials on the session's broker and the gateway
container: a restart fired by the gateway's subscription, a backhaul outage with a bounded
store-and-forward buffer, a link change on a modelled uplink, and the faults a live run
refuses before the run (a gateway's real connection to the broker, a broker persistence).
"""

from __future__ import annotations

import pytest

SCENARIO = """
edgesim: 1
name: live-schedule
seed: 5
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
    forward: {to: cloud, topic: "up/{gateway}", qos: 1, buffer: {capacity: 5}}
network:
  default: {latency: 1ms}
"""

TESTS = """
import pytest
from pytest_edgesim.errors import FaultError

SECOND = 1_000_000


def forwarded_between(result, start_s, end_s):
    return [a for a in result.arrivals if start_s * SECOND <= a.time < end_s * SECOND]


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("schedule.yaml", time_scale=2)
def test_gateway_restart_on_its_subscription(edge_scenario):
    edge_scenario.schedule(
        {"kind": "restart", "target": "gw", "when": {"subscribed": "gw", "delay": "1s"},
         "duration": "1s"}
    )
    result = edge_scenario.run()
    assert [fault.action for fault in result.faults] == ["stop", "start"]
    stop, start = result.faults
    assert stop.time_s == pytest.approx(1.0, abs=0.3)
    assert start.time_s == pytest.approx(2.0, abs=0.3)
    assert result.nodes["gw"]["restarts"] == 1
    assert forwarded_between(result, 3.5, 6), "nothing forwarded after the restart"


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("schedule.yaml", time_scale=2)
def test_backhaul_outage_buffers_and_counts_what_it_loses(edge_scenario):
    edge_scenario.schedule(
        {"kind": "backhaul_outage", "target": "gw", "at": "1s", "duration": "2s"}
    )
    result = edge_scenario.run()
    assert [fault.action for fault in result.faults] == [
        "backhaul_outage", "backhaul_outage:end"
    ]
    lost = result.deliveries.delivery("s-*", "cloud").lost_by_cause
    # 20 readings a second for 2 s, 5 places: some 35 lost to the full store
    assert 20 <= lost.get("storage_full", 0) <= 40, lost
    assert result.nodes["gw"]["dropped_storage_full"] == lost["storage_full"]
    assert not forwarded_between(result, 1.3, 2.9), "the cloud heard from the gateway"
    assert forwarded_between(result, 3.5, 6), "nothing forwarded after the outage"


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("schedule.yaml", time_scale=2)
def test_link_change_on_a_modelled_uplink(edge_scenario):
    edge_scenario.schedule(
        {"kind": "link_change", "between": ["s-0", "broker"], "latency": "400ms",
         "at": "1s", "duration": "2s"}
    )
    result = edge_scenario.run()
    assert result.faults[0].action == "link_change"
    assert result.metrics.link("s-0", "broker").latency_ms["max"] >= 390


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("schedule.yaml", time_scale=2, duration="1s")
def test_what_a_live_run_cannot_do_is_refused_before_it_runs(edge_scenario):
    edge_scenario.schedule(
        {"kind": "partition", "between": ["gw", "broker"], "at": "500ms"}
    )
    edge_scenario.schedule({"kind": "broker_restart", "target": "broker", "at": "500ms",
                            "persistence": True})
    with pytest.raises(FaultError) as caught:
        edge_scenario.run()
    message = str(caught.value)
    assert "cannot apply 2 of the scheduled faults (nothing has run yet)" in message
    assert "real connection to the broker" in message and "persistence" in message
    assert edge_scenario.now == 0
"""


def test_a_fault_schedule_runs_on_real_containers(
    pytester: pytest.Pytester, docker_client: object
) -> None:
    pytester.makefile(".yaml", schedule=SCENARIO)
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("--edgesim-docker=require", "-p", "no:randomly")
    result.assert_outcomes(passed=4)


PROXIED = """
edgesim: 1
name: live-proxied
seed: 5
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
faults:
  - {kind: link_change, between: [gw, broker], latency: 400ms, at: 1s, duration: 2s}
  - {kind: partition, between: [gw, broker], at: 4s, duration: 1s}
"""

PROXIED_TESTS = """
import statistics

import pytest

SECOND = 1_000_000


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim("proxied.yaml", time_scale=2)
def test_the_gateway_link_is_changed_and_cut_through_the_proxy(edge_scenario):
    result = edge_scenario.run()
    assert [fault.action for fault in result.faults] == [
        "link_change", "link_change:end", "partition", "partition:end"
    ]
    assert "proxy of gw" in result.faults[0].detail

    def latencies(start_s, end_s):
        return [(a.time - a.created_at) / 1000 for a in result.arrivals
                if start_s * SECOND <= a.created_at < end_s * SECOND]

    # the proxy delays both ways (broker -> gateway, gateway -> broker): 800 ms and more
    assert statistics.median(latencies(1.3, 2.6)) >= 700, latencies(1.3, 2.6)
    assert statistics.median(latencies(0.1, 0.9)) < 300, latencies(0.1, 0.9)
    # cut from 4 s to 5 s (the proxy holds the bytes, as TCP would): what was created
    # then arrives after the heal
    held = latencies(4.1, 4.8)
    assert held and min(held) >= 150, held
"""


def test_a_gateway_link_fault_goes_through_the_impairing_proxy(
    pytester: pytest.Pytester, docker_client: object
) -> None:
    pytester.makefile(".yaml", proxied=PROXIED)
    pytester.makepyfile(PROXIED_TESTS)
    result = pytester.runpytest_subprocess("--edgesim-docker=require", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
