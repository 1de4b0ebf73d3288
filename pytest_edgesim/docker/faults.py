"""Faults on real containers: stop, kill, start, pause, restart, and partitions from a network.

Tests reach these through ``edge_scenario`` (``edge_scenario.kill("gateway")``...; see
"Restarts, crashes and disconnects" in ``docs/markers-and-options.md``), which calls a
container's :meth:`~pytest_edgesim.docker.container.ContainerHandle.apply_fault`; the
functions here are for tests that hold a container themselves.

Every function takes a *target*: anything with ``client`` (a ``docker.DockerClient``) and
``container_id``, such as :class:`.broker.BrokerContainer`. When the target also has
``wait_ready(timeout_s)`` (the broker's CONNACK check), functions that bring it back
(:func:`start`, :func:`restart`) return only once it answers again.

A restarted container keeps its host port only if the port was pinned when it was created:
the engine picks an ephemeral port anew on every start, and clients that reconnect to the
old one would find nothing. :func:`restart` and :func:`start` therefore refuse a container
with an ephemeral port unless ``allow_port_change=True`` (then the target's ``port`` is
updated). Start such containers with ``host_port=free_host_port()``.

A partition disconnects the container from a network and :meth:`Partition.heal` connects it
again with the same aliases. Networks made here carry the session labels (:mod:`.labels`).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import docker
from docker.errors import APIError, NotFound

from pytest_edgesim.docker.labels import resource_labels, resource_name
from pytest_edgesim.errors import FaultError

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5

__all__ = [
    "FaultError",
    "LabelledNetwork",
    "Partition",
    "create_network",
    "disconnect",
    "free_host_port",
    "kill",
    "partitioned",
    "pause",
    "paused",
    "restart",
    "start",
    "stop",
    "unpause",
]


class Target(Protocol):
    client: docker.DockerClient
    container_id: str


def free_host_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, to pin a container's published port to.

    The port is only known to be free at the moment of asking; the engine binds it soon
    after, so a collision needs another process to pick the same port in between.
    """
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def stop(target: Target, timeout_s: int = STOP_TIMEOUT_S) -> None:
    """``docker stop``: SIGTERM, then SIGKILL after ``timeout_s``; the container stays, stopped."""
    _api(target, "stop", target.container_id, timeout=timeout_s)


def kill(target: Target, signal: str = "SIGKILL") -> None:
    """Kill the container's main process (``docker kill``); it stays, stopped, until removed."""
    _api(target, "kill", target.container_id, signal=signal)
    if signal == "SIGKILL":
        _api(target, "wait", target.container_id, timeout=READY_TIMEOUT_S)


def start(
    target: Target, *, allow_port_change: bool = False, ready_timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Start a stopped or killed container again and wait until it is ready."""
    _check_ports_kept(target, allow_port_change)
    _api(target, "start", target.container_id)
    _after_start(target, ready_timeout_s)


def restart(
    target: Target,
    *,
    stop_timeout_s: int = 2,
    allow_port_change: bool = False,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> None:
    """``docker restart`` (SIGTERM, then SIGKILL after ``stop_timeout_s``), wait until ready."""
    _check_ports_kept(target, allow_port_change)
    _api(target, "restart", target.container_id, timeout=stop_timeout_s)
    _after_start(target, ready_timeout_s)


def pause(target: Target) -> None:
    """Freeze every process of the container (cgroup freezer): it holds its sockets, silent."""
    _api(target, "pause", target.container_id)


def unpause(target: Target) -> None:
    _api(target, "unpause", target.container_id)


@contextlib.contextmanager
def paused(target: Target) -> Iterator[None]:
    """The container is frozen inside the ``with`` block and thawed after it, whatever happens."""
    pause(target)
    try:
        yield
    finally:
        unpause(target)


@dataclass
class Partition:
    """A container cut off one network; :meth:`heal` puts it back with its aliases."""

    target: Target = field(repr=False)
    network: str
    aliases: tuple[str, ...]
    healed: bool = False

    def heal(self) -> None:
        """Reconnect the container to the network (once; healing twice is a no-op)."""
        if self.healed:
            return
        _api(
            self.target,
            "connect_container_to_network",
            self.target.container_id,
            self.network,
            aliases=list(self.aliases) or None,
        )
        self.healed = True


def disconnect(target: Target, network: str) -> Partition:
    """Cut the container off ``network`` (a partition) and return how to heal it.

    Its open TCP connections over that network are not closed: their packets go nowhere, as
    in a real partition, until TCP gives up or keepalives notice.
    """
    details = _api(target, "inspect_container", target.container_id)
    networks = details["NetworkSettings"]["Networks"] or {}
    attached = networks.get(network)
    if attached is None:
        by_id = [name for name, info in networks.items() if info.get("NetworkID") == network]
        if not by_id:
            raise FaultError(
                f"container {details['Name'].lstrip('/')} is not on network {network!r} "
                f"(it is on: {', '.join(networks) or 'none'})"
            )
        network, attached = by_id[0], networks[by_id[0]]
    short_id = target.container_id[:12]
    aliases = tuple(alias for alias in attached.get("Aliases") or () if alias != short_id)
    _api(target, "disconnect_container_from_network", target.container_id, network)
    return Partition(target, network, aliases)


@contextlib.contextmanager
def partitioned(target: Target, network: str) -> Iterator[Partition]:
    """The container is off ``network`` inside the ``with`` block and back after it."""
    partition = disconnect(target, network)
    try:
        yield partition
    finally:
        partition.heal()


@dataclass
class LabelledNetwork:
    """A bridge network owned by the session; remove it when done (or leave it to cleanup)."""

    client: docker.DockerClient = field(repr=False)
    name: str
    network_id: str

    def remove(self) -> None:
        with contextlib.suppress(NotFound):
            self.client.api.remove_network(self.network_id)

    def __enter__(self) -> LabelledNetwork:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


def create_network(client: docker.DockerClient, *, session: str | None = None) -> LabelledNetwork:
    """A user-defined bridge network (containers on it reach each other by name), labelled."""
    name = resource_name("network", session=session)
    created = client.api.create_network(
        name, driver="bridge", labels=resource_labels("network", session=session)
    )
    return LabelledNetwork(client, name, created["Id"])


def _api(target: Target, method: str, *args: object, **kwargs: object) -> dict:  # type: ignore[type-arg]
    try:
        result = getattr(target.client.api, method)(*args, **kwargs)
    except NotFound as error:
        raise FaultError(f"{method}: container {target.container_id[:12]} is gone") from error
    except APIError as error:
        reason = error.explanation or str(error)
        raise FaultError(f"{method} on container {target.container_id[:12]}: {reason}") from error
    return result if isinstance(result, dict) else {}


def _check_ports_kept(target: Target, allow_port_change: bool) -> None:
    if allow_port_change:
        return
    host_config = _api(target, "inspect_container", target.container_id)["HostConfig"]
    ephemeral = [
        port
        for port, bindings in (host_config.get("PortBindings") or {}).items()
        if any(binding.get("HostPort") in ("", "0", None) for binding in bindings or ())
    ]
    if ephemeral:
        raise FaultError(
            f"container {target.container_id[:12]} publishes {', '.join(ephemeral)} on an "
            "ephemeral host port, which changes when it starts again, so reconnecting clients "
            "would lose it: create it with a pinned port (e.g. host_port=free_host_port()) "
            "or pass allow_port_change=True"
        )


def _after_start(target: Target, ready_timeout_s: float) -> None:
    published_port = getattr(target, "published_port", None)
    if published_port is not None and hasattr(target, "port"):
        target.port = published_port()
    wait_ready = getattr(target, "wait_ready", None)
    if wait_ready is not None:
        wait_ready(ready_timeout_s)
