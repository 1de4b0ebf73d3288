"""Persistent, clean and expiring MQTT sessions across an outage: the broker model's counts and real
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


#: session -> what the model and Mosquitto do with the readings of the outage that the
#: gateway never gets and Mosquitto does not count as dropped
CASES = {
    "persistent": ({"clean": False}, "offline"),  # (none: it gets them, or they are full)
    "clean": ({"clean": True}, "offline"),
    # expires at 13 s in the model, after the readings; on the real broker, awaited
    "expiring": ({"clean": False, "expiry": "5s"}, "session_lost"),
}


def outage_scenario(session: dict[str, Any]) -> Scenario:
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
                    "session": {**session, "keepalive": "2s"},
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
        binary, settings=mosquitto_settings(outage_scenario({}).spec.broker)
    )
    yield started
    started.stop()


def model_counts(session: dict[str, Any]) -> dict[str, int]:
    result = simulate(outage_scenario(session))
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


DISCONNECTED_TOPIC = "$SYS/broker/clients/disconnected"


def wait_for_sys_value(probe: Probe, value: int, timeout_s: float) -> None:
    """Until the one ``$SYS`` topic ``probe`` subscribes to reads ``value``."""
    while int(probe.receive(timeout_s).payload) != value:
        pass


def live_counts(broker: ProcessBroker, session: dict[str, Any], tag: str) -> dict[str, int]:
    prefix = f"{PREFIX}{tag}/"
    spec = outage_scenario(session).spec.gateways[0]
    config: dict[str, Any] = config_from_spec(spec, prefix)
    sys_probe = Probe(
        broker.host, broker.port, name="sys", subscribe=((SYS_DROPPED_TOPIC, 0), (UPTIME_TOPIC, 0))
    )
    dropped_before = dropped_count(sys_probe)
    sessions_probe = Probe(
        broker.host, broker.port, name="sessions", subscribe=((DISCONNECTED_TOPIC, 0),)
    )
    disconnected_before = int(sessions_probe.receive(10).payload)
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
        if spec.session is not None and spec.session.expiry is not None:
            # the broker discards the session: its count of sessions away goes back
            expiry_s = config["session"]["expiry_s"]
            wait_for_sys_value(sessions_probe, disconnected_before, expiry_s + 10)
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
        for probe in (sys_probe, sessions_probe, cloud, sensor):
            probe.close()
    return {"published": OFFLINE_READINGS, "received": received, "queue_full": queue_full}


@pytest.mark.parametrize("case", list(CASES))
def test_the_real_broker_queues_and_drops_as_the_model_does(broker, case):
    session, uncounted_cause = CASES[case]
    model = model_counts(session)
    live = live_counts(broker, session, case)
    assert model["published"] == live["published"] == OFFLINE_READINGS
    assert live["received"] == model["received"]
    assert live["queue_full"] == model.get("queue_full", 0)
    # what the gateway did not get and Mosquitto did not count as dropped
    uncounted = OFFLINE_READINGS - live["received"] - live["queue_full"]
    assert uncounted == model.get(uncounted_cause, 0)
    expected = {
        "persistent": (QUEUE_LIMIT, OFFLINE_READINGS - QUEUE_LIMIT, 0),
        "clean": (0, 0, OFFLINE_READINGS),
        "expiring": (0, OFFLINE_READINGS - QUEUE_LIMIT, QUEUE_LIMIT),
    }[case]
    assert (live["received"], live["queue_full"], uncounted) == expected
