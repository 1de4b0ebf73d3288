"""Where the broker is, and paho clients that are ready when their subscriptions are."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_edgesim.errors import EdgesimError

MessageCallback = Callable[[str, bytes], None]


class BrokerUnreachableError(EdgesimError):
    """A client could not connect (or subscribe) to the broker in time."""


@dataclass(frozen=True)
class BrokerCredentials:
    """A user name and password for the broker (on a remote engine, see
    :mod:`pytest_edgesim.docker.credentials`); the password is never shown."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BrokerEndpoint:
    """A real MQTT broker: where this process reaches it and where a gateway container does.

    ``network`` is the Docker network a container joins to reach the broker at
    ``container_host:container_port``; None means the container uses the host's network
    namespace and reaches the broker at ``host:port`` (a local ``mosquitto`` process).
    """

    host: str
    port: int
    network: str | None = None
    container_host: str | None = None
    container_port: int = 1883
    #: which broker it is, when known (``mosquitto 2.0.21 (trixie)``), and what it is
    #: configured with; a live run's broker node reports both
    version: str | None = field(default=None, compare=False)
    configuration: str | None = field(default=None, compare=False)
    #: the broker's log file, for a local ``mosquitto`` process (a container's log is read
    #: through the engine)
    log_file: str | None = None
    #: what clients must log in with; None: anonymous
    credentials: BrokerCredentials | None = None

    def for_container(self) -> tuple[str | None, str, int]:
        """``(network, host, port)`` for a gateway container."""
        if self.network is None:
            return None, self.host, self.port
        return self.network, self.container_host or self.host, self.container_port


_own_client_ids: set[str] = set()


def client_id(role: str) -> str:
    """A client id unique on a shared broker: ``edgesim-<role>-<8 hex digits>``."""
    new = f"edgesim-{role}-{secrets.token_hex(4)}"
    _own_client_ids.add(new)
    return new


def is_own_client_id(candidate: str) -> bool:
    """Whether this process made ``candidate`` (with :func:`client_id`): a client of the
    tool's, not a gateway's (see :mod:`pytest_edgesim.docker.readiness`)."""
    return candidate in _own_client_ids


def connect(
    endpoint: BrokerEndpoint,
    role: str,
    *,
    subscriptions: Sequence[tuple[str, int]] = (),
    on_message: MessageCallback | None = None,
    timeout_s: float = 10.0,
    on_connection_lost: Callable[[], None] | None = None,
) -> Any:
    """A started paho client (network loop in its own thread), connected, and subscribed to
    ``subscriptions`` (``(filter, qos)`` pairs) when it returns; it subscribes again after
    every reconnection. ``on_message(topic, payload)`` and ``on_connection_lost()`` (the
    broker closed the connection, or it broke: not a :func:`disconnect`) run in paho's
    thread."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id(role))
    ready = threading.Event()
    pending: dict[str, int | None] = {"mid": None}

    def on_connect(client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if getattr(reason, "is_failure", False):
            return
        if subscriptions:
            _result, pending["mid"] = client.subscribe(list(subscriptions))
        else:
            ready.set()

    def on_subscribe(_client: Any, _userdata: Any, mid: int, _codes: Any, _props: Any) -> None:
        if mid == pending["mid"]:
            ready.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    if on_connection_lost is not None:

        def on_disconnect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
            if getattr(reason, "is_failure", True):
                on_connection_lost()

        client.on_disconnect = on_disconnect
    if on_message is not None:
        client.on_message = lambda _c, _u, message: on_message(
            message.topic, bytes(message.payload)
        )
    client.reconnect_delay_set(min_delay=0.05, max_delay=1)  # type: ignore[arg-type]
    if endpoint.credentials is not None:
        client.username_pw_set(endpoint.credentials.username, endpoint.credentials.password)
    client.connect_async(endpoint.host, endpoint.port, keepalive=10)
    client.loop_start()
    if not ready.wait(timeout_s):
        client.loop_stop()
        raise BrokerUnreachableError(
            f"MQTT client {role!r}: no connection{' and SUBACK' if subscriptions else ''} from "
            f"the broker at {endpoint.host}:{endpoint.port} within {timeout_s:g} s"
        )
    return client


def disconnect(client: Any) -> None:
    client.disconnect()
    client.loop_stop()
