"""A session's lease on the engine: a container that runs exactly as long as the session.

The lease container runs ``cat`` with its standard input attached to this process (Docker's
``StdinOnce``): when the process ends, however it ends (SIGKILL included), the kernel closes
the attached socket, the engine closes ``cat``'s input, and the container exits. So whoever
shares the engine (another machine, another container with the same host name) can tell
whether a session is over without seeing its process: its lease container is not running.
Everything the session creates afterwards is labelled with the lease's name
(``edgesim.lease``), and :mod:`.cleanup` reaps a resource whose owner is not of its own
machine and pid namespace only when that lease has expired.

The lease runs in an image the project built (any of them has ``cat``); on an engine that
has none yet, the session takes its lease with the first resource it labels after the first
build, and what it labelled before falls back to the age rule. A lease is as reliable as
the connection that holds it: a connection to a remote engine that breaks while the session
lives ends the lease early, and other sessions may then reap that session's containers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_edgesim.docker import labels
from pytest_edgesim.live.processes import Owner

if TYPE_CHECKING:
    import docker

LEASE_ROLE = "lease"
#: the label every image the project builds carries (see :mod:`.images`)
_PROJECT_IMAGE_FILTER = "edgesim.origin=project"
#: the repositories of the project's own images (``containers/``; every one has ``cat``)
_PROJECT_REPOSITORIES = ("edgesim/base", "edgesim/mqtt-broker", "edgesim/gateway")


class Lease:
    """A running lease container and the attached socket that keeps it running."""

    def __init__(self, client: docker.DockerClient, container_id: str, name: str, socket: Any):
        self.client = client
        self.container_id = container_id
        self.name = name
        self._socket = socket

    def expire(self) -> None:
        """Close the attached socket, as the process's death does: the container exits."""
        import socket

        # (a SocketIO around the socket on a local engine; other references keep it open)
        raw = getattr(self._socket, "_sock", self._socket)
        with contextlib.suppress(Exception):
            raw.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._socket.close()

    def release(self) -> None:
        """End the lease: close the socket, remove the container."""
        self.expire()
        with contextlib.suppress(Exception):
            self.client.api.remove_container(self.container_id, force=True)


def lease_image(client: docker.DockerClient) -> str | None:
    """An image the project built on this engine (all have ``cat``), or None."""
    images = client.api.images(filters={"label": _PROJECT_IMAGE_FILTER})
    # by a tag of the project's own repositories: an image committed from one of them (a
    # test's, a user's) carries the label too, and a lease in it would pin it on the engine
    tags = sorted(
        tag
        for image in images
        for tag in image.get("RepoTags") or ()
        if tag.rpartition(":")[0] in _PROJECT_REPOSITORIES
    )
    return tags[0] if tags else None


def take_lease(
    client: docker.DockerClient,
    *,
    session: str | None = None,
    owner: Owner | None = None,
    image: str | None = None,
) -> Lease | None:
    """Start a lease container for ``owner`` (this process) in ``session`` and attach its
    input; None when the engine has no project image to run it in."""
    image = image or lease_image(client)
    if image is None:
        return None
    name = labels.resource_name(LEASE_ROLE, session=session)
    lease_labels = labels.resource_labels(LEASE_ROLE, session=session)
    lease_labels.pop(labels.KEEP_LABEL, None)  # a lease ends with its session, kept or not
    lease_labels[labels.LEASE_LABEL] = name
    if owner is not None:
        lease_labels[labels.OWNER_LABEL] = str(owner)
        lease_labels[labels.PID_LABEL] = str(owner.pid)
    api = client.api
    container_id = api.create_container(
        image,
        entrypoint=["cat"],
        command=[],
        name=name,
        labels=lease_labels,
        stdin_open=True,
        network_disabled=True,
        host_config=api.create_host_config(
            mem_limit="16m", pids_limit=4, nano_cpus=100_000_000, auto_remove=False
        ),
    )["Id"]
    try:
        socket = api.attach_socket(container_id, params={"stdin": 1, "stream": 1})
        api.start(container_id)
    except BaseException:
        with contextlib.suppress(Exception):
            api.remove_container(container_id, force=True)
        raise
    return Lease(client, container_id, name, socket)


_lease: Lease | None = None


def ensure_lease(connect: Callable[[], docker.DockerClient]) -> str | None:
    """This process's lease (taken on the first call that can, on a client from ``connect``
    of its own, which no caller closes), its name or None. From then on every resource this
    process labels carries it: :func:`.labels.resource_labels` calls this (as its lease
    provider, set by :func:`.engine.connect`) when it labels a resource without a lease."""
    global _lease
    if _lease is None:
        client = None
        try:
            client = connect()
            _lease = take_lease(client)
        except Exception:  # a lease is a courtesy to other sessions: never this one's failure
            _lease = None
        if _lease is None and client is not None:
            client.close()  # (no project image yet: the next resource tries again)
        if _lease is not None:
            labels.set_lease(_lease.name)
    return _lease.name if _lease is not None else None


def drop_lease() -> None:
    """End this process's lease (its session is over and its resources are removed); a
    later resource takes a new one."""
    global _lease
    lease, _lease = _lease, None
    labels.set_lease(None)
    if lease is not None:
        lease.release()
