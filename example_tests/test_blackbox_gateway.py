"""A gateway program you already have, tested as a black box (docs/your-system.md).

``blackbox_gateway/`` is a user's own gateway: a Dockerfile and a moving-average program
that speaks plain MQTT and knows nothing of pytest-edgesim. The scenario builds it, tells it
where the broker is and which topic prefix to use through its command line, and runs each
trial live: the sensor models publish through lossy modelled uplinks onto a real Mosquitto,
the program averages, and what it publishes crosses the modelled link to the cloud.
"""

from __future__ import annotations

import pytest

SENSORS = 3
WINDOW = 5


@pytest.mark.statistical(trials=4)
@pytest.mark.edgesim(scenario="blackbox-gateway.yaml", time_scale=3)
def test_the_program_averages_every_reading_it_receives(edge_scenario):
    result = edge_scenario.run()

    sent = sum(result.metrics.node(f"temp-{index}").sent for index in range(SENSORS))
    received = result.metrics.node("averager").delivered
    averages = [arrival.payload for arrival in result.arrivals]
    # 10 % uplink loss: of 60 readings a correct system loses more than 19 with P < 1e-6
    assert sent == 60
    assert sent - received <= 19
    # one average per reading it received, each over at most the last five of one sensor
    assert len(averages) == received
    assert all(1 <= average["readings"] <= WINDOW for average in averages)
    # the sensors read 21 +/- 2: so does every average of them
    assert all(19.0 <= average["average"] <= 23.0 for average in averages)
    assert {average["sensor"].rsplit("/", 2)[-2] for average in averages} == {
        f"temp-{index}" for index in range(SENSORS)
    }


@pytest.mark.statistical(trials=2)
@pytest.mark.edgesim(scenario="blackbox-gateway.yaml", time_scale=3)
def test_after_a_restart_the_program_goes_on_averaging(edge_scenario):
    edge_scenario.run("1s")
    edge_scenario.restart("averager")  # the container: SIGTERM, started again, subscribed
    result = edge_scenario.run()

    # the run says it was not a clean one
    assert [(fault.action, fault.target) for fault in result.faults] == [("restart", "averager")]
    # the scenario's clock stands still while the container restarts (the sensors wait),
    # so only what was in flight at that moment can be lost: at most a reading a sensor
    received = result.metrics.node("averager").delivered
    averages = [arrival.payload for arrival in result.arrivals]
    assert received - SENSORS <= len(averages) <= received
    # and it averages afresh: its windows started empty after the restart
    after = [arrival.payload for arrival in result.arrivals if arrival.time > 1_000_000]
    assert after and min(average["readings"] for average in after) == 1
