"""Removing what edgesim sessions left behind, found by their labels (see :mod:`.labels`).

A resource is stale when the session that owns it is over. Who owns it, and how that is
known, is decided in this order:

1. ``edgesim.owner`` of this machine and pid namespace (same boot id and pid namespace):
   stale when that process no longer runs, or its pid now belongs to a later process.
2. ``edgesim.owner`` of anywhere else (another machine, another container, even one with
   the same host name): stale only when its lease has expired, i.e. the lease container
   named by ``edgesim.lease`` (:mod:`.lease`) is no longer running; without a lease, when
   older than ``max_age_hours``.
3. No ``edgesim.owner`` (labelled by edgesim 0.1 or 0.2): as those versions decided, by
   the host name (``edgesim.host`` here and ``edgesim.pid`` no longer runs) or by age.

A resource its session kept (``edgesim.keep``, ``--edgesim-keep-containers``) is stale only
to an explicit ``edgesim cleanup`` (``include_kept``), never to the reaping every session does.
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
    LEASE_LABEL,
    OWNER_LABEL,
    PID_LABEL,
    SESSION_LABEL,
    hostname,
    session_id,
)
from pytest_edgesim.live.processes import Machine, Owner, owner_alive, pid_alive, this_machine

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
    here: Machine | None = None,
    lease_running: Callable[[str], bool] | None = None,
    running: Callable[[Owner, Machine], bool | None] | None = None,
) -> bool:
    """Whether a resource with these labels belongs to a session that is over (and, unless
    ``include_kept``, was not kept by it); the rules are the module's. ``here`` is this
    machine, ``lease_running(name)`` whether a lease container runs (None: no engine to ask,
    every lease counts as running), ``running(owner, here)`` whether a process of this
    machine runs (:func:`~pytest_edgesim.live.processes.owner_alive`), ``alive(pid)``
    the same for labels without an owner."""
    if labels.get(SESSION_LABEL) == session_id():
        return False
    if labels.get(KEEP_LABEL) and not include_kept:
        return False
    owner = Owner.parse(labels.get(OWNER_LABEL, ""))
    if owner is not None:
        verdict = (running or owner_alive)(owner, here or this_machine())
        if verdict is not None:
            return not verdict
        lease = labels.get(LEASE_LABEL)
        if lease:
            return lease_running is not None and not lease_running(lease)
    elif labels.get(HOST_LABEL) == this_host:
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
    this_host, now, here = hostname(), time.time(), this_machine()
    leases: dict[str, bool] = {}

    def running(name: str) -> bool:
        if name not in leases:
            leases[name] = lease_running(client, name)
        return leases[name]

    def selected(labels: Mapping[str, str]) -> bool:
        return everything or is_stale(
            labels,
            this_host=this_host,
            now=now,
            max_age_hours=max_age_hours,
            include_kept=include_kept,
            here=here,
            lease_running=running,
        )

    return _remove(client, SESSION_LABEL, selected)


def lease_running(client: docker.DockerClient, name: str) -> bool:
    """Whether lease container ``name`` (:mod:`.lease`) still runs; gone or exited, the
    lease has expired."""
    try:
        state = client.api.inspect_container(name).get("State") or {}
    except NotFound:
        return False
    return bool(state.get("Running"))


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
