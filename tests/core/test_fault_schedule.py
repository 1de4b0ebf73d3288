"""The fault schedule (docs/faults.md): kinds, triggers, validation, the trace and digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgesim import Scenario, simulate
from pytest_edgesim.core.fault_kinds import fault_kind, fault_kind_names, fault_kinds
from pytest_edgesim.core.simulation import Simulation
from pytest_edgesim.errors import FaultError, ScenarioError

ROOT = Path(__file__).resolve().parents[2]


def _scenario(faults: list[dict], **extra) -> Scenario:
    data = {
        "edgesim": 1,
        "seed": 3,
        "duration": "2min",
        "devices": [{"name": "sensor", "count": 3, "publish": {"period": "1s"}}],
        "gateways": [
            {
                "name": "gw",
                "subscribe": "sensors/#",
                "forward": {"qos": 1, "buffer": {"capacity": 20}},
            }
        ],
        "faults": faults,
        **extra,
    }
    return Scenario.from_dict(data)


def test_the_registry_lists_every_built_in_kind() -> None:
    names = fault_kind_names()
    for name in (
        "partition",
        "isolate",
        "link_change",
        "crash",
        "restart",
        "pause",
        "broker_restart",
        "backhaul_outage",
        "storage_full",
        "duty_cycle",
        "clock_skew",
    ):
        assert name in names
    assert all(kind.description for kind in fault_kinds())
    assert fault_kind("partition").target == "link"


def test_the_backhaul_example_is_deterministic_and_counts_its_losses_by_cause() -> None:
    scenario = Scenario.from_yaml(ROOT / "scenarios" / "backhaul-outage.yaml")
    first, second = simulate(scenario), simulate(scenario)
    assert first.trace_digest == second.trace_digest
    assert first.trace_digest == (
        "3d324a262201d3f2c0adee0efb9446b809eafe3f6d18ebbe0709485f56679790"
    )
    delivery = first.deliveries.delivery("sensor-*", "cloud")
    assert delivery.lost_by_cause == {"storage_full": 700, "asleep": 7200}
    assert [(fault.time_s, fault.action) for fault in first.faults] == [
        (0.0, "backhaul_outage"),
        (0.0, "duty_cycle"),
        (1800.0, "backhaul_outage:end"),
    ]


def test_without_a_buffer_an_outage_loses_the_forwards_to_the_cut() -> None:
    scenario = _scenario([{"kind": "backhaul_outage", "target": "gw", "at": "10s"}])
    scenario = scenario.with_overrides({"gateways[0].forward.buffer": None})
    delivery = simulate(scenario).deliveries.delivery("sensor-*", "cloud")
    assert delivery.delivered == 30
    assert set(delivery.lost_by_cause) == {"partition"}


def test_a_full_store_drops_with_its_cause_and_the_rest_is_sent_when_the_uplink_is_back() -> None:
    scenario = _scenario(
        [
            {
                "name": "cut",
                "kind": "backhaul_outage",
                "target": "gw",
                "at": "10s",
                "duration": "30s",
            },
            {"kind": "storage_full", "target": "gw", "after": {"fault": "cut", "delay": "20s"}},
        ]
    )
    result = simulate(scenario)
    delivery = result.deliveries.delivery("sensor-*", "cloud")
    # 3 readings a second: in the outage's first 20 s, 60 readings for 20 places (40 of the
    # oldest dropped), in its last 10 s the store is full (30 dropped); 20 sent at its end
    assert delivery.lost_by_cause == {"storage_full": 40 + 30}
    assert delivery.delivered == delivery.sent - 70
    assert result.nodes["gw"]["dropped_storage_full"] == 70


def test_restart_right_after_the_gateway_subscribes_is_reproducible() -> None:
    scenario = _scenario(
        [
            {
                "name": "first",
                "kind": "restart",
                "target": "gw",
                "when": {"subscribed": "gw"},
                "duration": "5s",
            },
            {
                "kind": "crash",
                "target": "gw",
                "when": {"subscribed": "gw", "count": 2, "delay": "1s"},
            },
        ]
    )
    result = simulate(scenario)
    assert [(fault.time_s, fault.action) for fault in result.faults] == [
        (0.0, "stop"),
        (5.0, "start"),
        (6.0, "kill"),
    ]
    assert simulate(scenario).trace_digest == result.trace_digest


def test_received_and_dropped_triggers_count_events() -> None:
    scenario = _scenario(
        [
            {
                "name": "lossy",
                "kind": "link_change",
                "between": ["sensor-0", "broker"],
                "loss": 1.0,
                "when": {"received": "gw", "count": 10},
                "duration": "10s",
            },
            {
                "kind": "pause",
                "target": "gw",
                "when": {"dropped": "sensor-0->broker", "count": 3},
                "duration": "2s",
            },
        ]
    )
    result = simulate(scenario)
    times = [(fault.time_s, fault.action) for fault in result.faults]
    assert times[0][1] == "link_change" and 3.0 <= times[0][0] < 4.0
    assert times[1][1] == "pause" and times[1][0] == pytest.approx(times[0][0] + 3, abs=1)
    assert ("resume" in [action for _, action in times]) and (
        "link_change:end" in [a for _, a in times]
    )
    assert result.deliveries.delivery("sensor-0", "gw").lost_by_cause.get("loss") == 10


def test_a_one_way_partition_cuts_one_direction() -> None:
    scenario = _scenario(
        [{"kind": "partition", "between": ["broker", "gw"], "one_way": True, "at": 0}],
        broker={"processing_delay": 0},
    )
    simulation = Simulation(scenario)
    simulation.run("1s")
    assert simulation.network.is_partitioned("broker", "gw")
    assert not simulation.network.is_partitioned("gw", "broker")


def test_a_bridge_is_cut_from_neither_side() -> None:
    scenario = _scenario(
        [{"kind": "partition", "between": [["sensor-*", "gw"], "broker"], "bridge": "gw", "at": 0}]
    )
    simulation = Simulation(scenario)
    simulation.run("1s")
    assert simulation.network.is_partitioned("sensor-0", "broker")
    assert not simulation.network.is_partitioned("gw", "broker")


def test_a_broker_restart_with_persistence_keeps_persistent_subscriptions() -> None:
    faults = [{"kind": "broker_restart", "target": "broker", "at": "10s", "persistence": True}]
    scenario = _scenario(faults)
    scenario = scenario.with_overrides({"gateways[0].session": {"clean": False}})
    result = simulate(scenario)
    assert "restored" in result.faults[-1].detail


def test_a_duty_cycle_that_buffers_loses_nothing_and_a_clock_drift_publishes_more() -> None:
    buffered = _scenario(
        [{"kind": "duty_cycle", "target": "sensor-*", "at": 0, "period": "10s", "awake": "1s"}]
    )
    delivery = simulate(buffered).deliveries.delivery("sensor-*", "cloud")
    assert delivery.lost == 0 or set(delivery.lost_by_cause) <= {"pending", "unknown"}
    fast = _scenario([{"kind": "clock_skew", "target": "sensor-0", "at": 0, "drift_ppm": 50000}])
    plain = simulate(_scenario([]))
    sent = simulate(fast).deliveries.delivery("sensor-0", "gw").sent
    assert sent > plain.deliveries.delivery("sensor-0", "gw").sent


def test_schedule_from_code_is_the_same_as_from_yaml() -> None:
    fault = {"kind": "backhaul_outage", "target": "gw", "at": "10s", "duration": "20s"}
    from_yaml = simulate(_scenario([fault]))
    simulation = Simulation(_scenario([]))
    simulation.schedule(fault)
    assert simulation.run().trace_digest == from_yaml.trace_digest


def test_the_builder_adds_faults() -> None:
    from pytest_edgesim import ScenarioBuilder

    builder = ScenarioBuilder("b").sensors("s", count=2).gateway("gw", subscribe="sensors/#")
    scenario = builder.fault("restart", target="gw", at="5s").build()
    assert scenario.spec.faults[0].fault_kind == "restart"


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"kind": "partiton", "between": ["a", "b"], "at": 1}, "did you mean 'partition'"),
        ({"kind": "restart", "target": "gw"}, "needs one trigger: at, after or when"),
        (
            {"kind": "restart", "target": "gw", "at": 1, "latency": "2ms"},
            "latency: not a setting of a restart fault",
        ),
        (
            {"kind": "duty_cycle", "target": "sensor-*", "at": 0, "period": "1s", "awake": "2s"},
            "awake must be shorter than period",
        ),
        (
            {"kind": "restart", "target": "gw", "after": {"fault": "nope"}},
            "faults[0].after.fault: no fault is named 'nope'",
        ),
        (
            {"kind": "backhaul_outage", "target": "gateway", "at": 0},
            "'gateway' is not a gateway of the scenario",
        ),
        (
            {"kind": "restart", "target": "gw", "when": {"subscribed": "gw", "received": "gw"}},
            "name one event",
        ),
    ],
)
def test_bad_faults_are_one_clear_error_naming_the_field(fault: dict, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        _scenario([fault])
    assert expected in str(caught.value)
    assert "faults[0]" in str(caught.value)


def test_a_fault_the_run_cannot_apply_is_refused_before_the_run() -> None:
    simulation = Simulation(_scenario([]))
    with pytest.raises(FaultError, match="cannot apply 1 of the scheduled faults"):
        simulation.schedule(
            {"kind": "duty_cycle", "target": "gw", "at": 0, "period": "10s", "awake": "1s"}
        )
        simulation.run("1s")
    assert simulation.now == 0


def test_a_registered_kind_is_validated_listed_and_fired() -> None:
    from dataclasses import dataclass

    from pytest_edgesim.core.fault_kinds import register_fault_kind, unregister_fault_kind

    @dataclass(frozen=True)
    class Flood:
        name: str = "flood"
        description: str = "a test kind: inject messages into a gateway's topics"
        target: str = "gateway"
        settings: tuple[str, ...] = ("params",)
        required: tuple[str, ...] = ("params",)
        lasting: str = "never"

        def check(self, fault):
            return None if "count" in fault.params else "a flood fault needs params.count"

        def unsupported(self, tier, fault, run):
            return None if tier == "virtual_time" else "virtual time only"

        def begin(self, run, fault):
            for index in range(fault.params["count"]):
                run.inject(f"sensors/flood/{index}", 1.0)
            return f"{fault.params['count']} messages", None

        def end(self, run, fault, token):
            return ""

    register_fault_kind(Flood())
    try:
        assert "flood" in fault_kind_names()
        with pytest.raises(ScenarioError, match=r"faults\[0\]\.kind: a flood fault needs"):
            _scenario([{"kind": "flood", "target": "gw", "at": "1s", "params": {"n": 1}}])
        scenario = _scenario(
            [{"kind": "flood", "target": "gw", "at": "1s", "params": {"count": 5}}]
        )
        result = simulate(scenario)
        assert str(result.faults[0]) == "t=1s flood gw (5 messages)"
    finally:
        unregister_fault_kind("flood")
    assert "flood" not in fault_kind_names()
