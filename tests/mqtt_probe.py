"""A paho client for the impairment and fault tests: everything it sees can be awaited."""

from __future__ import annotations

import itertools
import json
import os
import queue
import threading
import time
from dataclasses import dataclass

import docker
import paho.mqtt.client as mqtt
from docker.models.containers import Container
from paho.mqtt.enums import CallbackAPIVersion

from pytest_edgesim.docker.labels import resource_labels, resource_name

_ids = itertools.count(1)


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    arrived_ns: int


class Probe:
    """A connected paho client on its own loop thread.

    ``connects`` and ``disconnects`` count CONNACKs and lost connections (await them with
    :meth:`wait_connects` / :meth:`wait_disconnects`); arriving messages go to a queue.
    ``reconnect_s`` is paho's automatic reconnect delay. ``on_connect_subscribe`` topics are
    (re)subscribed on every CONNACK, as a client that survives broker restarts must.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        name: str = "probe",
        client_id: str | None = None,
        clean_session: bool = True,
        reconnect_s: float = 0.05,
        keepalive_s: int = 60,
        subscribe: tuple[tuple[str, int], ...] = (),
    ):
        self.client_id = client_id or f"edgesim-{name}-{os.getpid()}-{next(_ids)}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=clean_session
        )
        self.client.reconnect_delay_set(min_delay=reconnect_s, max_delay=reconnect_s)  # type: ignore[arg-type]
        self.messages: queue.Queue[Received] = queue.Queue()
        self._subscriptions = subscribe
        self._changed = threading.Condition()
        self.connects = 0
        self.disconnects = 0
        self.subscribed = 0
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=keepalive_s)
        self.client.loop_start()
        if not self.wait_subscribed(len(subscribe), 10) or not self.wait_connects(1, 10):
            self.close()
            raise TimeoutError(f"{self.client_id} did not connect to {host}:{port}")

    def _on_connect(self, client: mqtt.Client, userdata: object, *args: object) -> None:
        for topic, qos in self._subscriptions:
            client.subscribe(topic, qos)
        with self._changed:
            self.connects += 1
            self._changed.notify_all()

    def _on_disconnect(self, *args: object) -> None:
        with self._changed:
            self.disconnects += 1
            self._changed.notify_all()

    def _on_subscribe(self, *args: object) -> None:
        with self._changed:
            self.subscribed += 1
            self._changed.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.messages.put(
            Received(message.topic, message.payload, message.qos, time.monotonic_ns())
        )

    def _wait(self, attribute: str, count: int, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: getattr(self, attribute) >= count, timeout_s)

    def wait_connects(self, count: int, timeout_s: float) -> bool:
        return self._wait("connects", count, timeout_s)

    def wait_disconnects(self, count: int, timeout_s: float) -> bool:
        return self._wait("disconnects", count, timeout_s)

    def wait_subscribed(self, count: int, timeout_s: float) -> bool:
        return self._wait("subscribed", count, timeout_s)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        before = self.subscribed
        self.client.subscribe(topic, qos)
        if not self.wait_subscribed(before + 1, 10):
            raise TimeoutError(f"no SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos)

    def receive(self, timeout_s: float = 10.0) -> Received:
        return self.messages.get(timeout=timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stamped(sequence: int) -> bytes:
    """A payload carrying its send time, so the receiver can measure the one-way delay."""
    return f"{sequence}:{time.monotonic_ns()}".encode()


def delay_s(message: Received) -> float:
    """Seconds from :func:`stamped` to arrival (same process, same monotonic clock)."""
    sent_ns = int(message.payload.split(b":")[1])
    return (message.arrived_ns - sent_ns) / 1e9


def wait_for_log_line(container: Container, text: bytes, timeout_s: float) -> bool:
    """Whether the container writes a line containing ``text`` within ``timeout_s``."""
    seen = threading.Event()

    def follow() -> None:
        for line in container.logs(stream=True, follow=True):
            if text in line:
                seen.set()
                return

    threading.Thread(target=follow, daemon=True).start()
    return seen.wait(timeout_s)


def reading(value: float, origin: str = "t1") -> bytes:
    """A sensor reading in the gateway's wire format."""
    return json.dumps({"value": value, "origin": origin, "seq": int(value)}).encode()


def start_passthrough_gateway(
    client: docker.DockerClient,
    image: str,
    *,
    session: str,
    prefix: str,
    broker_host: str,
    broker_port: int = 1883,
    network: str | None = None,
    extra_hosts: dict[str, str] | None = None,
) -> Container:
    """A gateway container forwarding ``PREFIX/sensors/#`` to ``PREFIX/cloud/gw`` unchanged.

    Returns once it is connected and subscribed (it prints ``ready``); labelled with
    ``session``, so the session's cleanup removes it if the caller does not.
    """
    config = {
        "name": "gw",
        "topic_prefix": f"{prefix}/",
        "subscribe": [{"filter": "sensors/#", "qos": 1}],
        "aggregate": None,
        "queue": {"capacity": 100, "drop": "newest"},
        "forward": {"topic": "cloud/gw", "qos": 1},
    }
    container = client.containers.run(
        image,
        detach=True,
        name=resource_name("gateway", session=session),
        labels=resource_labels("gateway", session=session),
        network=network,
        extra_hosts=extra_hosts,
        environment={
            "EDGESIM_GATEWAY_CONFIG": json.dumps(config),
            "EDGESIM_BROKER_HOST": broker_host,
            "EDGESIM_BROKER_PORT": str(broker_port),
        },
    )
    if not wait_for_log_line(container, b"ready", 30):
        logs = container.logs().decode(errors="replace")
        container.remove(force=True)
        raise TimeoutError(f"the gateway did not get ready:\n{logs}")
    return container
