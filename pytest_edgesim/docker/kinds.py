"""The gateway kinds the Docker tier provides (entry points of ``pytest_edgesim.gateway_kinds``).

``docker_lockstep``: the gateway's container driven in virtual time over the lockstep
protocol (:mod:`.lockstep_gateway`). ``docker_mqtt``: the gateway's container as a real MQTT
client on a real broker, in live runs only. In a live run both start the image's MQTT
gateway. This module imports no Docker code until a gateway is started.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_edgesim.core.gateway_kinds import GatewayKind, WallClockStart

if TYPE_CHECKING:
    from pytest_edgesim.core.node import Node
    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.core.topology import GatewaySite
    from pytest_edgesim.docker.gateway import GatewayContainer


def start_gateway_container(
    spec: GatewaySpec,
    config: Mapping[str, Any],
    endpoint: Any,
    client: Any = None,
    *,
    base_dir: Path | None = None,
) -> GatewayContainer:
    """Start ``spec``'s gateway image for ``config``, connected to the broker at ``endpoint``
    (a :class:`~pytest_edgesim.live.BrokerEndpoint`), and wait until it is ready.

    The image is the project's ``edgesim/gateway``, ``docker.image`` (on the engine), or
    ``docker.build`` built (relative to ``base_dir``, the scenario's directory) as
    :func:`~.lockstep_gateway.resolve_image` does; ``docker.command``, ``environment`` and
    ``ready`` are applied as :mod:`.user_gateway` says."""
    from pytest_edgesim.docker import user_gateway
    from pytest_edgesim.docker.engine import connect
    from pytest_edgesim.docker.gateway import GatewayContainer
    from pytest_edgesim.docker.lockstep_gateway import resolve_image

    client = client or connect()
    image, _lockstep_command = resolve_image(spec, client, base_dir)
    network, host, port = endpoint.for_container()
    credentials = getattr(endpoint, "credentials", None)
    values = user_gateway.placeholder_values(spec, config, host, port, credentials)
    strategy, timeout_s = user_gateway.ready_strategy(spec, config, endpoint, client)
    return GatewayContainer.start(
        image,
        config,
        host,
        port,
        client,
        network=network,
        environment=user_gateway.container_environment(spec, values),
        command=user_gateway.container_command(spec, values),
        ready=strategy,
        ready_timeout_s=timeout_s,
        credentials=credentials,
    )


def _on_the_wall_clock(start: WallClockStart) -> GatewayContainer:
    return start_gateway_container(
        start.spec, start.config, start.endpoint, base_dir=start.base_dir
    )


def _in_lockstep(spec: GatewaySpec, site: GatewaySite) -> Node:
    from pytest_edgesim.docker.lockstep_gateway import docker_lockstep_gateway

    return docker_lockstep_gateway(spec, site)


#: ``implementation: docker`` with ``docker.mode: lockstep``
LOCKSTEP = GatewayKind(
    "docker_lockstep",
    "a container driven in virtual time over the lockstep protocol",
    needs_docker=True,
    virtual_time=_in_lockstep,
    wall_clock=_on_the_wall_clock,
)

#: ``implementation: docker`` with ``docker.mode: mqtt`` (the default)
MQTT = GatewayKind(
    "docker_mqtt",
    "a container speaking real MQTT on the wall clock",
    needs_docker=True,
    wall_clock=_on_the_wall_clock,
)
