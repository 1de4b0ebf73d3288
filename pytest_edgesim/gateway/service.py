"""The gateway as a real MQTT client: the process inside the gateway container.

It runs the same logic as the ``python_model`` gateway (:mod:`pytest_edgesim.core.aggregation`:
the same grouping, triggers and functions; the same bounded queue and drop policy) against a
real broker, on the wall clock. It needs only the standard library and paho-mqtt, so the
image stays small, and it reads its configuration as JSON (see
:mod:`pytest_edgesim.gateway.config`), never pydantic models. ``topic_prefix`` (optional) puts
every topic the gateway subscribes to or publishes on under a prefix, so that tests sharing
one broker never see each other's messages; the aggregation sees the topics without it.

Wire format (JSON payloads): a reading is ``{"value": v, "origin": name, "seq": n,
"created_at_us": t}`` (``t`` in microseconds since the Unix epoch); an aggregate carries the
aggregate's functions plus ``origin``, ``seq``, ``created_at_us`` and ``sources``. Every
forward carries ``sources``, its lineage: the readings it stands for, as runs of seqs per
origin, ``{"sensor-1": [[first_seq, last_seq], ...], ...}`` (one run ``[seq, seq]`` for a
forwarded reading; for an aggregate, one run per origin while its readings come in order,
never more runs than readings), read from the readings' own ``origin`` and ``seq``. What the
aggregation takes as a reading is the Python model's rule
(:func:`pytest_edgesim.core.aggregation.reading_value`, with the number in the object field
``aggregate.value_field``, ``value`` by default): a payload that is not JSON is read as
text. A message with no number in it is counted as ``rejected`` and logged (at most one line
per :data:`REJECT_LOG_INTERVAL_S`), and the gateway goes on. Without ``aggregate`` every
message is forwarded: a JSON object with the gateway's ``origin``, ``seq`` and
``created_at_us`` set on it (and ``sources`` naming the reading's own), any other payload
unchanged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pytest_edgesim.core.aggregation import Aggregate, Aggregator
from pytest_edgesim.core.metrics.delivery import lineage_from_json, lineage_to_json

# the configuration's names are here too, as in 0.1's gateway_service
from pytest_edgesim.gateway.config import (
    GatewayConfigError,
    config_from_spec,
    describe_value,
    is_number,
    validate_config,
)

__all__ = [
    "GatewayConfigError",
    "GatewayService",
    "config_from_spec",
    "decode_payload",
    "default_client_id",
    "validate_config",
]

log = logging.getLogger("edgesim.gateway")

#: at most one "rejected" log line per this many seconds; the line counts the ones it stands for
REJECT_LOG_INTERVAL_S = 10.0


def now_us() -> int:
    return time.time_ns() // 1000


def decode_payload(payload: bytes) -> Any:
    """A message's payload as the gateway reads it: its JSON, else the bytes themselves."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested beyond reason
        return payload


def default_client_id(name: str, persistent: bool = False) -> str:
    """The gateway's MQTT client id unless it is given one: its name, host and process. Two
    gateways of one name on one broker (two containers: the host name is the container's id)
    must not share an id, or the broker closes one connection each time the other connects.
    A ``persistent`` session's id leaves the process out, so that the gateway restarted on
    the same host finds its session again."""
    if persistent:
        return f"edgesim-gateway-{name}-{socket.gethostname()}"
    return f"edgesim-gateway-{name}-{socket.gethostname()}-{os.getpid()}"


class GatewayService:
    """Subscribe, queue, process, aggregate, forward: one gateway on a real broker."""

    def __init__(
        self,
        config: Mapping[str, Any],
        host: str,
        port: int,
        *,
        client_id: str | None = None,
        clock_us: Callable[[], int] = now_us,
        credentials: tuple[str, str] | None = None,
    ):
        """``credentials``: ``(username, password)`` for a broker that requires them."""
        validate_config(config)
        self.credentials = credentials
        self.config = config
        self.name = config["name"]
        self.host, self.port = host, port
        self.clock_us = clock_us
        self.topic_prefix = str(config.get("topic_prefix") or "")
        self._start_afresh()
        #: a topic outside any prefix on which the gateway takes ``reset`` requests
        self.control_topic: str | None = config.get("control_topic")
        self._epoch = 0  # bumped by a reset: work queued before it is dropped
        self._replies: dict[int, tuple[str, dict[str, int]]] = {}
        queue_config = config.get("queue") or {}
        capacity = int(queue_config.get("capacity", 1000))
        self.drop_policy = queue_config.get("drop", "newest")
        self.inbox: queue.Queue[tuple[int, str, bytes] | None] = queue.Queue()
        self.capacity = capacity
        #: ``rejected``: processed messages with no reading in them (aggregating gateways only)
        self.counters = {
            "received": 0,
            "processed": 0,
            "forwarded": 0,
            "dropped_overflow": 0,
            "rejected": 0,
        }
        self._next_reject_log_us = 0
        self._unlogged_rejects = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        #: set once connected and every subscription is acknowledged (SUBACK)
        self._connected = threading.Event()
        self._subscribe_mid: int | None = None
        self._threads: list[threading.Thread] = []
        self._seq = 0
        session = config.get("session") or {}
        #: MQTT's clean session flag; false: the broker keeps the session while it is away
        self.clean_session: bool = session.get("clean", True)
        self.keepalive_s: int = session.get("keepalive_s", 10)
        #: MQTT 5's session expiry interval (seconds); None: MQTT 3.1.1, no expiry
        self.session_expiry_s: int | None = session.get("expiry_s")
        self.client = self._make_client(
            client_id or default_client_id(self.name, persistent=not self.clean_session)
        )

    def _start_afresh(self) -> None:
        """Make the state a run starts from (at start and at each reset): the aggregator."""
        self.aggregator: Aggregator | None = Aggregator.from_config(self.config.get("aggregate"))

    def _filters(self) -> list[tuple[str, int]]:
        return [
            (self.topic_prefix + subscription["filter"], subscription.get("qos", 0))
            for subscription in self.config["subscribe"]
        ]

    # --- MQTT ------------------------------------------------------------------------------
    def _make_client(self, client_id: str):
        import paho.mqtt.client as mqtt

        if self.session_expiry_s is None:
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2,
                client_id=client_id,
                clean_session=self.clean_session,
            )
        else:  # the session expiry interval is MQTT 5's
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
            )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(min_delay=0.05, max_delay=1)  # type: ignore[arg-type]
        client.max_queued_messages_set(0)
        if self.credentials is not None:
            client.username_pw_set(*self.credentials)
        return client

    def _on_connect(self, client, _userdata, flags, reason_code, _properties=None) -> None:
        if getattr(reason_code, "is_failure", False):
            log.warning("%s: connection refused: %s", self.name, reason_code)
            return
        if not self.clean_session and getattr(flags, "session_present", False):
            # the broker kept the subscriptions (and queued for them): subscribing again
            # would only have it send the retained messages once more
            log.info("%s: connected to %s:%s, session resumed", self.name, self.host, self.port)
            self._connected.set()
            return
        filters = self._filters()
        if self.control_topic:
            filters.append((self.control_topic, 1))
        _result, self._subscribe_mid = client.subscribe(filters)
        log.info("%s: connected to %s:%s", self.name, self.host, self.port)

    def _on_subscribe(self, _client, _userdata, mid, _reason_codes, _properties=None) -> None:
        if mid == self._subscribe_mid:
            log.info("%s: subscribed", self.name)
            self._connected.set()
        reply = self._replies.pop(mid, None)
        if reply is not None:
            self.client.publish(reply[0], json.dumps(reply[1]), qos=1)

    def _report(self, request: Mapping[str, Any]) -> None:
        """Answer on ``reply_to`` with the counters so far, changing nothing (a run that
        reads its result while the gateway goes on)."""
        with self._lock:
            report = dict(self.counters)
        if request.get("reply_to"):
            self.client.publish(str(request["reply_to"]), json.dumps(report), qos=1)

    def _reset(self, request: Mapping[str, Any]) -> None:
        """Start afresh under another prefix (a reused container's next run): drop queued
        work and aggregates, zero the counters, move the subscriptions, then answer on
        ``reply_to`` with the counters of the run that ended (once SUBACK is in)."""
        old_filters = [topic for topic, _qos in self._filters()]
        with self._lock:
            report = dict(self.counters)
            self._epoch += 1
            with contextlib.suppress(queue.Empty):
                while True:
                    self.inbox.get_nowait()
            self.topic_prefix = str(request.get("topic_prefix", self.topic_prefix))
            self._start_afresh()
            self.counters = dict.fromkeys(self.counters, 0)
            self._seq = 0
        self.client.unsubscribe(old_filters)
        _result, mid = self.client.subscribe(self._filters())
        if request.get("reply_to"):
            self._replies[mid] = (str(request["reply_to"]), report)
        log.info("%s: reset under prefix %r", self.name, self.topic_prefix)

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties=None) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("%s: disconnected (%s); reconnecting", self.name, reason_code)

    def _on_message(self, _client, _userdata, message) -> None:
        if message.topic == self.control_topic:
            request = decode_payload(message.payload)
            if isinstance(request, dict) and request.get("report"):
                self._report(request)
            elif isinstance(request, dict):
                self._reset(request)
            else:
                log.warning("%s: ignoring a control message that is not an object", self.name)
            return
        with self._lock:
            self.counters["received"] += 1
            if self.inbox.qsize() >= self.capacity:
                self.counters["dropped_overflow"] += 1
                if self.drop_policy == "newest":
                    return
                with contextlib.suppress(queue.Empty):
                    self.inbox.get_nowait()
            topic = message.topic.removeprefix(self.topic_prefix)
            self.inbox.put((self._epoch, topic, bytes(message.payload)))

    # --- processing -----------------------------------------------------------------------
    def _processing_delay_s(self) -> float:
        delay = self.config.get("processing_delay_us") or {"distribution": "constant", "value": 0}
        if delay.get("distribution", "constant") == "constant":
            return delay.get("value", 0) / 1e6
        import random  # wall-clock tier only: the statistical tier is not bit-reproducible

        kind = delay["distribution"]
        if kind == "uniform":
            return random.uniform(delay["low"], delay["high"]) / 1e6
        if kind == "exponential":
            return random.expovariate(1.0 / delay["mean"]) / 1e6
        return max(0.0, random.gauss(delay["mean"], delay["stddev"])) / 1e6

    def _worker(self) -> None:
        while True:
            item = self.inbox.get()
            if item is None:
                return
            epoch, topic, payload = item
            pause = self._processing_delay_s()
            if pause:
                time.sleep(pause)
            with self._lock:
                if epoch != self._epoch:
                    continue  # queued before a reset
                self.counters["processed"] += 1
                try:
                    self._process(topic, payload)
                except Exception as error:  # one message must never stop the worker
                    self._reject(topic, f"failed: {error!r}", exc_info=True)

    def _process(self, topic: str, payload: bytes) -> None:
        reading = decode_payload(payload)
        if self.aggregator is None:
            if isinstance(reading, dict):
                created_at_us = reading.get("created_at_us")
                sources = _lineage(reading)
                self._publish(reading, created_at_us if is_number(created_at_us) else None, sources)
            else:
                self._send(payload)
            return
        value = self.aggregator.value_of(reading)
        if value is None:
            self._reject(
                topic,
                f"no number in {describe_value(reading)} (expected a number, numeric text, "
                f'or an object with a numeric "{self.aggregator.value_field}")',
            )
            return
        origin = str(reading.get("origin", "")) if isinstance(reading, dict) else ""
        lineage = _lineage(reading) if isinstance(reading, dict) else None
        aggregate = self.aggregator.add(self.clock_us(), topic, origin, value, None, lineage)
        if aggregate is not None:
            self._publish_aggregate(aggregate)

    def _reject(self, topic: str, reason: str, exc_info: bool = False) -> None:
        """Count a message the gateway could not use; log it unless a line went out less
        than :data:`REJECT_LOG_INTERVAL_S` ago (the next line counts the ones left out)."""
        self.counters["rejected"] += 1
        now = self.clock_us()
        if now < self._next_reject_log_us:
            self._unlogged_rejects += 1
            return
        unlogged = self._unlogged_rejects
        more = f" ({unlogged} more rejected since the last such line)" if unlogged else ""
        log.warning(
            "%s: rejected a message on %s: %s%s", self.name, topic, reason, more, exc_info=exc_info
        )
        self._next_reject_log_us = now + int(REJECT_LOG_INTERVAL_S * 1e6)
        self._unlogged_rejects = 0

    def _windows(self) -> None:
        assert self.aggregator is not None and self.aggregator.window is not None
        while not self._stopping.is_set():
            now = self.clock_us()
            end = (now // self.aggregator.window + 1) * self.aggregator.window
            if self._stopping.wait((end - now) / 1e6):
                return
            with self._lock:
                for aggregate in self.aggregator.close_window(end):
                    self._publish_aggregate(aggregate)

    def _publish_aggregate(self, aggregate: Aggregate) -> None:
        assert self.aggregator is not None
        self._publish(aggregate.payload(self.aggregator.group_by), None, aggregate.sources)

    def _publish(
        self,
        payload: dict[str, Any],
        created_at_us: float | None,
        sources: Mapping[str, list[list[int]]] | None,
    ) -> None:
        payload.update(
            origin=self.name,
            seq=self._seq + 1,
            created_at_us=created_at_us if created_at_us is not None else self.clock_us(),
        )
        if sources:  # (readings that name no origin and seq leave it out)
            payload["sources"] = sources
        self._send(json.dumps(payload).encode())

    def _send(self, payload: bytes) -> None:
        """Publish one forward; ``seq`` numbers every forward, stamped or passed on as is."""
        forward = self.config["forward"]
        topic = self.topic_prefix + forward["topic"]
        self.client.publish(topic, payload, qos=forward.get("qos", 0))
        self._seq += 1
        self.counters["forwarded"] += 1

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, connect_timeout_s: float = 10.0) -> None:
        if self.session_expiry_s is None:
            self.client.connect_async(self.host, self.port, keepalive=self.keepalive_s)
        else:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.session_expiry_s
            self.client.connect_async(
                self.host,
                self.port,
                keepalive=self.keepalive_s,
                clean_start=self.clean_session,
                properties=properties,
            )
        self.client.loop_start()
        self._spawn(self._worker)
        for task in self._background_tasks():
            self._spawn(task)
        if not self._connected.wait(connect_timeout_s):
            raise TimeoutError(
                f"gateway {self.name}: no connection to the broker at {self.host}:{self.port} "
                f"within {connect_timeout_s:g}s"
            )

    def _background_tasks(self) -> list[Callable[[], None]]:
        """What runs beside the worker until the service stops: closing aggregate windows."""
        if self.aggregator is not None and self.aggregator.window is not None:
            return [self._windows]
        return []

    def _spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"{self.name}-{target.__name__}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait_until_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def stop(self) -> None:
        self._stopping.set()
        self.inbox.put(None)
        for thread in self._threads:
            thread.join(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()


def _lineage(reading: Mapping[str, Any]) -> dict[str, list[list[int]]] | None:
    """The readings a message stands for: the ``sources`` another gateway wrote in it, else
    its own ``origin`` and ``seq``; None when it names neither."""
    sources = lineage_from_json(reading.get("sources"))
    if sources is not None:
        return lineage_to_json(sources)
    origin, seq = reading.get("origin"), reading.get("seq")
    if isinstance(origin, str) and origin and type(seq) is int:
        return {origin: [[seq, seq]]}
    return None
