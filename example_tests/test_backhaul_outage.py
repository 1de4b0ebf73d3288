"""A backhaul outage with a bounded store-and-forward buffer (scenarios/backhaul-outage.yaml).

The scenario says it all in YAML: when the gateway has subscribed, its uplink to the cloud
is cut for 30 minutes while the sensors sleep on a 10 s duty cycle. These tests read what
was lost and why, check that the schedule repeats to the bit, and run the same schedule
with the gateway in a container on a real broker (docs/faults.md).
"""

from __future__ import annotations

import pytest


@pytest.mark.deterministic(replay_check=True)
@pytest.mark.edgesim(scenario="backhaul-outage.yaml")
def test_what_the_outage_loses_is_counted_by_cause(edge_scenario):
    result = edge_scenario.run()

    delivery = result.deliveries.delivery("sensor-*", "cloud")
    # asleep: readings due while a sensor slept (8 s of every 10 s); storage_full: what
    # did not fit in the gateway's 200 places during the 30 minutes without an uplink
    assert set(delivery.lost_by_cause) == {"asleep", "storage_full"}
    assert delivery.lost == delivery.sent - delivery.delivered
    assert result.nodes["gw"]["dropped_storage_full"] == delivery.lost_by_cause["storage_full"]
    # what the buffer held went out when the uplink came back, at 30 min
    assert [(fault.time_s, fault.action) for fault in result.faults][-1] == (
        1800.0,
        "backhaul_outage:end",
    )
    back = [arrival for arrival in result.arrivals if arrival.time >= 1800 * 1_000_000]
    assert len(back) >= 200


@pytest.mark.statistical(trials=1)
@pytest.mark.edgesim(
    scenario="backhaul-outage.yaml",
    overrides={
        "gateways[0].implementation": "docker",
        "duration": "20s",
        "faults[0].duration": "8s",
        "gateways[0].forward.buffer.capacity": 3,
    },
    time_scale=2,
)
def test_the_same_schedule_on_a_gateway_container(edge_scenario):
    result = edge_scenario.run()

    assert [fault.action for fault in result.faults] == [
        "backhaul_outage",
        "duty_cycle",
        "backhaul_outage:end",
    ]
    lost = result.deliveries.delivery("sensor-*", "cloud").lost_by_cause
    assert lost.get("storage_full", 0) > 0
    assert lost.get("asleep", 0) > 0
