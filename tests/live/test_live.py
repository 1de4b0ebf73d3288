"""Live runs: the scenario's sensors through its modelled links onto a real Mosquitto, the
gateway as a real MQTT client (in this process, or the gateway container), the cloud hop
modelled again. Real engine, real broker (the plugin's session ``mqtt_broker``)."""

from __future__ import annotations

from math import comb
from pathlib import Path

import pytest

from pytest_edgesim.core.result import RunResult
from pytest_edgesim.core.scenario import Scenario
from pytest_edgesim.core.simulation import simulate
from pytest_edgesim.live import LiveRun
from pytest_edgesim.pytest_plugin.docker_fixtures import MqttBroker

BASIC = Path(__file__).parents[2] / "scenarios" / "basic.yaml"
SENSORS = [f"sites/lab/temp-{index}/temperature" for index in range(3)]
DURATION_S = 10
TIME_SCALE = 3.0  # 10 s of scenario time in about 3.3 s of wall time
UPLINK_LOSS = 0.02
#: readings lost (modelled uplink loss plus anything the real path lost) that a correct run
#: exceeds with probability below 1e-4: P(Binomial(30, 0.02) >= 6) = 2.5e-5
MAX_LOST = 5


def _binomial_tail(n: int, p: float, k: int) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return 1.0 - sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k))


def _scenario(gateway: str) -> Scenario:
    return Scenario.from_yaml(BASIC).with_overrides(
        {"duration": f"{DURATION_S}s", "gateways.0.implementation": gateway}
    )


def _live(mqtt_broker: MqttBroker, gateway: str, seed: int = 42) -> RunResult:
    prefix = mqtt_broker.new_prefix(f"test_live::{gateway}")
    with LiveRun(
        _scenario(gateway),
        seed,
        broker=mqtt_broker.endpoint,
        time_scale=TIME_SCALE,
        topic_prefix=prefix,
    ) as run:
        return run.run()


@pytest.fixture(scope="module")
def live_results(mqtt_broker: MqttBroker) -> dict[str, RunResult]:
    """One live run of basic.yaml per gateway implementation, with the same seed."""
    return {gateway: _live(mqtt_broker, gateway) for gateway in ("python_model", "docker")}


def test_the_bound_is_what_the_docstring_says() -> None:
    n = len(SENSORS) * DURATION_S
    assert _binomial_tail(n, UPLINK_LOSS, MAX_LOST + 1) < 1e-4


@pytest.mark.parametrize("gateway", ["python_model", "docker"])
def test_a_live_run_delivers_within_the_binomial_bound(
    live_results: dict[str, RunResult], gateway: str
) -> None:
    result = live_results[gateway]
    assert result.trace_digest is None
    assert result.virtual_time_s == DURATION_S
    metrics = result.metrics
    sent = sum(metrics.topic(topic).sent for topic in SENSORS)
    delivered = sum(metrics.topic(topic).delivered for topic in SENSORS)
    assert sent == len(SENSORS) * DURATION_S
    assert sent - delivered <= MAX_LOST
    assert metrics.node("gateway").delivered == delivered
    # one aggregate per 10 readings, each over the modelled 50 ms WAN link
    cloud = metrics.node("cloud")
    assert cloud.delivered == delivered // 10
    assert [arrival.payload["count"] for arrival in result.arrivals] == [10] * cloud.delivered
    assert metrics.link("gateway", "cloud").latency_ms["min"] >= 50
    # readings cross a 20 ms modelled uplink, then the real broker
    assert metrics.topic(SENSORS[0]).latency_ms["min"] >= 20
    assert result.nodes["gateway"]["implementation"] == gateway


def test_python_and_docker_gateways_agree(live_results: dict[str, RunResult]) -> None:
    """The same seed gives both runs the same readings and the same modelled losses, so
    they must forward the same number of aggregates over the same readings."""
    python, docker = live_results["python_model"], live_results["docker"]
    for topic in SENSORS:
        assert python.metrics.topic(topic).sent == docker.metrics.topic(topic).sent
        assert python.metrics.topic(topic).dropped == docker.metrics.topic(topic).dropped
    assert python.metrics.node("cloud").delivered == docker.metrics.node("cloud").delivered
    assert [a.payload["count"] for a in python.arrivals] == [
        a.payload["count"] for a in docker.arrivals
    ]


def test_the_modelled_part_is_the_deterministic_tiers(live_results: dict[str, RunResult]) -> None:
    """Sensors and uplinks are the same models with the same random streams: the live run
    publishes and loses exactly what the virtual-time run does."""
    model = simulate(_scenario("python_model"), seed=42)
    live = live_results["docker"]
    for topic in SENSORS:
        assert live.metrics.topic(topic).sent == model.metrics.topic(topic).sent
        assert live.metrics.topic(topic).dropped == model.metrics.topic(topic).dropped
    assert live.metrics.node("cloud").delivered == model.metrics.node("cloud").delivered


def test_a_partition_of_the_modelled_wan_link_holds_back_qos1_forwards(
    mqtt_broker: MqttBroker,
) -> None:
    scenario = _scenario("docker").with_overrides({"duration": "9s"})
    with LiveRun(
        scenario,
        7,
        broker=mqtt_broker.endpoint,
        time_scale=TIME_SCALE,
        topic_prefix=mqtt_broker.new_prefix("partition"),
    ) as run:
        run.network.partition("gateway", "cloud")
        cut = run.run("6s")
        assert cut.metrics.node("cloud").delivered == 0
        assert cut.metrics.link("gateway", "cloud").dropped["partition"] >= 1
        run.network.heal()
        healed = run.run()  # QoS 1: the forwards held back are sent again (every 1 s)
    assert healed.metrics.node("cloud").delivered >= 1


def test_a_gateway_in_this_process_stops_and_starts_in_a_live_run(mqtt_broker: MqttBroker) -> None:
    """The in-process gateway of a live run can be stopped and started (a new one); it cannot
    be killed or paused (it shares the test's process), and says so."""
    from pytest_edgesim.errors import FaultError

    with LiveRun(
        _scenario("python_model"),
        42,
        broker=mqtt_broker.endpoint,
        time_scale=TIME_SCALE,
        topic_prefix=mqtt_broker.new_prefix("test_live::faults"),
    ) as run:
        run.run("3s")
        first = run.gateway("gateway")
        run.restart("gateway")
        assert run.gateway("gateway") is not first
        with pytest.raises(FaultError, match=r"cannot pause 'gateway': .* supports stop, start"):
            run.pause("gateway")
        result = run.run()
    assert [str(fault) for fault in result.faults] == ["t=3s restart gateway"]
    assert result.nodes["gateway"]["restarts"] == 1
    # the new gateway forwards: an aggregate of 10 readings after the restart reached the cloud
    assert any(arrival.created_at > 3_000_000 for arrival in result.arrivals)
