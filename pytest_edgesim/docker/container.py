"""What every container this package starts offers: its state, its last logs, its removal.

The broker, the MQTT gateway and the lockstep node containers each add how they start and
when they are ready; they share this for the rest. :class:`ContainerHandle` holds no
fields (each subclass declares ``container_id`` and ``client`` among its own);
:class:`PublishedContainer` adds where a container that publishes a port is reached.
``docker`` is imported where it is used, so importing this imports no Docker SDK.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import docker

#: how many log lines an error message ends with
LOG_TAIL_LINES = 40


class ContainerHandle:
    """A container this package started, by id, on ``client``'s engine."""

    container_id: str
    client: docker.DockerClient

    #: the faults :meth:`apply_fault` does (a live run's ``edge_scenario.kill(...)`` etc.)
    supported_faults: ClassVar[tuple[str, ...]] = ("stop", "kill", "start", "pause", "resume")

    def apply_fault(self, action: str) -> str:
        """``docker stop``, ``kill`` (SIGKILL), ``start`` (and wait until ready), ``pause``
        or ``unpause`` (``resume``) the container; see :mod:`pytest_edgesim.docker.faults`."""
        from pytest_edgesim.docker import faults

        if action in ("stop", "kill") and self.state().get("Status") == "paused":
            faults.unpause(self)  # (a frozen process would not take the signal)
        if action == "stop":
            faults.stop(self)
        elif action == "kill":
            faults.kill(self)
        elif action == "start":
            faults.start(self)
        elif action == "pause":
            faults.pause(self)
        elif action == "resume":
            faults.unpause(self)
        else:
            raise faults.FaultError(f"container {self.container_id[:12]} cannot {action}")
        return ""

    def state(self) -> dict[str, Any]:
        """The engine's ``State`` of the container (``Status``, ``ExitCode``...)."""
        return dict(self.client.api.inspect_container(self.container_id)["State"])

    def alive(self) -> bool:
        """Whether the container exists and is created or running."""
        from docker.errors import APIError, NotFound

        try:
            return self.state().get("Status") in ("running", "created")
        except (NotFound, APIError):
            return False

    def logs(self, tail: int | str = LOG_TAIL_LINES) -> list[str]:
        """The container's last ``tail`` lines of stdout and stderr (``"all"``: every line;
        [] once it is gone)."""
        from docker.errors import APIError, NotFound

        try:
            raw = self.client.api.logs(self.container_id, tail=tail)
        except (NotFound, APIError):
            return []
        return raw.decode(errors="replace").splitlines()

    def remove(self) -> None:
        """Remove the container whatever its state; removing it twice is fine."""
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            self.client.api.remove_container(self.container_id, force=True, v=True)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


@dataclass
class PublishedContainer(ContainerHandle):
    """A container reached at ``host:port``, the host port its service port is published on."""

    container_id: str
    name: str
    host: str
    port: int
    client: docker.DockerClient = field(repr=False)
