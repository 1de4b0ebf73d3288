"""The same tests on two Mosquitto releases, with the production broker configuration.

``my-broker.yaml`` names the real broker: Mosquitto from a Debian release, configured with
``my-broker/mosquitto.conf`` (edgesim adds only the listener it publishes).
``broker=["bookworm", "trixie"]`` runs each test once per release (Mosquitto 2.0.11 and
2.0.21), on one broker container per release shared by every test that names it; the test
ids say which (``test_...[trixie]``). Without a Docker engine they are skipped.
"""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

RELEASES = ["bookworm", "trixie"]


def _client(mqtt_broker, client_id: str, *, clean_session: bool, **callbacks) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
    )
    for name, callback in callbacks.items():  # before connecting: nothing arrives unseen
        setattr(client, name, callback)
    client.connect(mqtt_broker.host, mqtt_broker.port)
    client.loop_start()
    return client


@pytest.mark.edgesim(scenario="my-broker.yaml", broker=RELEASES)
def test_an_offline_gateway_gets_at_most_five_queued_messages(mqtt_broker):
    topic = mqtt_broker.topic_prefix + "plant/commands"
    gateway_id = f"gateway-{uuid.uuid4().hex[:8]}"
    received: list[bytes] = []
    last_arrived, subscribed = threading.Event(), threading.Event()

    def on_message(_client, _userdata, message):
        received.append(message.payload)
        if message.payload == b"last":
            last_arrived.set()

    # the gateway subscribes with a persistent session, then goes offline
    gateway = _client(
        mqtt_broker, gateway_id, clean_session=False, on_subscribe=lambda *_: subscribed.set()
    )
    gateway.subscribe(topic, qos=1)
    assert subscribed.wait(10)
    gateway.disconnect()
    gateway.loop_stop()

    # twenty commands while it is away; the broker acknowledges each one
    commander = _client(mqtt_broker, f"commander-{uuid.uuid4().hex[:8]}", clean_session=True)
    for index in range(20):
        commander.publish(topic, f"command {index}".encode(), qos=1).wait_for_publish(10)

    # back online: the queued commands come first, then one sent once it is connected
    connected = threading.Event()
    gateway = _client(
        mqtt_broker,
        gateway_id,
        clean_session=False,
        on_message=on_message,
        on_connect=lambda *_: connected.set(),
    )
    assert connected.wait(10)
    commander.publish(topic, b"last", qos=1).wait_for_publish(10)
    assert last_arrived.wait(10)
    for client in (gateway, commander):
        client.disconnect()
        client.loop_stop()

    # max_queued_messages 5 (my-broker/mosquitto.conf): the first five were kept
    assert received == [f"command {index}".encode() for index in range(5)] + [b"last"]
    print(mqtt_broker.version)


@pytest.mark.statistical(trials=3)
@pytest.mark.edgesim(scenario="my-broker.yaml", broker=RELEASES, time_scale=3)
def test_the_pipeline_delivers_on_each_release(edge_scenario, edgesim_broker):
    result = edge_scenario.run()

    # the run's result names the broker it used, e.g. "mosquitto 2.0.21 (trixie)"
    broker = result.nodes["broker"]
    assert broker["broker_version"].endswith(f"({edgesim_broker['release']})")
    assert "mosquitto.conf (edgesim added: listener 1883)" in broker["broker_config"]
    # 3 sensors publish QoS 1 once a second on lossless links: 18 readings, 1 aggregate
    assert result.metrics.node("gateway").delivered == 18
    assert [aggregate.payload["count"] for aggregate in result.arrivals] == [10]
