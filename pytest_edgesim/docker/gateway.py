"""The gateway in a labelled container: the same logic as the Python model, on a real broker.

The container runs ``python -m pytest_edgesim.gateway`` with its configuration in
``EDGESIM_GATEWAY_CONFIG`` (see :func:`pytest_edgesim.gateway.config.config_from_spec`).
It is ready when it prints ``gateway NAME ready``, which it does once it is connected and
every subscription is acknowledged. Stopping it (SIGTERM) makes it print its counters.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import docker
from docker.errors import APIError, NotFound

from pytest_edgesim.docker.container import LOG_TAIL_LINES, ContainerHandle
from pytest_edgesim.docker.labels import resource_labels, resource_name
from pytest_edgesim.docker.limits import container_limits
from pytest_edgesim.docker.readiness import LogLine, WaitStrategy, wait_ready
from pytest_edgesim.live.mqtt import BrokerCredentials

_POLL_INTERVAL_S = 0.01
_STOPPED_MARK = " stopped: "
GATEWAY_LABEL = "edgesim.gateway"


def ready_pattern(gateway: str) -> str:
    """The line the project's gateway prints once subscribed: its ``ready:`` default."""
    return rf"gateway {re.escape(gateway)} ready"


@dataclass
class GatewayContainer(ContainerHandle):
    """A running gateway container; ``counters`` holds what it reported when it stopped."""

    container_id: str
    name: str
    gateway: str
    client: docker.DockerClient = field(repr=False)
    counters: dict[str, int] | None = None
    final_logs: list[str] | None = field(default=None, repr=False)
    ready_strategy: WaitStrategy = field(default_factory=lambda: LogLine(""), repr=False)
    ready_timeout_s: float = 30.0
    #: the Docker network it reaches the broker on (None: the host's network namespace)
    network: str | None = None
    partition: Any = field(default=None, repr=False)

    supported_faults: ClassVar[tuple[str, ...]] = (
        "stop",
        "kill",
        "start",
        "pause",
        "resume",
        "disconnect",
        "reconnect",
    )

    @classmethod
    def start(
        cls,
        image: str,
        config: Mapping[str, Any],
        broker_host: str,
        broker_port: int,
        client: docker.DockerClient | None = None,
        *,
        network: str | None = None,
        session: str | None = None,
        environment: Mapping[str, str] | None = None,
        command: list[str] | None = None,
        ready: WaitStrategy | None = None,
        ready_timeout_s: float = 30.0,
        credentials: BrokerCredentials | None = None,
    ) -> GatewayContainer:
        """Create and start a gateway for ``config`` and wait until it is ready.

        ``network`` is the Docker network the broker is on (``broker_host`` is then its
        container name there); None runs the gateway in the host's network namespace, for a
        broker that listens on this machine (``--edgesim-broker=process`` or ``external``).
        ``credentials`` are the broker's (given as ``EDGESIM_BROKER_USERNAME`` and
        ``EDGESIM_BROKER_PASSWORD``). ``command`` replaces the image's; ``ready`` says when
        it is ready (default: the project gateway's ``gateway NAME ready`` line). On failure
        the container is removed and a :class:`~.readiness.GatewayNotReadyError` carries
        its logs; an ``image`` the engine does not have is an :class:`~.images.ImageError`.
        """
        from pytest_edgesim.docker.images import require_image

        if client is None:
            from pytest_edgesim.docker.engine import connect

            client = connect()
        require_image(client, image, f"gateway {config['name']!r}")
        name = resource_name("gateway", session=session)
        env = {
            "EDGESIM_GATEWAY_CONFIG": json.dumps(dict(config)),
            "EDGESIM_BROKER_HOST": broker_host,
            "EDGESIM_BROKER_PORT": str(broker_port),
            "EDGESIM_CONNECT_TIMEOUT": str(ready_timeout_s),
            **(
                {
                    "EDGESIM_BROKER_USERNAME": credentials.username,
                    "EDGESIM_BROKER_PASSWORD": credentials.password,
                }
                if credentials is not None
                else {}
            ),
            **(environment or {}),
        }
        container = client.containers.create(
            image,
            command=command,
            name=name,
            labels=resource_labels(
                "gateway", session=session, **{"edgesim.gateway": config["name"]}
            ),
            environment=env,
            network=network,
            network_mode=None if network else "host",
            **container_limits(),
        )
        gateway = cls(container.id, name, str(config["name"]), client, network=network)
        gateway.ready_strategy = ready or LogLine(ready_pattern(gateway.gateway))
        gateway.ready_timeout_s = ready_timeout_s
        try:
            gateway.ready_strategy.mark(gateway)
            container.start()
            gateway.wait_ready(ready_timeout_s)
        except BaseException:
            gateway.remove()
            raise
        return gateway

    def wait_ready(self, timeout_s: float) -> float:
        """Wait until the container is ready (its wait strategy says so); fail fast, with
        the logs, if it exits first."""
        return wait_ready(self, self.ready_strategy, timeout_s, self.gateway)

    def park(self) -> None:
        """Kill the program (SIGKILL: nothing of it is needed), so that it neither receives
        nor publishes anything until :meth:`restart`."""
        with contextlib.suppress(NotFound, APIError):  # APIError: it is not running
            self.client.api.kill(self.container_id)

    def restart(self) -> float:
        """Start the program afresh (killing it first if it runs) and wait until it is
        ready again: a gateway isolated by restart begins each trial with no state."""
        self.park()
        self.client.api.wait(self.container_id, timeout=30)
        self.ready_strategy.mark(self)
        self.client.api.start(self.container_id)
        return self.wait_ready(self.ready_timeout_s)

    # --- faults (what a live run's edge_scenario.stop/kill/... do) ------------------------------
    def apply_fault(self, action: str, ready_timeout_s: float = 30.0) -> str:
        """The container's faults, plus ``start`` waiting for its next ready line and
        ``disconnect``/``reconnect``: off and back on the broker's network (a partition:
        its TCP connection goes silent; MQTT notices at the keepalive)."""
        from pytest_edgesim.docker import faults

        if action == "start":
            self.ready_strategy.mark(self)  # ready again: what it says from now on counts
            faults.start(self, ready_timeout_s=ready_timeout_s)  # (waits through wait_ready)
            return ""
        if action == "disconnect":
            if self.network is None:
                raise faults.FaultError(
                    f"gateway container {self.name} runs in the host's network namespace "
                    "(a broker on this machine): it has no network to be cut off; use a "
                    "Docker broker (--edgesim-broker=docker)"
                )
            self.partition = faults.disconnect(self, self.network)
            return ""
        if action == "reconnect":
            if self.partition is not None:
                self.partition.heal()
                self.partition = None
            return ""
        if action == "stop":  # SIGTERM: it says what it had done (its queue is lost)
            counters = self.stop() or {}
            return ", ".join(
                f"{key} {counters[key]}"
                for key in ("received", "processed", "forwarded")
                if key in counters
            )
        return super().apply_fault(action)

    def recover(self) -> bool:
        """Undo a pause or a network cut (before the container is reused or stopped);
        whether it runs."""
        from docker.errors import APIError, NotFound

        try:
            if self.partition is not None:
                self.apply_fault("reconnect")
            status = self.state().get("Status")
            if status == "paused":
                self.apply_fault("resume")
                status = "running"
        except (NotFound, APIError):
            return False
        return status == "running"

    def wait_log(self, text: str, count: int = 1, timeout_s: float = 30.0) -> bool:
        """Whether ``count`` log lines contain ``text`` within ``timeout_s`` (for example a
        second ``subscribed`` after the broker restarted)."""
        deadline = time.monotonic() + timeout_s
        while sum(text in line for line in self.logs("all")) < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_INTERVAL_S * 5)
        return True

    def logs(self, tail: int | str = LOG_TAIL_LINES) -> list[str]:
        """The last ``tail`` lines (``"all"``: every line); after removal, the final lines."""
        if self.final_logs is not None:
            return list(self.final_logs)
        return super().logs(tail)

    def stop(self, timeout_s: int = 5) -> dict[str, int] | None:
        """SIGTERM the gateway and return the counters it printed (None if it printed none)."""
        with contextlib.suppress(Exception):
            self.recover()  # a paused container takes no signal
        with contextlib.suppress(NotFound):
            self.client.api.stop(self.container_id, timeout=timeout_s)
        for line in reversed(self.logs("all")):
            head, mark, counters = line.partition(_STOPPED_MARK)
            if mark and head.endswith(f"gateway {self.gateway}"):
                self.counters = json.loads(counters)
                break
        return self.counters

    def remove(self) -> None:
        """Remove the container whatever its state (keeping its last logs); twice is fine."""
        if self.final_logs is None:
            self.final_logs = self.logs()
        super().remove()
