"""A Mosquitto broker in a labelled container, ready when it answers an MQTT CONNECT.

Readiness is a real protocol exchange: a raw MQTT 3.1.1 CONNECT on a plain socket, answered
by a CONNACK. A raw packet needs no client thread and no paho import, and it is retried
every few milliseconds, so the broker is used the moment it listens. If the container
exits or the timeout passes first, :class:`ReadinessError` carries its last log lines.
"""

from __future__ import annotations

import time
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
from pytest_edgesim.docker.engine import (
    NoPublishedPortError,
    publish_ip,
    published_host,
    published_port,
)
from pytest_edgesim.docker.labels import resource_labels, resource_name
from pytest_edgesim.docker.limits import container_limits
from pytest_edgesim.errors import EdgesimError
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
    ) -> BrokerContainer:
        """Create and start a broker from ``image`` and wait for a CONNACK.

        The MQTT port is published on an ephemeral host port unless ``host_port`` pins it
        (a pinned port survives restarts; an ephemeral one changes). On failure the
        container is removed and :class:`ReadinessError` carries its logs.
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
        try:
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
                code = mqtt_connack(self.host, self.port, timeout_s=max(0.2, min(1.0, timeout_s)))
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
    broker = BrokerContainer.start(image, client, volumes=volumes or None, **options)
    try:
        broker.version = describe_version(client.containers.get(broker.container_id), choice, image)
        broker.configuration = choice.configuration()
    except BaseException:
        broker.remove()
        raise
    return broker
