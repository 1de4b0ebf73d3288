"""The same test against the gateway model and the real gateway container.

``gateway=["python_model", "docker"]`` runs the test twice. With ``python_model`` the
scenario runs in virtual time; with ``docker`` it runs live: the sensor models publish
through the modelled uplinks onto a real Mosquitto, the gateway container aggregates, and
what it forwards crosses the modelled WAN link to the cloud. ``time_scale=3`` runs the live
scenario three times faster than real time (6 s of scenario time in 2 s). Without a Docker
engine the docker case is skipped (``--edgesim-docker=require`` fails it instead).
"""

from __future__ import annotations

import pytest


@pytest.mark.statistical(trials=3)
@pytest.mark.edgesim(
    scenario="basic.yaml", gateway=["python_model", "docker"], duration="6s", time_scale=3
)
def test_the_gateway_aggregates_every_ten_readings(edge_scenario):
    result = edge_scenario.run()

    readings = result.metrics.node("gateway").delivered
    aggregates = result.arrivals
    # 3 sensors, one reading a second, 2 % uplink loss: at least 14 of 18 arrive unless
    # something is wrong (a correct gateway loses 5 or more with P < 3e-5 per trial)
    assert readings >= 14
    assert len(aggregates) == readings // 10
    assert all(aggregate.payload["count"] == 10 for aggregate in aggregates)
    assert all(20.0 < aggregate.payload["mean"] < 22.0 for aggregate in aggregates)
    # the WAN link adds 50 ms to every aggregate, model or container
    assert result.metrics.link("gateway", "cloud").latency_ms["min"] >= 50
