"""Removing what edgesim sessions left behind, found by their labels (see :mod:`.labels`).

A resource is stale when its owning process is gone: same host and the ``edgesim.pid`` no
longer runs, or another host (a CI container, a colleague's laptop on a shared engine) and
older than ``max_age_hours``, since its process cannot be checked from here. A resource its
session kept (``edgesim.keep``, ``--edgesim-keep-containers``) is stale only to an explicit
``edgesim cleanup`` (``include_kept``), never to the reaping every session does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import docker
from docker.errors import APIError, DockerException, NotFound

from pytest_edgesim.docker.labels import (
    CREATED_LABEL,
    HOST_LABEL,
    KEEP_LABEL,
    PID_LABEL,
    SESSION_LABEL,
    hostname,
    session_id,
)
from pytest_edgesim.live.processes import pid_alive

STALE_AFTER_HOURS = 24.0


@dataclass(frozen=True)
class RemovedResource:
    """One container, network or volume that cleanup removed."""

    kind: str
    name: str
    session: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name} (session {self.session})"


def is_stale(
    labels: Mapping[str, str],
    *,
    this_host: str,
    now: float,
    max_age_hours: float = STALE_AFTER_HOURS,
    alive: Callable[[int], bool] = pid_alive,
    include_kept: bool = False,
) -> bool:
    """Whether a resource with these labels belongs to a session that is over (and, unless
    ``include_kept``, was not kept by it)."""
    if labels.get(SESSION_LABEL) == session_id():
        return False
    if labels.get(KEEP_LABEL) and not include_kept:
        return False
    if labels.get(HOST_LABEL) == this_host:
        try:
            return not alive(int(labels.get(PID_LABEL, "")))
        except ValueError:
            return True
    try:
        created = float(labels.get(CREATED_LABEL, ""))
    except ValueError:
        return True
    return now - created > max_age_hours * 3600


def reap_stale(
    client: docker.DockerClient,
    *,
    everything: bool = False,
    max_age_hours: float = STALE_AFTER_HOURS,
    include_kept: bool = False,
) -> list[RemovedResource]:
    """Remove containers, networks and volumes of sessions that are over (all if
    ``everything``); what a session kept only if ``include_kept``."""
    this_host, now = hostname(), time.time()

    def selected(labels: Mapping[str, str]) -> bool:
        return everything or is_stale(
            labels,
            this_host=this_host,
            now=now,
            max_age_hours=max_age_hours,
            include_kept=include_kept,
        )

    return _remove(client, SESSION_LABEL, selected)


_reaped_in_this_process = False


def reap_stale_once(client: docker.DockerClient) -> list[RemovedResource]:
    """:func:`reap_stale`, the first time this process reaches the engine (then nothing).

    Called on every connection (:func:`.engine.connect`), so what a killed session left is
    removed by the next session that uses Docker, before it creates anything itself; what a
    session kept stays. An engine that does not answer is not this function's problem: the
    caller will find out.
    """
    global _reaped_in_this_process
    if _reaped_in_this_process:
        return []
    _reaped_in_this_process = True
    try:
        return reap_stale(client)
    except (APIError, DockerException, OSError):
        return []


def remove_session(client: docker.DockerClient, session: str) -> list[RemovedResource]:
    """Remove every container, network and volume of ``session``."""
    return _remove(client, f"{SESSION_LABEL}={session}", lambda labels: True)


def kept_by_this_process(client: docker.DockerClient) -> list[tuple[str, str]]:
    """``(kind, name)`` of the containers and networks this process kept
    (``--edgesim-keep-containers``): what the end of a pytest run lists."""
    filters = {
        "label": [f"{SESSION_LABEL}={session_id()}", KEEP_LABEL, f"{PID_LABEL}={os.getpid()}"]
    }
    kept = [
        ("container", (summary.get("Names") or [summary["Id"][:12]])[0].lstrip("/"))
        for summary in client.api.containers(all=True, filters=filters)
    ]
    kept += [("network", summary["Name"]) for summary in client.api.networks(filters=filters)]
    return kept


def remove_own(client: docker.DockerClient, session: str) -> list[RemovedResource]:
    """Remove what this process labelled in ``session``: xdist workers may share a session id
    (``EDGESIM_SESSION_ID``), and one finishing must not take the others' containers."""
    pid = str(os.getpid())
    return _remove(
        client, f"{SESSION_LABEL}={session}", lambda labels: labels.get(PID_LABEL) == pid
    )


def _remove(
    client: docker.DockerClient, label_filter: str, selected: Callable[[Mapping[str, str]], bool]
) -> list[RemovedResource]:
    """Containers first (they hold networks and volumes), then networks, then volumes."""
    api = client.api
    removed = []
    for summary in api.containers(all=True, filters={"label": label_filter}):
        labels = summary.get("Labels") or {}
        name = (summary.get("Names") or [summary["Id"][:12]])[0].lstrip("/")
        if selected(labels) and _removed(api.remove_container, summary["Id"], force=True, v=True):
            removed.append(RemovedResource("container", name, labels.get(SESSION_LABEL, "")))
    for summary in api.networks(filters={"label": label_filter}):
        labels = summary.get("Labels") or {}
        if selected(labels) and _removed(api.remove_network, summary["Id"]):
            removed.append(RemovedResource("network", summary["Name"], labels[SESSION_LABEL]))
    for summary in api.volumes(filters={"label": label_filter}).get("Volumes") or []:
        labels = summary.get("Labels") or {}
        if selected(labels) and _removed(api.remove_volume, summary["Name"]):
            removed.append(RemovedResource("volume", summary["Name"], labels[SESSION_LABEL]))
    return removed


def _removed(remove: Callable[..., object], *args: object, **kwargs: object) -> bool:
    """Call ``remove``; False if the resource is already gone or still in use by others
    (a network with foreign containers attached, a volume mounted elsewhere)."""
    try:
        remove(*args, **kwargs)
    except NotFound:
        return False
    except APIError as error:
        if error.status_code in (403, 409):
            return False
        raise
    return True
