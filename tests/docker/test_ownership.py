"""Who owns a labelled resource, decided so that two sessions on one engine never take
each other's: by owner identity (boot id, pid namespace, pid, start time) where the owner
is of this machine and namespace, by its lease container everywhere else, and by host name
and age for resources labelled before owners were (edgesim 0.1 and 0.2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pytest_edgesim.docker.cleanup import is_stale, lease_running, reap_stale, remove_session
from pytest_edgesim.docker.labels import (
    CREATED_LABEL,
    HOST_LABEL,
    LEASE_LABEL,
    OWNER_LABEL,
    PID_LABEL,
    SESSION_LABEL,
    hostname,
    new_session_id,
    resource_labels,
    resource_name,
)
from pytest_edgesim.docker.lease import take_lease
from pytest_edgesim.live.processes import Machine, Owner, owner_alive, this_machine, this_owner

HERE = Machine("boot-a", "4026531836")
NOW = 1_000_000.0


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def stale(labels: dict[str, str], *, leases: dict[str, bool] | None = None) -> bool:
    """``is_stale`` for a resource of another session, on machine ``HERE``, where only
    pid 100 (started at tick 7) runs and only the leases ``leases`` names as True run."""

    def running(owner: Owner, here: Machine) -> bool | None:
        if owner.machine != here:
            return None
        return owner.pid == 100 and owner.start_ticks == 7

    return is_stale(
        {SESSION_LABEL: "edgesim-other", HOST_LABEL: "ci-runner", **labels},
        this_host="ci-runner",
        now=NOW,
        max_age_hours=24,
        alive=lambda pid: pid == 100,
        here=HERE,
        running=running,
        lease_running=lambda name: (leases or {}).get(name, False),
    )


def test_an_owner_of_this_machine_is_asked_directly() -> None:
    assert not stale({OWNER_LABEL: str(Owner(HERE, 100, 7))})
    assert stale({OWNER_LABEL: str(Owner(HERE, 200, 7))})
    # the pid now belongs to a later process: its owner is gone
    assert stale({OWNER_LABEL: str(Owner(HERE, 100, 8))})


def test_same_host_name_other_boot_is_decided_by_the_lease() -> None:
    """A CI runner in a container on another machine, with the same host name and a pid
    that is dead here: 0.2 would have reaped its live containers."""
    other = str(Owner(Machine("boot-b", HERE.pid_namespace), 200, 7))
    labels = {OWNER_LABEL: other, PID_LABEL: "200", LEASE_LABEL: "lease-b"}
    assert not stale(labels, leases={"lease-b": True})
    assert stale(labels, leases={"lease-b": False})


def test_same_pid_other_namespace_is_decided_by_the_lease() -> None:
    """pid 100 runs here, but the owner's pid 100 is another container's."""
    other = str(Owner(Machine(HERE.boot_id, "4026532999"), 100, 7))
    labels = {OWNER_LABEL: other, PID_LABEL: "100", LEASE_LABEL: "lease-c"}
    assert not stale(labels, leases={"lease-c": True})
    assert stale(labels, leases={"lease-c": False})
    # and a dead pid of that namespace is no reason either
    other_dead = str(Owner(Machine(HERE.boot_id, "4026532999"), 200, 7))
    assert not stale({**labels, OWNER_LABEL: other_dead}, leases={"lease-c": True})


def test_a_foreign_owner_without_a_lease_is_reaped_by_age_only() -> None:
    other = str(Owner(Machine("boot-b", HERE.pid_namespace), 200, 7))
    young, old = str(NOW - 3600), str(NOW - 25 * 3600)
    assert not stale({OWNER_LABEL: other, CREATED_LABEL: young})
    assert stale({OWNER_LABEL: other, CREATED_LABEL: old})


def test_old_labels_are_decided_as_before() -> None:
    """No owner label (edgesim 0.1, 0.2): this host's dead pid is stale, another host's
    resource by its age."""
    assert stale({PID_LABEL: "200"})
    assert not stale({PID_LABEL: "100"})
    assert not stale({HOST_LABEL: "laptop", PID_LABEL: "200", CREATED_LABEL: str(NOW - 60)})
    assert stale({HOST_LABEL: "laptop", PID_LABEL: "200", CREATED_LABEL: str(NOW - 90000)})


def test_this_process_and_a_dead_one_as_owners(dead_pid: int) -> None:
    me = this_owner()
    assert Owner.parse(str(me)) == me
    assert owner_alive(me) is True
    assert owner_alive(Owner(me.machine, dead_pid, me.start_ticks)) is False
    assert owner_alive(Owner(me.machine, me.pid, me.start_ticks + 1)) is False
    assert owner_alive(Owner(Machine("another-boot", me.machine.pid_namespace), 1, 1)) is None
    assert Owner.parse("garbage") is None
    assert Owner.parse("a/b/c/d") is None


def test_a_foreign_process_broker_is_left_to_its_own_namespace(tmp_path: Path) -> None:
    """A process broker directory whose owner is of another pid namespace (a /tmp shared
    with a container) is not touched; one whose owner here is dead is removed."""
    from pytest_edgesim.live.process_broker import (
        DIRECTORY_PREFIX,
        OWNER_FILE,
        reap_dead_process_brokers,
    )

    here = this_machine()
    dead = Owner(here, 2**22 + 1, 1)  # beyond pid_max: never runs
    foreign = Owner(Machine(here.boot_id, "4026532999"), 2**22 + 1, 1)
    for name, owner in (("dead", dead), ("foreign", foreign)):
        directory = tmp_path / f"{DIRECTORY_PREFIX}{name}"
        directory.mkdir()
        record = {"owner_pid": owner.pid, "broker_pid": 2**22 + 2, "host": hostname()}
        (directory / OWNER_FILE).write_text(json.dumps({**record, "owner": str(owner)}))
    removed = reap_dead_process_brokers(tmp_path)
    assert [path.name for path in removed] == [f"{DIRECTORY_PREFIX}dead"]
    assert (tmp_path / f"{DIRECTORY_PREFIX}foreign").exists()


# --- on the real engine ---------------------------------------------------------------------
@pytest.fixture
def foreign_session(docker_client: docker.DockerClient) -> Iterator[str]:
    session = new_session_id()
    yield session
    remove_session(docker_client, session)


def _exists(client: docker.DockerClient, container_id: str) -> bool:
    try:
        client.api.inspect_container(container_id)
    except docker.errors.NotFound:
        return False
    return True


def test_a_live_foreign_owner_keeps_its_containers_until_its_lease_expires(
    docker_client: docker.DockerClient, broker_image: str, foreign_session: str, dead_pid: int
) -> None:
    """Another machine's session with this host name, its pid dead here: its container
    stays while its lease container runs, and goes once the lease has expired (its
    attached socket closed, as its process's death closes it)."""
    here = this_machine()
    owner = Owner(Machine("boot-of-another-machine", here.pid_namespace), dead_pid, 1)
    lease = take_lease(docker_client, session=foreign_session, owner=owner)
    assert lease is not None, "the engine has a project image (the broker's) to lease in"
    labels = {
        **resource_labels("gateway", session=foreign_session),
        HOST_LABEL: hostname(),
        PID_LABEL: str(dead_pid),
        OWNER_LABEL: str(owner),
        LEASE_LABEL: lease.name,
    }
    container = docker_client.api.create_container(
        broker_image, name=resource_name("gateway", session=foreign_session), labels=labels
    )["Id"]

    reap_stale(docker_client)
    assert _exists(docker_client, container), "a live owner's container was reaped"
    assert _exists(docker_client, lease.container_id)

    lease.expire()  # what the kernel does when the owner dies
    deadline = time.monotonic() + 30
    while docker_client.api.inspect_container(lease.container_id)["State"]["Running"]:
        assert time.monotonic() < deadline, "the lease container outlived its socket"
        time.sleep(0.05)

    removed = {item.name for item in reap_stale(docker_client)}
    assert not _exists(docker_client, container)
    assert not _exists(docker_client, lease.container_id)
    assert lease.name in removed or not _exists(docker_client, lease.container_id)


def test_a_session_s_resources_carry_its_owner_and_lease(
    docker_client: docker.DockerClient,
) -> None:
    labels = resource_labels("network")
    assert Owner.parse(labels[OWNER_LABEL]) == this_owner()
    assert labels[LEASE_LABEL]
    state = docker_client.api.inspect_container(labels[LEASE_LABEL])["State"]
    assert state["Running"]
    assert (
        int(docker_client.api.inspect_container(labels[LEASE_LABEL])["Config"]["Labels"][PID_LABEL])
        == os.getpid()
    )


def test_an_engine_that_cannot_lease_does_not_fail_the_session() -> None:
    """A lease is a courtesy to other sessions: a connection that fails leaves resources
    without one (the age rule applies to them), and the session goes on."""
    from pytest_edgesim.docker import lease

    def broken() -> docker.DockerClient:
        raise RuntimeError("an engine that attaches no input")

    saved = lease._lease  # (a lease this process holds is left alone)
    lease._lease = None
    try:
        assert lease.ensure_lease(broken) is None
    finally:
        lease._lease = saved


INNER_SESSION = """
import time
from pytest_edgesim.docker import labels
from pytest_edgesim.docker.engine import connect

client = connect()
made = client.api.create_container(
    {image!r}, name=labels.resource_name("gateway"), labels=labels.resource_labels("gateway")
)
print("made", made["Id"], labels.session_id(), flush=True)
time.sleep(600)
"""


def test_a_session_in_another_pid_namespace_with_this_host_name(
    docker_client: docker.DockerClient, broker_image: str, test_session: str
) -> None:
    """A real session in a container (its own pid namespace, this machine's host name and
    boot id, the engine's socket mounted): its container survives this session's reaping
    while it runs, and is reaped once it has been killed."""
    from pytest_edgesim.docker.engine import resolve_endpoint
    from pytest_edgesim.docker.images import ensure_image

    socket_url = resolve_endpoint().url
    assert socket_url.startswith(("unix://", "http+unix://")), "the engine's socket is mounted"
    engine_socket = socket_url.split("://", 1)[1]
    site_packages = Path(docker.__file__).parents[1]
    package = Path(__file__).parents[2]
    runner = docker_client.containers.run(
        ensure_image("gateway", docker_client),
        ["python3", "-c", INNER_SESSION.format(image=broker_image)],
        detach=True,
        user="0",
        hostname=hostname(),
        name=resource_name("runner", session=test_session),
        labels=resource_labels("runner", session=test_session),
        environment={"PYTHONPATH": "/src:/deps"},
        volumes={
            engine_socket: {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(package): {"bind": "/src", "mode": "ro"},
            str(site_packages): {"bind": "/deps", "mode": "ro"},
        },
    )
    inner_session = None
    try:
        deadline = time.monotonic() + 60
        while "made " not in (logs := runner.logs().decode(errors="replace")):
            runner.reload()
            assert runner.status == "running", f"the inner session ended:\n{logs}"
            assert time.monotonic() < deadline, f"the inner session made nothing:\n{logs}"
            time.sleep(0.1)
        made, inner_session = logs.split("made ", 1)[1].split()[:2]
        labels = docker_client.api.inspect_container(made)["Config"]["Labels"]
        owner = Owner.parse(labels[OWNER_LABEL])
        assert owner is not None and labels[HOST_LABEL] == hostname()
        assert owner.machine.boot_id == this_machine().boot_id
        assert owner.machine.pid_namespace != this_machine().pid_namespace

        reap_stale(docker_client)
        assert _exists(docker_client, made), "a live session in another namespace was reaped"

        runner.kill()  # its process dies: its lease expires
        deadline = time.monotonic() + 30
        while lease_running(docker_client, labels[LEASE_LABEL]):
            assert time.monotonic() < deadline, "the lease outlived its session"
            time.sleep(0.05)
        reap_stale(docker_client)
        assert not _exists(docker_client, made)
        assert not _exists(docker_client, labels[LEASE_LABEL])
    finally:
        runner.remove(force=True)
        if inner_session is not None:
            remove_session(docker_client, inner_session)


def test_the_lease_runs_in_an_image_of_the_projects_own_repositories():
    """An image committed from a project image carries its label too; a lease in it would
    keep it on the engine (nothing could untag it), so the lease takes a project tag."""
    from pytest_edgesim.docker.lease import lease_image

    class Api:
        def images(self, filters):
            return [
                {"Id": "sha256:0a", "RepoTags": ["edgesim-test/prune-1:t0"]},
                {"Id": "sha256:0c", "RepoTags": ["edgesim/edgesim-test-x:1"]},
                {"Id": "sha256:0b", "RepoTags": None},
                {"Id": "sha256:ff", "RepoTags": ["edgesim/mqtt-broker:latest", "x/y:z"]},
            ]

    class Client:
        api = Api()

    assert lease_image(Client()) == "edgesim/mqtt-broker:latest"  # type: ignore[arg-type]
