"""Your own gateway logic, tested in every tier (docs/your-system.md).

``scenarios/movavg_gateway.py`` (beside its scenario, ``scenarios/user-gateway.yaml``) is
a ``NodeLogic``. ``gateway=[...]`` runs the one test
over the three ways it runs: ``python`` (in this process, virtual time), ``docker:lockstep``
(a container built with the module, driven in virtual time) and ``docker:mqtt`` (that
container as a real MQTT client on a real Mosquitto, on the wall clock, four times faster
than real time).
"""

from __future__ import annotations

import pytest

from pytest_edgesim import Scenario, simulate


@pytest.mark.statistical(trials=2)
@pytest.mark.edgesim(
    scenario="user-gateway.yaml",
    gateway=["python", "docker:lockstep", "docker:mqtt"],
    time_scale=4,
)
def test_my_gateway_publishes_the_average_of_every_six_readings(edge_scenario):
    result = edge_scenario.run()

    averages = [arrival.payload for arrival in result.arrivals]
    # 3 sensors for 6 s: 18 readings, so 3 averages; on the wall clock the last readings
    # of the run may still be on their way when it stops
    assert 2 <= len(averages) <= 3
    assert all(average["count"] == 6 for average in averages)
    assert all(15.0 <= average["mean"] <= 25.0 for average in averages)


def test_in_process_and_in_its_container_it_gives_the_same_trace(request):
    """The lockstep container gives the in-process run's trace, event for event."""
    if request.config.getoption("edgesim_docker") == "off":
        pytest.skip("Docker items are off (--edgesim-docker=off)")
    scenario = Scenario.from_yaml(request.path.parents[1] / "scenarios" / "user-gateway.yaml")
    in_process = simulate(scenario)
    in_container = simulate(scenario.with_gateways("docker:lockstep"))

    assert in_container.trace_digest == in_process.trace_digest
    assert in_process.nodes["gw"]["implementation"] == "python"
    assert in_container.nodes["gw"]["implementation"] == "docker:lockstep"
