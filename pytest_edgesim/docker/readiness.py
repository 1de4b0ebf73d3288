"""When a gateway container is ready: the wait strategies of a gateway's ``docker.ready``.

As testcontainers' wait strategies, each strategy answers one question, asked again every
few milliseconds until it says yes, the container exits, or the timeout passes:

- ``log``: has a line of the container's output (since it started) matched a regex?
- ``port``: does a TCP port accept connections at the container's address?
- ``command``: does a command run inside the container (``docker exec``) exit 0?
- ``subscribed``: has the broker logged a subscription, by a client that is none of this
  process's own, that covers each of the gateway's ``subscribe`` filters (under its prefix)?

``subscribed`` reads the broker's log: Mosquitto logs every SUBSCRIBE as
``CLIENT-ID QOS FILTER`` with ``log_type subscribe`` (the project's broker image and the
local ``mosquitto`` process are configured so), after it has added the subscription and
before it sends the SUBACK, so a message published once the line is seen reaches the
gateway. MQTT gives a client no way to see another's subscriptions, and a probe message
would feed the gateway a reading it would count; the log needs no cooperation.

A container that never becomes ready is a :class:`GatewayNotReadyError`: a set-up error
naming the gateway, the strategy and the container's last log lines.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_edgesim.docker.broker import ReadinessError
from pytest_edgesim.errors import SetupError
from pytest_edgesim.live.mqtt import is_own_client_id

if TYPE_CHECKING:
    import docker

    from pytest_edgesim.live.mqtt import BrokerEndpoint

POLL_INTERVAL_S = 0.01
_MARK_EARLY_S = 0.05
#: at most this many of the broker's newest lines are read at a time (a gateway's
#: subscription is among the lines of the last moments)
_BROKER_TAIL_LINES = 2000
#: ``command`` and ``port`` cost an exec or a connection: asked less often
SLOW_POLL_INTERVAL_S = 0.1


class GatewayNotReadyError(ReadinessError, SetupError):
    """A gateway container did not become ready (the message names the gateway, the wait
    strategy and ends with the container's last log lines): a set-up error, not a failed
    trial."""


@dataclass
class WaitStrategy:
    """One way to tell that a container is ready; ``mark`` before each (re)start."""

    def describe(self) -> str:
        raise NotImplementedError

    def mark(self, container: Any) -> None:
        """Remember where the container's (and the broker's) logs stand before a start."""

    def ready(self, container: Any) -> bool:
        raise NotImplementedError

    @property
    def poll_interval_s(self) -> float:
        return POLL_INTERVAL_S


@dataclass
class LogLine(WaitStrategy):
    """A line of the container's output since the start matches ``pattern``."""

    pattern: str
    _skip: int = 0

    def describe(self) -> str:
        return f"ready: {{log: {self.pattern!r}}} (a line of its output matching it)"

    def mark(self, container: Any) -> None:
        self._skip = len(container.logs("all"))

    def ready(self, container: Any) -> bool:
        regex = re.compile(self.pattern)
        return any(regex.search(line) for line in container.logs("all")[self._skip :])


@dataclass
class PortOpen(WaitStrategy):
    """TCP ``port`` accepts a connection at the container's address on its network (the
    loopback address for a container in the host's network)."""

    port: int

    def describe(self) -> str:
        return f"ready: {{port: {self.port}}} (the port accepting TCP connections)"

    @property
    def poll_interval_s(self) -> float:
        return SLOW_POLL_INTERVAL_S

    def ready(self, container: Any) -> bool:
        address = container_address(container)
        if address is None:
            return False
        try:
            with socket.create_connection((address, self.port), timeout=0.5):
                return True
        except OSError:
            return False


@dataclass
class CommandSucceeds(WaitStrategy):
    """``command`` run inside the container exits 0."""

    command: Sequence[str]

    def describe(self) -> str:
        return f"ready: {{command: {list(self.command)}}} (exit status 0 inside the container)"

    @property
    def poll_interval_s(self) -> float:
        return SLOW_POLL_INTERVAL_S

    def ready(self, container: Any) -> bool:
        from docker.errors import APIError

        try:
            exec_id = container.client.api.exec_create(container.container_id, list(self.command))
            container.client.api.exec_start(exec_id)
            return container.client.api.exec_inspect(exec_id).get("ExitCode") == 0
        except APIError:
            return False  # not running yet, or the program is not in the image: asked again


@dataclass
class Subscribed(WaitStrategy):
    """The broker has logged subscriptions covering every one of ``filters`` by one client
    that is not this process's own (the tool's clients subscribe to the same filters)."""

    filters: Sequence[str]
    broker_log: BrokerLog
    _since: Any = None

    def describe(self) -> str:
        return (
            f"ready: subscribed (the broker logging a subscription to {', '.join(self.filters)} "
            "by a client of the gateway's)"
        )

    def mark(self, container: Any) -> None:
        self._since = self.broker_log.mark()

    def ready(self, container: Any) -> bool:
        covered: dict[str, set[str]] = {}
        for client_id, subscription in self.broker_log.subscriptions(self._since):
            if is_own_client_id(client_id):
                continue
            mine = covered.setdefault(client_id, set())
            mine.update(f for f in self.filters if filter_covers(subscription, f))
            if len(mine) == len(self.filters):
                return True
        return False


@dataclass
class BrokerLog:
    """The broker's log lines from a mark on: a container's (by name) or a file's."""

    read_since: Callable[[Any], list[str]]
    mark: Callable[[], Any]
    _subscribe_line: re.Pattern[str] = field(
        default=re.compile(r"(?:^|\s)(\S+) ([0-2]) (\S.*)$"), repr=False
    )

    def subscriptions(self, since: Any) -> list[tuple[str, str]]:
        """``(client id, filter)`` of every subscription logged since ``since``."""
        found = []
        for line in self.read_since(since):
            match = self._subscribe_line.search(line.rstrip())
            if match:
                found.append((match.group(1), match.group(3)))
        return found

    @classmethod
    def of(cls, endpoint: BrokerEndpoint, client: docker.DockerClient) -> BrokerLog | None:
        """The log of the broker at ``endpoint``, or None when it cannot be read (an
        external broker)."""
        if endpoint.log_file is not None:
            return cls.of_file(Path(endpoint.log_file))
        if endpoint.network is not None and endpoint.container_host is not None:
            return cls.of_container(client, endpoint.container_host)
        return None

    @classmethod
    def of_container(cls, client: docker.DockerClient, container: str) -> BrokerLog:
        def read_since(since: Any) -> list[str]:
            # the tail keeps each read short however long the session's log has grown
            raw = client.api.logs(container, since=since, tail=_BROKER_TAIL_LINES)
            return raw.decode(errors="replace").splitlines()

        # The engine stamps each line with its own clock, which a remote engine's may not
        # share with this machine: marks are on the engine's clock. A mark a little early
        # only rereads a line or two, and no gateway's subscription is that recent.
        offset_s = engine_time(client) - time.time()
        return cls(read_since, lambda: time.time() + offset_s - _MARK_EARLY_S)

    @classmethod
    def of_file(cls, path: Path) -> BrokerLog:
        def read_since(offset: Any) -> list[str]:
            with path.open("rb") as log:
                log.seek(int(offset))
                return log.read().decode(errors="replace").splitlines()

        return cls(read_since, lambda: path.stat().st_size if path.exists() else 0)


def engine_time(client: docker.DockerClient) -> float:
    """The engine's clock now, in seconds since the epoch (its ``SystemTime``)."""
    stamp = str(client.info()["SystemTime"])  # RFC 3339 with up to nine decimals
    whole, _dot, fraction = stamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc).timestamp()
    return seconds + float(f"0.{fraction or 0}")


def filter_covers(subscription: str, wanted: str) -> bool:
    """Whether every topic ``wanted`` matches is matched by ``subscription`` (both filters)."""
    have, need = subscription.split("/"), wanted.split("/")
    for index, level in enumerate(have):
        if level == "#":
            return True
        if index >= len(need) or need[index] == "#":
            return False
        if level != "+" and level != need[index]:
            return False
    return len(have) == len(need)


def container_address(container: Any) -> str | None:
    """The container's IP address on its (first) network; the loopback address in the
    host's network; None before it has one."""
    attrs = container.client.api.inspect_container(container.container_id)
    if attrs.get("HostConfig", {}).get("NetworkMode") == "host":
        return "127.0.0.1"
    networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
    for network in networks.values():
        if network.get("IPAddress"):
            return str(network["IPAddress"])
    return None


def wait_ready(container: Any, strategy: WaitStrategy, timeout_s: float, gateway: str) -> float:
    """Wait until ``strategy`` says ``container`` is ready; the seconds it took.

    Raises :class:`GatewayNotReadyError` when the container exits first or ``timeout_s``
    passes, naming the gateway and the strategy, with the container's last log lines.
    """
    started = time.monotonic()
    while True:
        if strategy.ready(container):
            return time.monotonic() - started
        state = container.state()
        if state.get("Status") not in ("running", "created"):
            raise GatewayNotReadyError(
                f"gateway {gateway!r} (container {container.name}) {state.get('Status')} with "
                f"exit code {state.get('ExitCode')} before it was ready; waited for "
                f"{strategy.describe()}",
                container.logs(),
            )
        if time.monotonic() - started >= timeout_s:
            raise GatewayNotReadyError(
                f"gateway {gateway!r} (container {container.name}) was not ready within "
                f"{timeout_s:g} s; waited for {strategy.describe()}",
                container.logs(),
            )
        time.sleep(strategy.poll_interval_s)
