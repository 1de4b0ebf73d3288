"""The Docker tier as the pytest plugin sees it: the one module of this folder it imports.

Everything a pytest session does with the engine goes through here: asking whether an
engine answers, the client, the session's broker container and gateway containers, keeping
containers for debugging, listing what was kept and removing what the session made. Like
pytest-xdist's ``DSession``, it is loaded only when a session uses it: the plugin imports
this module inside the fixtures and hooks that need the engine, and asks whether anything
was labelled before it connects to clean up (:func:`labelled_anything`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_edgesim.docker import labels
from pytest_edgesim.docker.broker import ReadinessError
from pytest_edgesim.docker.broker_choice import BrokerChoice
from pytest_edgesim.docker.engine import connect, docker_available
from pytest_edgesim.docker.kinds import start_gateway_container

if TYPE_CHECKING:
    import docker

    from pytest_edgesim.docker.broker import BrokerContainer
    from pytest_edgesim.docker.gateway import GatewayContainer

__all__ = [
    "BrokerChoice",
    "BrokerContainer",
    "GatewayContainer",
    "ReadinessError",
    "connect",
    "docker_available",
    "end_lease",
    "gateway_isolation",
    "gateway_program",
    "kept_by_this_process",
    "labelled_anything",
    "reap_dead_sessions",
    "remove_this_session",
    "set_keep",
    "start_broker_on_own_network",
    "start_gateway_container",
]


def set_keep(keep: bool) -> bool:
    """Leave containers running after the session (``--edgesim-keep-containers``) or not;
    returns the setting it replaces."""
    return labels.set_keep(keep)


def labelled_anything() -> bool:
    """Whether this process labelled any container, network or volume."""
    return labels.session_started()


def start_broker_on_own_network(
    client: docker.DockerClient, *, keep: bool, choice: BrokerChoice | None = None
) -> tuple[BrokerContainer, str, list[Callable[[], None]]]:
    """A Mosquitto container on a labelled bridge network of its own: the container, the
    network's name, and the steps that remove both (none when ``keep``). On a local engine
    its host port is pinned, so that a test can restart it (``edge_scenario.restart(
    "broker")``) and every client finds it again."""
    from docker.errors import NotFound

    from pytest_edgesim.docker.broker import start_broker
    from pytest_edgesim.docker.engine import publish_ip
    from pytest_edgesim.docker.faults import free_host_port

    network = client.networks.create(
        labels.resource_name("network"), labels=labels.resource_labels("network"), driver="bridge"
    )
    try:
        # (a port free here is only known free on the engine's host when that is this one)
        local = publish_ip(client) == "127.0.0.1"
        container = start_broker(
            client,
            network=network.name,
            choice=choice,
            host_port=free_host_port() if local else None,
        )
    except BaseException:
        network.remove()
        raise

    def remove_network() -> None:
        with contextlib.suppress(NotFound):  # a session cleanup got there first
            network.remove()

    return container, network.name, [] if keep else [remove_network, container.remove]


def kept_by_this_process() -> list[tuple[str, str]]:
    """``(kind, name)`` of what this process kept, asked of the engine."""
    from pytest_edgesim.docker.cleanup import kept_by_this_process as kept

    return kept(connect())


def reap_dead_sessions() -> None:
    """Remove what sessions whose process is gone left on this host (not what was kept)."""
    from pytest_edgesim.docker.cleanup import reap_stale

    reap_stale(connect())


def remove_this_session() -> None:
    """Remove every container, network and volume this process labelled, and end its lease."""
    from pytest_edgesim.docker.cleanup import remove_own
    from pytest_edgesim.docker.lease import drop_lease

    try:
        remove_own(connect(), labels.session_id())
    finally:
        drop_lease()


def end_lease() -> None:
    """End this process's lease on the engine (see :mod:`.lease`)."""
    from pytest_edgesim.docker.lease import drop_lease

    drop_lease()


def gateway_launcher(
    client: docker.DockerClient, base_dir: Path | None = None
) -> Callable[[Any, Mapping[str, Any], Any], Any]:
    """``(spec, config, endpoint) -> GatewayContainer`` on ``client``; a ``docker.build``
    is relative to ``base_dir`` (the scenario's directory)."""

    def start(spec: Any, config: Mapping[str, Any], endpoint: Any) -> Any:
        return start_gateway_container(spec, config, endpoint, client, base_dir=base_dir)

    return start


def gateway_isolation(spec: Any) -> str:
    """How trials of a ``docker_mqtt`` gateway are kept apart: ``prefix`` or ``restart``."""
    from pytest_edgesim.docker.user_gateway import isolation

    return isolation(spec)


def gateway_program(spec: Any) -> str:
    """What runs in the gateway's container (image or build context, and command), the key
    under which the pool remembers whether it answers the control protocol."""
    from pytest_edgesim.docker.user_gateway import program_key

    return program_key(spec)


def proxied_endpoint(client: docker.DockerClient, endpoint: Any, seed: int = 0) -> tuple[Any, Any]:
    """An impairing proxy in front of the broker for one gateway container (a fault
    schedule that changes or cuts the gateway's link to the broker, docs/faults.md):
    ``(endpoint, impairment)``, the endpoint a container connects to (this host's proxy, at
    the host's address on the broker's network) and the proxy's controls (``update``,
    ``cut``, ``heal``, ``remove``)."""
    from dataclasses import replace

    from pytest_edgesim.docker.impairment import impair

    impairment = impair(
        (endpoint.host, endpoint.port),
        mechanism="proxy",
        seed=seed,
        name="gateway-broker",
        listen_host="0.0.0.0",
    )
    if endpoint.network is None:  # the container shares the host's network namespace
        return replace(endpoint, port=impairment.port), impairment
    network = client.networks.get(endpoint.network)
    host = network.attrs["IPAM"]["Config"][0]["Gateway"]
    return replace(endpoint, container_host=host, container_port=impairment.port), impairment
