"""Persistent and clean MQTT sessions across an outage: the broker model's counts and real
Mosquitto's, for the same scenario fields, are the same numbers.

The outage on the real side is the gateway's connection closed by the test while readings
are published, then opened again (its paho client, as a network outage that outlasts the
keep-alive leaves it); in the model it is a partition that outlasts 1.5 x the keep-alive.
Both count what was published while the gateway was away, so no wall-clock tolerance is
needed: the counts are exact on both sides.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from mqtt_probe import Probe, reading

from pytest_edgesim import Scenario, simulate
from pytest_edgesim.gateway.config import config_from_spec
from pytest_edgesim.gateway.service import GatewayService
from pytest_edgesim.live.broker_config import SYS_DROPPED_TOPIC, mosquitto_settings
from pytest_edgesim.live.process_broker import ProcessBroker, mosquitto_binary

PREFIX = "edgesim-test/sessions/"
QUEUE_LIMIT = 10
#: readings published while the gateway is away: one every 100 ms from 9 s to 12 s, when the
#: model's broker (keep-alive 2 s, cut at 5 s) has given up on it and the cut holds
OFFLINE_READINGS = 30
SENTINEL = 1000.0


def outage_scenario(clean: bool) -> Scenario:
    return Scenario.from_dict(
        {
            "edgesim": 1,
            "duration": "25s",
            "broker": {"max_queued_messages": QUEUE_LIMIT},
            "devices": [
                {
                    "name": "s",
                    "topic": "sensors/s",
                    "qos": 1,
                    "publish": {"period": "100ms", "offset": 0, "start": "9s", "stop": "12s"},
                }
            ],
            "gateways": [
                {
                    "name": "gw",
                    "subscribe": [{"filter": "sensors/#", "qos": 1}],
                    "session": {"clean": clean, "keepalive": "2s"},
                    "forward": {"topic": "cloud/gw", "qos": 1},
                }
            ],
            "network": {
                "default": {"latency": "1ms"},
                "partitions": [{"between": ["gw", "broker"], "start": "5s", "end": "20s"}],
            },
        }
    )


@pytest.fixture(scope="module")
def broker() -> Iterator[ProcessBroker]:
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("no mosquitto binary (set EDGESIM_MOSQUITTO or install mosquitto)")
    # (both scenarios have the same broker fields)
    started = ProcessBroker.start(
        binary, settings=mosquitto_settings(outage_scenario(True).spec.broker)
    )
    yield started
    started.stop()


def model_counts(clean: bool) -> dict[str, int]:
    result = simulate(outage_scenario(clean))
    return {
        "published": result.metrics.node("s").sent - result.metrics.node("s").redelivered,
        "received": result.metrics.node("gw").delivered,
        **dict(result.metrics.node("broker").dropped),
    }


UPTIME_TOPIC = "$SYS/broker/uptime"


def dropped_count(sys_probe: Probe, last: int | None = None) -> int:
    """The broker's ``$SYS`` count of dropped PUBLISHes as of now: the last one it published
    (retained, then whenever it changes) before two ``uptime`` updates, so over a whole
    ``sys_interval`` that began after this call; ``last``: the count read before."""
    dropped, uptimes = last, 0
    while uptimes < 2 or dropped is None:
        message = sys_probe.receive(10)
        if message.topic == UPTIME_TOPIC:
            uptimes += 1
        else:
            dropped = int(message.payload)
    return dropped


def live_counts(broker: ProcessBroker, clean: bool, tag: str) -> dict[str, int]:
    prefix = f"{PREFIX}{tag}/"
    spec = outage_scenario(clean).spec.gateways[0]
    config: dict[str, Any] = config_from_spec(spec, prefix)
    sys_probe = Probe(
        broker.host, broker.port, name="sys", subscribe=((SYS_DROPPED_TOPIC, 0), (UPTIME_TOPIC, 0))
    )
    dropped_before = dropped_count(sys_probe)
    cloud = Probe(broker.host, broker.port, name="cloud", subscribe=((prefix + "cloud/gw", 1),))
    sensor = Probe(broker.host, broker.port, name="sensor")
    service = GatewayService(config, broker.host, broker.port, client_id=f"edgesim-gw-{tag}")
    try:
        service.start()
        service.client.disconnect()  # the outage
        service.client.loop_stop()
        for value in range(OFFLINE_READINGS):
            sent = sensor.publish(prefix + "sensors/s", reading(value), 1)
            sent.wait_for_publish(10)  # (its PUBACK: the broker has routed it)
            assert sent.is_published()
        service.client.reconnect()
        service.client.loop_start()
        assert service.wait_until_connected(10)
        # readings reach the gateway in order, queued ones first: the sentinel's forward
        # means every queued reading has arrived
        sensor.publish(prefix + "sensors/s", reading(SENTINEL), 1)
        while json.loads(cloud.receive(10).payload).get("value") != SENTINEL:
            pass
        received = service.counters["received"] - 1  # not the sentinel
        queue_full = dropped_count(sys_probe, dropped_before) - dropped_before
    finally:
        service.stop()
        for probe in (sys_probe, cloud, sensor):
            probe.close()
    # Mosquitto keeps nothing for a clean session that is away, and counts nothing: what
    # the gateway did not receive was lost because it was offline
    return {
        "published": OFFLINE_READINGS,
        "received": received,
        "queue_full": queue_full,
        "offline": OFFLINE_READINGS - received - queue_full,
    }


@pytest.mark.parametrize("clean", [False, True], ids=["persistent", "clean"])
def test_the_real_broker_queues_and_drops_as_the_model_does(broker, clean):
    model = model_counts(clean)
    tag = "clean" if clean else "persistent"
    live = live_counts(broker, clean, tag)
    assert model["published"] == live["published"] == OFFLINE_READINGS
    assert live["received"] == model["received"]
    assert live["queue_full"] == model.get("queue_full", 0)
    assert live["offline"] == model.get("offline", 0)
    if clean:
        assert live["received"] == 0
    else:
        assert live["received"] == QUEUE_LIMIT
        assert live["queue_full"] == OFFLINE_READINGS - QUEUE_LIMIT
