"""Gateways in containers driven in virtual time (``implementation: docker``,
``docker: {mode: lockstep}``).

The container runs a lockstep node: for the project's gateway image, the gateway logic
(``python3 -m pytest_edgesim.gateway.lockstep_node``, not the image's MQTT command); for a
user's image (``docker.image``), the image's own command, which serves the protocol with the
SDK on port 7883. The coordinator connects to the published port and drives the node with
:class:`~pytest_edgesim.lockstep.host.SocketHost`. Every container is labelled (see
:mod:`pytest_edgesim.docker.labels`) and removed when the run closes or fails, unless the
session keeps its containers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_edgesim.docker.container import PublishedContainer
from pytest_edgesim.lockstep.host import HostedGateway, LockstepError, SocketHost, hosted_gateway
from pytest_edgesim.lockstep.protocol import DEFAULT_PORT
from pytest_edgesim.lockstep.sdk import PORT_ENV

if TYPE_CHECKING:
    import docker

    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.core.topology import GatewaySite

GATEWAY_COMMAND = ["python3", "-m", "pytest_edgesim.gateway.lockstep_node"]
#: serves the logic named after it (a user's ``module:Name``)
LOGIC_COMMAND = ["python3", "-m", "pytest_edgesim.lockstep"]
#: the official base a ``docker.build`` context expects (the local Debian base without one)
BUILD_BASE = "python:3.12-slim"
ROLE = "lockstep-node"


class NodeContainer(PublishedContainer):
    """A running lockstep node container: where to reach it, its logs, removing it."""

    @classmethod
    def start(
        cls,
        image: str,
        client: docker.DockerClient | None = None,
        *,
        command: list[str] | None = None,
        environment: dict[str, str] | None = None,
        session: str | None = None,
    ) -> NodeContainer:
        """Create and start a node container from ``image`` with its port published."""
        from pytest_edgesim.docker.engine import (
            NoPublishedPortError,
            connect,
            publish_ip,
            published_host,
            published_port,
        )
        from pytest_edgesim.docker.labels import resource_labels, resource_name
        from pytest_edgesim.docker.limits import container_limits

        client = client or connect()
        name = resource_name(ROLE, session=session)
        container = client.containers.create(
            image,
            command=command,
            name=name,
            labels=resource_labels(ROLE, session=session),
            environment={PORT_ENV: str(DEFAULT_PORT), **(environment or {})},
            ports={f"{DEFAULT_PORT}/tcp": (publish_ip(client), None)},
            **container_limits(),
        )
        node = cls(container.id, name, published_host(client), 0, client)
        try:
            container.start()
            try:
                node.port = published_port(client, container.id, DEFAULT_PORT)
            except NoPublishedPortError as error:
                raise LockstepError(name, f"the container {error}", log_tail=node.logs()) from None
        except BaseException:
            node.remove()
            raise
        return node

    def socket_host(self, *, timeout_s: float = 30.0, owned: bool = True) -> SocketHost:
        """A host driving this container's node; ``owned``: remove the container with it."""
        return ContainerHost(self, timeout_s=timeout_s, owned=owned)


class ContainerHost(SocketHost):
    """A :class:`SocketHost` whose errors carry the container's logs, and which removes the
    container when the run closes or fails (when it owns it)."""

    def __init__(self, container: NodeContainer, *, timeout_s: float, owned: bool):
        super().__init__(
            (container.host, container.port),
            timeout_s=timeout_s,
            connect_timeout_s=max(timeout_s, 30.0),
            logs=container.logs,
            alive=container.alive,
        )
        self.container = container
        self.owned = owned

    def fail(self, problem: str) -> LockstepError:
        error = super().fail(f"{problem} (container {self.container.name})")
        if self.owned:
            self.container.remove()
        return error

    def close(self) -> dict[str, Any] | None:
        try:
            return super().close()
        finally:
            if self.owned:
                self.container.remove()


def resolve_image(
    spec: GatewaySpec, client: docker.DockerClient, base_dir: Path | None = None
) -> tuple[str, list[str] | None]:
    """The image to run for ``spec`` and the command (None: the image's own).

    ``docker.build`` names a build context (relative to the scenario's directory) whose
    Dockerfile takes ``ARG BASE_IMAGE``; it is built like the project's images, on the same
    base, with the pytest_edgesim source (the SDK) copied in as ``src/``, and cached by
    content, as ``edgesim-user/<directory>`` (never one of the project's images).
    ``docker.image`` names an image already on the engine (or a project image). Neither:
    the project's gateway image with its lockstep entry point. A missing build context or
    image is an :class:`~pytest_edgesim.docker.images.ImageError` naming the gateway. A
    gateway with a ``logic:`` of the user's and no image of its own runs the image built
    with the user's package (:mod:`.logic_image`), serving that logic.
    """
    from pytest_edgesim.docker.images import (
        ImageError,
        ensure_image,
        image_specs,
        require_image,
        user_image_spec,
    )

    settings = spec.docker
    if settings is not None and settings.build is not None:
        context = Path(settings.build)
        if not context.is_absolute() and base_dir is not None:
            context = base_dir / context
        if not (context / "Dockerfile").is_file():
            raise ImageError(
                f"gateway {spec.name!r}: docker.build {settings.build!r} is not a directory "
                f"with a Dockerfile (looked in {context})"
            )
        return ensure_image(user_image_spec(context, BUILD_BASE), client), None
    image = settings.image if settings is not None else None
    if image is None and spec.logic is not None:
        from pytest_edgesim.docker.logic_image import ensure_logic_image

        image = ensure_logic_image(spec.logic, client, base_dir)
        return image, [*LOGIC_COMMAND, spec.logic]
    if image is None:
        return ensure_image("gateway", client), list(GATEWAY_COMMAND)
    if image in image_specs():
        return ensure_image(image, client), None
    return require_image(client, image, f"gateway {spec.name!r}"), None


def docker_lockstep_gateway(spec: GatewaySpec, site: GatewaySite) -> HostedGateway:
    """Start the gateway's container and host its logic over the container's socket.

    A session that keeps its containers (``--edgesim-keep-containers``) leaves it running.
    """
    from pytest_edgesim.docker.engine import connect
    from pytest_edgesim.docker.labels import keeping
    from pytest_edgesim.gateway.config import config_from_spec, logic_config

    client = connect()
    image, command = resolve_image(spec, client, site.scenario.base_dir)
    environment = dict(spec.docker.environment) if spec.docker is not None else {}
    container = NodeContainer.start(image, client, command=command, environment=environment)
    keep = keeping()
    try:
        node = hosted_gateway(
            spec,
            site,
            container.socket_host(owned=not keep),
            config_from_spec(spec) if spec.logic is None else logic_config(spec),
            DockerLockstepGateway,
        )
    except BaseException:
        if not keep:
            container.remove()
        raise
    return node


class DockerLockstepGateway(HostedGateway):
    """A hosted gateway whose logic runs in a container (it only says so in its summary)."""

    implementation = "docker:lockstep"
