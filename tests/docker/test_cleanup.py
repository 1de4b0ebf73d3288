from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pytest_edgesim.docker.cleanup import is_stale, reap_stale, remove_session
from pytest_edgesim.docker.labels import (
    CREATED_LABEL,
    HOST_LABEL,
    KEEP_LABEL,
    LEASE_LABEL,
    OWNER_LABEL,
    PID_LABEL,
    SESSION_LABEL,
    new_session_id,
    resource_labels,
    resource_name,
)
from pytest_edgesim.live.processes import Machine, Owner, this_machine


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited (and been waited for)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def sessions(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Session ids made by a test; whatever is left of them is removed afterwards."""
    made: list[str] = []
    yield made
    for session in made:
        remove_session(docker_client, session)


def _dead_owner(pid: int) -> dict[str, str]:
    """Labels naming ``pid``, a process of this machine that has exited, as the owner."""
    return {PID_LABEL: str(pid), OWNER_LABEL: str(Owner(this_machine(), pid, 0))}


def _make_resources(
    client: docker.DockerClient, image: str, session: str, **label_overrides: str
) -> dict[str, str]:
    """A created (not started) container, a network and a volume of ``session``."""
    labels = {**resource_labels("test", session=session), **label_overrides}
    container = client.containers.create(
        image, name=resource_name("test", session=session), labels=labels
    )
    network = client.networks.create(resource_name("net", session=session), labels=labels)
    volume = client.volumes.create(resource_name("vol", session=session), labels=labels)
    return {"container": container.name, "network": network.name, "volume": volume.name}


def _remaining(client: docker.DockerClient, session: str) -> set[str]:
    label = {"label": f"{SESSION_LABEL}={session}"}
    return (
        {f"container {c.name}" for c in client.containers.list(all=True, filters=label)}
        | {f"network {n.name}" for n in client.networks.list(filters=label)}
        | {f"volume {v.name}" for v in client.volumes.list(filters=label)}
    )


def test_reap_removes_what_a_dead_process_left(
    docker_client: docker.DockerClient, broker_image: str, sessions: list[str], dead_pid: int
) -> None:
    dead, alive = new_session_id(), new_session_id()
    sessions += [dead, alive]
    made = _make_resources(docker_client, broker_image, dead, **_dead_owner(dead_pid))
    _make_resources(docker_client, broker_image, alive)

    removed = reap_stale(docker_client)

    reaped = {f"{item.kind} {item.name}" for item in removed if item.session == dead}
    # (another session on the same engine may reap some first: then this call reports
    # fewer, but nothing of the dead session may remain)
    assert reaped <= {f"{kind} {name}" for kind, name in made.items()}
    assert _remaining(docker_client, dead) == set()
    assert len(_remaining(docker_client, alive)) == 3


def test_reap_leaves_what_a_dead_session_kept(
    docker_client: docker.DockerClient, broker_image: str, sessions: list[str], dead_pid: int
) -> None:
    """--edgesim-keep-containers: only an explicit `edgesim cleanup` removes them."""
    kept = new_session_id()
    sessions.append(kept)
    made = _make_resources(
        docker_client, broker_image, kept, **_dead_owner(dead_pid), **{KEEP_LABEL: "true"}
    )

    removed = reap_stale(docker_client)

    assert all(item.session != kept for item in removed)
    assert _remaining(docker_client, kept) == {f"{kind} {name}" for kind, name in made.items()}


def test_reap_removes_old_resources_of_other_hosts_only(
    docker_client: docker.DockerClient, broker_image: str, sessions: list[str]
) -> None:
    old, recent = new_session_id(), new_session_id()
    sessions += [old, recent]
    two_days_ago = str(int(time.time()) - 48 * 3600)
    # (an owner of another machine, without a lease: judged by age, as 0.2 judged all)
    other_machine = Owner(Machine("another-boot", "1"), 1, 1)
    elsewhere = {HOST_LABEL: "another-host.invalid", OWNER_LABEL: str(other_machine)}
    elsewhere[LEASE_LABEL] = ""
    _make_resources(docker_client, broker_image, old, **elsewhere, **{CREATED_LABEL: two_days_ago})
    _make_resources(docker_client, broker_image, recent, **elsewhere)

    reap_stale(docker_client, max_age_hours=24)

    assert _remaining(docker_client, old) == set()
    assert len(_remaining(docker_client, recent)) == 3


def test_remove_session_leaves_nothing(
    docker_client: docker.DockerClient, broker_image: str, sessions: list[str]
) -> None:
    session = new_session_id()
    sessions.append(session)
    made = _make_resources(docker_client, broker_image, session)
    docker_client.containers.get(made["container"]).start()

    removed = remove_session(docker_client, session)

    assert sorted(item.kind for item in removed) == ["container", "network", "volume"]
    assert _remaining(docker_client, session) == set()
    assert remove_session(docker_client, session) == []


@pytest.mark.parametrize(
    ("labels", "stale"),
    [
        ({HOST_LABEL: "here", PID_LABEL: "100"}, False),
        ({HOST_LABEL: "here", PID_LABEL: "200"}, True),
        ({HOST_LABEL: "here", PID_LABEL: "garbage"}, True),
        ({HOST_LABEL: "there", PID_LABEL: "200", CREATED_LABEL: "990000"}, False),
        ({HOST_LABEL: "there", PID_LABEL: "100", CREATED_LABEL: "900000"}, True),
        ({HOST_LABEL: "there"}, True),
    ],
)
def test_staleness_rules(labels: dict[str, str], stale: bool) -> None:
    labels = {SESSION_LABEL: "edgesim-other", **labels}
    verdict = is_stale(
        labels, this_host="here", now=1_000_000, max_age_hours=24, alive=lambda pid: pid == 100
    )
    assert verdict is stale
    # a kept resource is stale only to an explicit cleanup (include_kept)
    kept = {**labels, KEEP_LABEL: "true"}
    assert not is_stale(
        kept, this_host="here", now=1_000_000, max_age_hours=24, alive=lambda pid: pid == 100
    )
    verdict = is_stale(
        kept,
        this_host="here",
        now=1_000_000,
        max_age_hours=24,
        alive=lambda pid: pid == 100,
        include_kept=True,
    )
    assert verdict is stale


def test_a_zombie_process_is_not_alive() -> None:
    """A child that exited and was not waited for (a SIGKILLed xdist worker, say) still
    answers ``kill(pid, 0)``: it must not keep its containers from being reaped."""
    from pytest_edgesim.docker.cleanup import pid_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        assert not pid_alive(child.pid)
    finally:
        child.wait()
    assert pid_alive(os.getpid())
