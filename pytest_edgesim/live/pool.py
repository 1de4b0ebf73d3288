"""Gateway containers reused across live runs (the trials of a statistical test).

Starting a container costs a second or more; a reset costs one MQTT round trip. A pooled
gateway listens on a control topic of its own; between runs it is moved to the next run's
topic prefix with its queue, aggregates and counters cleared (see
:meth:`pytest_edgesim.gateway.service.GatewayService._reset`), and answers with the counters
of the run that ended once its new subscriptions are acknowledged.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pytest_edgesim.errors import EdgesimError
from pytest_edgesim.live import mqtt
from pytest_edgesim.live.mqtt import BrokerEndpoint

#: starts a container for a configuration: ``(config) -> GatewayContainer``
Starter = Callable[[Mapping[str, Any]], Any]


class PooledGateway:
    """A gateway container on loan to one run: ``stop()`` ends the run (reset to a parked
    prefix, returning the run's counters), ``remove()`` gives it back to the pool."""

    def __init__(self, pool: GatewayPool, key: str, container: Any, control_topic: str):
        self._pool = pool
        self._key = key
        self.container = container
        self.name = container.name
        self.container_id = container.container_id
        self.control_topic = control_topic
        self.counters: dict[str, int] | None = None
        self.broken = False
        self.topic_prefix = ""  # the prefix of the run it is on loan to
        self._answer: dict[str, int] | None = None
        self._answered = threading.Event()
        self._client = mqtt.connect(
            pool.endpoint,
            "gateway-control",
            subscriptions=[(control_topic + "/reply", 1)],
            on_message=self._on_reply,
        )

    def _on_reply(self, _topic: str, payload: bytes) -> None:
        self._answer = json.loads(payload)
        self._answered.set()

    def reset(self, topic_prefix: str, timeout_s: float = 10.0) -> dict[str, int]:
        """Move the gateway to ``topic_prefix``; the counters since the previous reset."""
        self.topic_prefix = topic_prefix
        return self._ask({"topic_prefix": topic_prefix}, "a reset", timeout_s)

    def report(self, timeout_s: float = 10.0) -> dict[str, int]:
        """The counters since the last reset, the gateway going on as it was."""
        return self._ask({"report": True}, "a request for its counters", timeout_s)

    def _ask(self, request: dict[str, Any], what: str, timeout_s: float) -> dict[str, int]:
        self._answered.clear()
        request = {**request, "reply_to": self.control_topic + "/reply"}
        self._client.publish(self.control_topic, json.dumps(request), qos=1)
        if not self._answered.wait(timeout_s):
            raise EdgesimError(
                f"gateway container {self.name} did not answer {what} within {timeout_s:g} s"
            )
        assert self._answer is not None
        return self._answer

    def logs(self, tail: int | str = 40) -> list[str]:
        return list(self.container.logs(tail))

    @property
    def client(self) -> Any:
        """The container's engine client: with ``container_id``, what the functions of
        :mod:`pytest_edgesim.docker.faults` take, so they work on a pooled gateway too."""
        return self.container.client

    @property
    def supported_faults(self) -> tuple[str, ...]:
        return tuple(getattr(self.container, "supported_faults", ()))

    def apply_fault(self, action: str) -> str:
        """The container's fault (stop, kill, start, pause, resume, disconnect, reconnect).
        A container started again runs the configuration it was created with, so it is
        moved back to this run's prefix (its counters then count from the start)."""
        detail: str = self.container.apply_fault(action)
        if action == "start":
            self.reset(self.topic_prefix)
        return detail

    def stop(self) -> dict[str, int] | None:
        recover = getattr(self.container, "recover", None)
        if recover is not None and not recover():  # stopped or killed by the test: not reused
            self.broken = True
            return self.counters
        try:
            self.counters = self.reset(f"edgesim/parked/{secrets.token_hex(4)}/")
        except EdgesimError:
            self.broken = True  # not given back: removed with the pool
        return self.counters

    def remove(self) -> None:
        if not self.broken:
            self._pool.give_back(self._key, self)

    def close(self) -> None:
        try:
            mqtt.disconnect(self._client)
        finally:
            self.container.remove()


class GatewayPool:
    """Idle gateway containers by configuration (everything but the topic prefix)."""

    def __init__(self, endpoint: BrokerEndpoint):
        self.endpoint = endpoint
        self._idle: dict[str, list[PooledGateway]] = {}
        self._all: list[PooledGateway] = []
        self._lock = threading.Lock()

    @staticmethod
    def key(config: Mapping[str, Any], image: str | None) -> str:
        rest = {k: v for k, v in config.items() if k not in ("topic_prefix", "control_topic")}
        return json.dumps([image, rest], sort_keys=True, default=str)

    def acquire(
        self, config: Mapping[str, Any], image: str | None, start: Starter
    ) -> PooledGateway:
        """An idle gateway for ``config`` moved to its prefix, or a new one from ``start``."""
        key = self.key(config, image)
        with self._lock:
            idle = self._idle.get(key)
            gateway = idle.pop() if idle else None
        if gateway is not None:
            gateway.counters = None
            gateway.reset(str(config.get("topic_prefix", "")))
            return gateway
        prefix = str(config.get("topic_prefix", ""))
        control_topic = f"edgesim/control/{secrets.token_hex(6)}"
        container = start({**config, "control_topic": control_topic})
        try:
            gateway = PooledGateway(self, key, container, control_topic)
            gateway.topic_prefix = prefix
        except BaseException:
            container.remove()
            raise
        self._all.append(gateway)
        return gateway

    def give_back(self, key: str, gateway: PooledGateway) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(gateway)

    def close(self) -> None:
        """Remove every container the pool started (all of them, even when one fails)."""
        errors: list[BaseException] = []
        while self._all:
            try:
                self._all.pop().close()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]
