"""Swarm testing on a live run: the profile is drawn once the run's real gateway is there
(so its node faults are drawn from what the real component supports) and applied to it."""

from __future__ import annotations

from pathlib import Path

from pytest_edgesim.core.scenario import Scenario
from pytest_edgesim.live import LiveRun
from pytest_edgesim.pytest_plugin.docker_fixtures import MqttBroker

BASIC = Path(__file__).parents[2] / "scenarios" / "basic.yaml"


def test_a_live_run_draws_and_undergoes_its_profile(mqtt_broker: MqttBroker) -> None:
    scenario = Scenario.from_yaml(BASIC).with_overrides(
        {
            "duration": "8s",
            "swarm": {
                "kinds": ["gateway_restart", "disconnect"],
                "probability": 1.0,
                "max_count": 1,
                "start": "2s",
                "end": "4s",
                "min_duration": "1s",
                "max_duration": "2s",
            },
        }
    )
    with LiveRun(
        scenario,
        7,
        broker=mqtt_broker.endpoint,
        time_scale=4.0,
        topic_prefix=mqtt_broker.new_prefix("test_live_swarm"),
    ) as run:
        result = run.run()
    # a gateway in this process can be stopped and started, not disconnected: the profile
    # draws what the run's real components can undergo
    profile = result.swarm_profile
    assert profile is not None and profile.kinds == ("gateway_restart",)
    (restart,) = profile.faults
    gateway = scenario.spec.gateways[0].name
    assert [(fault.action, fault.target) for fault in result.faults] == [("restart", gateway)]
    assert 2_000_000 <= restart.at_ticks < 4_000_000
