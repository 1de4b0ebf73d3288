"""A Mosquitto broker in a labelled container, ready when it answers an MQTT CONNECT.

Readiness is a real protocol exchange: a raw MQTT 3.1.1 CONNECT on a plain socket, answered
by a CONNACK. A raw packet needs no client thread and no paho import, and it is retried
every few milliseconds, so the broker is used the moment it listens. If the container
exits or the timeout passes first, :class:`ReadinessError` carries its last log lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker

from pytest_edgesim.docker.broker_choice import (
    MQTT_PORT,
    BrokerChoice,
    broker_image,
    describe_version,
    launch_settings,
)
from pytest_edgesim.docker.container import PublishedContainer
from pytest_edgesim.docker.credentials import (
    AUTH_CONFIG,
    auth_archive,
    authenticated_config,
    password_entry,
    remote_mode,
    session_credentials,
)
from pytest_edgesim.docker.engine import (
    NoPublishedPortError,
    publish_ip,
    published_host,
    published_port,
)
from pytest_edgesim.docker.labels import resource_labels, resource_name
from pytest_edgesim.docker.limits import container_limits
from pytest_edgesim.errors import EdgesimError
from pytest_edgesim.live.mqtt import BrokerCredentials
from pytest_edgesim.live.probe import mqtt_connack

_RETRY_INTERVAL_S = 0.005
_STATUS_INTERVAL_S = 0.1


class ReadinessError(EdgesimError):
    """A container did not become ready; the message ends with its last log lines."""

    def __init__(self, message: str, log_tail: list[str]):
        self.log_tail = log_tail
        logs = "\n".join(log_tail) if log_tail else "(the container wrote nothing)"
        super().__init__(f"{message}\n--- last {len(log_tail)} log lines ---\n{logs}")


@dataclass
class BrokerContainer(PublishedContainer):
    """A running broker container: where clients reach it, and how to stop and remove it.

    ``version`` says which broker it is (``mosquitto 2.0.21 (trixie)``), ``configuration``
    what it was configured with; :func:`start_broker` fills both in.
    """

    version: str | None = None
    configuration: str | None = None
    #: what clients log in with (a remote engine's broker, see :mod:`.credentials`)
    credentials: BrokerCredentials | None = None

    @classmethod
    def start(
        cls,
        image: str,
        client: docker.DockerClient | None = None,
        *,
        session: str | None = None,
        network: str | None = None,
        command: list[str] | None = None,
        host_port: int | None = None,
        ready_timeout_s: float = 30.0,
        cap_add: list[str] | None = None,
        volumes: dict[str, dict[str, str]] | None = None,
        archive: Callable[[int, int], bytes] | None = None,
        credentials: BrokerCredentials | None = None,
    ) -> BrokerContainer:
        """Create and start a broker from ``image`` and wait for a CONNACK.

        The MQTT port is published on an ephemeral host port unless ``host_port`` pins it
        (a pinned port survives restarts; an ephemeral one changes). ``archive(uid, gid)`` (a tar
        of files owned by the image's ``mosquitto`` user) is unpacked at ``/`` before the
        start; ``credentials`` are what the readiness CONNECT
        (and every client) logs in with. On failure the container is removed and
        :class:`ReadinessError` carries its logs.
        """
        if client is None:
            from pytest_edgesim.docker.engine import connect

            client = connect()
        name = resource_name("broker", session=session)
        container = client.containers.create(
            image,
            command=command,
            name=name,
            labels=resource_labels("broker", session=session),
            ports={f"{MQTT_PORT}/tcp": (publish_ip(client), host_port)},
            network=network,
            cap_add=cap_add,
            volumes=volumes,
            **container_limits(),
        )
        broker = cls(container.id, name, published_host(client), 0, client)
        broker.credentials = credentials
        try:
            if archive is not None:
                owner = _mosquitto_user(client, container.id)
                client.api.put_archive(container.id, "/", archive(*owner))
            container.start()
            broker.port = broker.published_port()
            broker.wait_ready(ready_timeout_s)
        except BaseException:
            broker.remove()
            raise
        return broker

    def published_port(self) -> int:
        """The host port that the container's MQTT port is published on now."""
        try:
            return published_port(self.client, self.container_id, MQTT_PORT)
        except NoPublishedPortError as error:
            raise ReadinessError(f"broker {self.name} {error}", self.logs()) from None

    def wait_ready(self, timeout_s: float) -> float:
        """Retry CONNECT until CONNACK; return the seconds waited. Fails fast if it exits."""
        started = time.monotonic()
        deadline = started + timeout_s
        next_status_check = started + _STATUS_INTERVAL_S
        last_error: Exception | None = None
        while True:
            try:
                code = mqtt_connack(
                    self.host,
                    self.port,
                    timeout_s=max(0.2, min(1.0, timeout_s)),
                    credentials=_pair(self.credentials),
                )
            except OSError as error:
                last_error = error
            else:
                if code == 0:
                    return time.monotonic() - started
                hint = (
                    ": its configuration must let anonymous clients connect on the listener "
                    f"edgesim publishes (port {MQTT_PORT})"
                    if code in (4, 5)
                    else ""
                )
                raise ReadinessError(
                    f"broker {self.name} refused the readiness CONNECT (CONNACK code {code})"
                    + hint,
                    self.logs(),
                )
            now = time.monotonic()
            if now >= next_status_check:
                next_status_check = now + _STATUS_INTERVAL_S
                state = self.state()
                if state.get("Status") not in ("running", "created"):
                    raise ReadinessError(
                        f"broker {self.name} {state.get('Status')} with exit code "
                        f"{state.get('ExitCode')} before accepting MQTT connections",
                        self.logs(),
                    )
            if now >= deadline:
                raise ReadinessError(
                    f"broker {self.name} did not answer MQTT CONNECT on {self.host}:{self.port} "
                    f"within {timeout_s:g} s (last error: {last_error})",
                    self.logs(),
                )
            time.sleep(_RETRY_INTERVAL_S)

    def restart(self, ready_timeout_s: float = 30.0) -> None:
        """Restart the container and wait for CONNACK again.

        The engine publishes an ephemeral port anew on every start, so ``port`` changes unless
        the broker was started with ``host_port``; clients that must reconnect need that.
        """
        self.client.api.restart(self.container_id, timeout=2)
        self.port = self.published_port()
        self.wait_ready(ready_timeout_s)

    def stop(self, timeout_s: int = 2) -> None:
        self.client.api.stop(self.container_id, timeout=timeout_s)


def _mosquitto_user(client: docker.DockerClient, container_id: str) -> tuple[int, int]:
    """``(uid, gid)`` of the ``mosquitto`` user in a created container (whom Mosquitto
    becomes before it reads its password file), else root's."""
    import io
    import tarfile

    try:
        stream, _stat = client.api.get_archive(container_id, "/etc/passwd")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.extractfile("passwd")
            text = member.read().decode(errors="replace") if member is not None else ""
    except Exception:  # an image without /etc/passwd: root it is
        return 0, 0
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[0] == "mosquitto" and fields[2].isdigit():
            return int(fields[2]), int(fields[3]) if fields[3].isdigit() else 0
    return 0, 0


def _pair(credentials: BrokerCredentials | None) -> tuple[str, str] | None:
    return None if credentials is None else (credentials.username, credentials.password)


def start_broker(
    client: docker.DockerClient | None = None,
    *,
    offline: bool | None = None,
    choice: BrokerChoice | None = None,
    **options: Any,
) -> BrokerContainer:
    """Build (if needed) the image of the broker ``choice`` names (default: the project's
    broker) and start it with the user's configuration mounted, if any; see
    :meth:`BrokerContainer.start`. The container's ``version`` and ``configuration`` say
    what runs."""
    from pytest_edgesim.docker.engine import connect

    client = client or connect()
    choice = choice or BrokerChoice()
    image = broker_image(client, choice, offline)
    command, volumes = launch_settings(choice)
    if command is not None:
        options.setdefault("command", command)
    authenticated = choice.config is None and choice.image is None and choice.build is None
    authenticated = authenticated and remote_mode(publish_ip(client))
    if authenticated:
        options.update(_authenticated_settings())
    broker = BrokerContainer.start(image, client, volumes=volumes or None, **options)
    try:
        broker.version = describe_version(client.containers.get(broker.container_id), choice, image)
        broker.configuration = choice.configuration()
        if authenticated:
            broker.configuration = (
                "edgesim's test configuration, with a user name and password generated for "
                "this session (a remote engine: no anonymous access), no persistence"
            )
    except BaseException:
        broker.remove()
        raise
    return broker


def _authenticated_settings() -> dict[str, Any]:
    """``BrokerContainer.start`` options for the project's broker with this session's
    credentials: its configuration without anonymous access, and the password file."""
    from importlib import resources

    base = (
        resources.files("pytest_edgesim")
        .joinpath("_containers/mqtt-broker/mosquitto.conf")
        .read_text()
    )
    credentials = session_credentials()
    files = {"mosquitto.conf": authenticated_config(base), "passwd": password_entry(credentials)}

    def archive(uid: int, gid: int) -> bytes:
        return auth_archive(files, uid=uid, gid=gid)

    return {
        "command": ["/usr/sbin/mosquitto", "-c", AUTH_CONFIG],
        "archive": archive,
        "credentials": credentials,
    }
