"""Connecting to the Docker engine the way the ``docker`` CLI would.

Resolution order: ``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``), then the
context named by ``DOCKER_CONTEXT``, then ``currentContext`` in ``$DOCKER_CONFIG/config.json``
(default ``~/.docker``), then the local socket. :func:`published_host` says where a port
published by a container is reachable from this process: the loopback address for a local
engine, the engine's host name for ``tcp://`` and ``ssh://`` engines, or
``$EDGESIM_PUBLISHED_HOST`` when neither is right (e.g. pytest itself in a container).
"""

from __future__ import annotations

import json
import os
import weakref
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import docker
from docker.context import ContextAPI
from docker.errors import DockerException
from docker.tls import TLSConfig

from pytest_edgesim.errors import EdgesimError

PUBLISHED_HOST_ENV = "EDGESIM_PUBLISHED_HOST"
LOCAL_SCHEMES = ("unix", "npipe", "http+unix")

_client_urls: weakref.WeakKeyDictionary[docker.DockerClient, str] = weakref.WeakKeyDictionary()


class DockerUnavailableError(EdgesimError):
    """No Docker engine could be reached (the message says where we looked and why)."""


@dataclass(frozen=True)
class Endpoint:
    """Where the engine is: its URL, TLS settings, and which setting named it."""

    url: str
    tls: TLSConfig | bool
    source: str


def current_context_name() -> str:
    """``$DOCKER_CONTEXT``, else ``currentContext`` in the docker CLI config, else ``default``."""
    name = os.environ.get("DOCKER_CONTEXT")
    if name:
        return name
    config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        config = json.loads((config_dir / "config.json").read_text())
    except (OSError, ValueError):
        return "default"
    name = config.get("currentContext") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else "default"


def resolve_endpoint() -> Endpoint:
    """The engine the docker CLI would talk to, without connecting to it."""
    docker_host = os.environ.get("DOCKER_HOST")
    if docker_host:
        tls_verify = bool(os.environ.get("DOCKER_TLS_VERIFY"))
        return Endpoint(docker_host, tls_verify, "DOCKER_HOST")
    name = current_context_name()
    if name == "default":
        return Endpoint(docker.constants.DEFAULT_UNIX_SOCKET, False, "the default socket")
    try:
        context = ContextAPI.get_context(name)
    except DockerException as error:
        raise DockerUnavailableError(f"cannot read docker context {name!r}: {error}") from error
    if context is None or not context.Host:
        raise DockerUnavailableError(
            f"docker context {name!r} (from DOCKER_CONTEXT or ~/.docker/config.json) does not "
            "exist; list contexts with `docker context ls`"
        )
    return Endpoint(context.Host, context.TLSConfig or False, f"docker context {name!r}")


def connect(timeout_s: float = 60.0, *, reap: bool = True) -> docker.DockerClient:
    """A client for the engine :func:`resolve_endpoint` names; raises if it does not answer.

    The first connection in a process also reaps what dead sessions left (``reap``), and
    from then on the first resource the process labels takes its lease (:mod:`.lease`).
    """
    endpoint = resolve_endpoint()
    try:
        if endpoint.source == "DOCKER_HOST":
            client = docker.from_env(timeout=int(timeout_s))
        else:
            client = docker.DockerClient(
                base_url=endpoint.url, tls=endpoint.tls, timeout=int(timeout_s)
            )
    except DockerException as error:
        raise DockerUnavailableError(
            f"cannot reach the Docker engine at {endpoint.url} ({endpoint.source}): {error}"
        ) from error
    _client_urls[client] = endpoint.url
    if reap:
        from pytest_edgesim.docker import labels
        from pytest_edgesim.docker.cleanup import reap_stale_once
        from pytest_edgesim.docker.lease import ensure_lease

        reap_stale_once(client)
        labels.set_lease_provider(lambda: ensure_lease(lambda: connect(timeout_s, reap=False)))
    return client


def docker_available(timeout_s: float = 5.0) -> tuple[bool, str]:
    """``(True, description)`` if an engine answers a ping, else ``(False, reason)``."""
    try:
        client = connect(timeout_s)
        client.ping()
        version = client.version().get("Version", "?")
    except (DockerUnavailableError, DockerException, OSError) as error:
        return False, str(error)
    url = _client_urls.get(client, "?")
    client.close()
    return True, f"Docker {version} at {url}"


def published_host(client: docker.DockerClient) -> str:
    """The address at which ports that containers publish on ``client``'s engine are reached."""
    override = os.environ.get(PUBLISHED_HOST_ENV)
    if override:
        return override
    url = _client_urls.get(client) or str(client.api.base_url)
    return host_of_engine_url(url)


def publish_ip(client: docker.DockerClient) -> str:
    """The host IP to bind published ports to: loopback for a local engine, else all."""
    host = published_host(client)
    return "127.0.0.1" if host in ("127.0.0.1", "localhost", "::1") else "0.0.0.0"


class NoPublishedPortError(EdgesimError):
    """A container's port is not published: the message says why (exited, or no binding)."""


def published_port(client: docker.DockerClient, container_id: str, container_port: int) -> int:
    """The host port that ``container_port/tcp`` of a started container is published on.

    A container that exits at once (a bad configuration, say) loses its bindings before
    anyone reads them, so when there is no binding the error says whether the container
    exited and with which code, which is what the user needs to know.
    """
    inspected = client.api.inspect_container(container_id)
    bindings = (inspected["NetworkSettings"]["Ports"] or {}).get(f"{container_port}/tcp") or []
    if bindings:
        return int(bindings[0]["HostPort"])
    state = inspected.get("State") or {}
    status = state.get("Status")
    if status not in ("running", "created"):
        raise NoPublishedPortError(
            f"{status} with exit code {state.get('ExitCode')} before its port "
            f"{container_port}/tcp was published"
        )
    raise NoPublishedPortError(f"has no published port for {container_port}/tcp")


def host_of_engine_url(url: str) -> str:
    """``127.0.0.1`` for a socket or pipe, else the host name in ``tcp://``/``ssh://`` URLs."""
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    if parts.scheme in LOCAL_SCHEMES or parts.hostname in (None, "localhost", "localnpipe"):
        return "127.0.0.1"
    return parts.hostname
