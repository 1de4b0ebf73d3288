"""Nothing outlives a session: pass, failure, Ctrl-C, SIGTERM, and a SIGKILLed pytest
(whose leftovers the next session that reaches the engine reaps before it creates anything).

Each case runs a real pytest in a subprocess against the real engine and counts what is
left: containers, networks and volumes carrying that process's ``edgesim.pid`` label (its
lease container among them), and processes of its tree still running (each known by its
:class:`~pytest_edgesim.live.processes.Owner`, so a reused pid is not mistaken for one).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import pytest

from pytest_edgesim.docker.labels import PID_LABEL
from pytest_edgesim.live.processes import Owner, owner_alive, start_ticks, this_machine

WAITING_TEST = """
import pathlib, time

def test_holds_a_broker(mqtt_broker):
    mqtt_broker.client().disconnect()
    pathlib.Path("ready").write_text("ready")
    time.sleep(120)
"""

FAILING_TEST = """
def test_fails_with_a_broker(mqtt_broker):
    mqtt_broker.client().disconnect()
    assert False, "on purpose"
"""


def start_pytest(directory: Path, test_source: str) -> subprocess.Popen[bytes]:
    (directory / "test_session.py").write_text(test_source)
    env = {key: value for key, value in os.environ.items() if key != "EDGESIM_SESSION_ID"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--edgesim-broker=docker",
            "-q",
            "test_session.py",
        ],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_until_ready(directory: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not (directory / "ready").exists():
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"the pytest subprocess ended before it was ready:\n{output}")
        assert time.monotonic() < deadline, "the pytest subprocess never got its broker"
        time.sleep(0.05)


def containers_of(client: docker.DockerClient, pid: int) -> list[str]:
    found = client.api.containers(all=True, filters={"label": f"{PID_LABEL}={pid}"})
    return [summary["Id"][:12] for summary in found]


def labelled_leftovers(client: docker.DockerClient, pid: int) -> list[str]:
    """Every container, network and volume labelled as process ``pid``'s."""
    label = {"label": f"{PID_LABEL}={pid}"}
    return (
        [
            f"container {c['Names'][0].lstrip('/')}"
            for c in client.api.containers(all=True, filters=label)
        ]
        + [f"network {n['Name']}" for n in client.api.networks(filters=label)]
        + [f"volume {v['Name']}" for v in client.api.volumes(filters=label).get("Volumes") or []]
    )


def process_tree(pid: int) -> list[Owner]:
    """Process ``pid`` and its descendants, as they are now (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rfind(")") + 2 :].split()[1])
    tree, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    machine = this_machine()
    return [Owner(machine, member, start_ticks(member) or 0) for member in tree]


def still_running(owners: list[Owner]) -> list[int]:
    return [owner.pid for owner in owners if owner_alive(owner)]


@pytest.fixture
def client(docker_client: docker.DockerClient) -> docker.DockerClient:
    return docker_client


def test_a_failing_session_leaves_nothing(client: docker.DockerClient, tmp_path: Path) -> None:
    process = start_pytest(tmp_path, FAILING_TEST)
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 1, output.decode()
    assert "on purpose" in output.decode()
    assert containers_of(client, process.pid) == []


def test_ctrl_c_leaves_nothing(client: docker.DockerClient, tmp_path: Path) -> None:
    process = start_pytest(tmp_path, WAITING_TEST)
    wait_until_ready(tmp_path, process)
    assert containers_of(client, process.pid), "the session should hold a broker container"

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert "KeyboardInterrupt" in output.decode()
    assert containers_of(client, process.pid) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_terminated_session_cleans_up_as_after_ctrl_c(
    client: docker.DockerClient, tmp_path: Path, signum: int
) -> None:
    """A CI runner cancels with SIGTERM, a closed terminal sends SIGHUP: either ends the
    session as Ctrl-C does, its containers removed before it exits."""
    process = start_pytest(tmp_path, WAITING_TEST)
    wait_until_ready(tmp_path, process)
    held = labelled_leftovers(client, process.pid)
    assert any("-broker-" in item for item in held), held
    assert any("-lease-" in item for item in held), held
    assert any(item.startswith("network ") for item in held), held
    tree = process_tree(process.pid)

    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    assert f"KeyboardInterrupt: {signal.Signals(signum).name} received" in output.decode()
    assert labelled_leftovers(client, process.pid) == []
    assert still_running(tree) == []


KILLED_WORKER_TEST = """
import os, pathlib, signal
from pytest_edgesim.live.processes import this_owner

def test_a_worker_killed_while_it_holds_a_broker(mqtt_broker):
    mqtt_broker.client().disconnect()
    pathlib.Path("worker.pid").write_text(str(os.getpid()))
    pathlib.Path("killed.owner").write_text(str(this_owner()))
    os.kill(os.getpid(), signal.SIGKILL)

def test_another_one(mqtt_broker):
    mqtt_broker.client().disconnect()
    pathlib.Path("other.owner").write_text(str(this_owner()))
"""


def test_a_killed_xdist_worker_is_reaped_by_the_end_of_its_session(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    (tmp_path / "test_session.py").write_text(KILLED_WORKER_TEST)
    env = {key: value for key, value in os.environ.items() if key != "EDGESIM_SESSION_ID"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--edgesim-broker=docker",
            "-n",
            "2",
            "test_session.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    worker = int((tmp_path / "worker.pid").read_text())
    assert "worker" in done.stdout and "crashed" in done.stdout, done.stdout
    assert labelled_leftovers(client, worker) == [], "the dead worker's broker outlived it"
    workers = [
        Owner.parse((tmp_path / name).read_text()) for name in ("killed.owner", "other.owner")
    ]
    assert None not in workers
    for owner in workers:
        assert owner is not None
        assert labelled_leftovers(client, owner.pid) == []
    assert still_running([owner for owner in workers if owner is not None]) == []


def test_a_killed_session_is_reaped_by_the_next(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    killed_dir, next_dir = tmp_path / "killed", tmp_path / "next"
    killed_dir.mkdir()
    next_dir.mkdir()
    process = start_pytest(killed_dir, WAITING_TEST)
    wait_until_ready(killed_dir, process)
    tree = process_tree(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    left = labelled_leftovers(client, process.pid)
    assert any("-broker-" in item for item in left), "a SIGKILLed session cannot clean up"
    assert still_running(tree) == []

    following = start_pytest(next_dir, FAILING_TEST.replace("assert False", "assert True"))
    output, _ = following.communicate(timeout=180)
    assert following.returncode == 0, output.decode()
    assert labelled_leftovers(client, process.pid) == []
    assert labelled_leftovers(client, following.pid) == []


def test_a_process_removes_only_its_own_share_of_a_shared_session(
    client: docker.DockerClient, broker_image: str
) -> None:
    """xdist workers may share a session id: the first to finish must not take the rest."""
    from pytest_edgesim.docker.cleanup import remove_own
    from pytest_edgesim.docker.labels import SESSION_LABEL, new_session_id

    session = new_session_id()
    created = {
        pid: client.api.create_container(
            broker_image, labels={SESSION_LABEL: session, PID_LABEL: str(pid)}
        )["Id"]
        for pid in (os.getpid(), os.getppid())
    }
    try:
        remove_own(client, session)
        left = client.api.containers(all=True, filters={"label": f"{SESSION_LABEL}={session}"})
        assert [summary["Id"] for summary in left] == [created[os.getppid()]]
    finally:
        for container_id in created.values():
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(container_id, force=True)


def test_a_killed_session_s_process_broker_is_reaped_by_the_next(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    """The process backend's mosquitto outlives a SIGKILLed session (it is not its child's
    keeper); the next process broker stops it and removes its directory."""
    from pytest_edgesim.live.process_broker import (
        DIRECTORY_PREFIX,
        ProcessBroker,
        mosquitto_binary,
    )

    binary = mosquitto_binary()
    assert binary is not None, "the process backend's tests need mosquitto (see .ci/run)"
    (tmp_path / "test_session.py").write_text(
        WAITING_TEST.replace(
            "mqtt_broker):",
            "mqtt_broker):\n    import os\n"
            "    pathlib.Path('broker.pid').write_text(str(mqtt_broker.process.pid))",
        )
    )
    env = {key: value for key, value in os.environ.items() if key != "EDGESIM_SESSION_ID"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--edgesim-broker=process",
            "-q",
            "test_session.py",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    wait_until_ready(tmp_path, process)
    tree = process_tree(process.pid)
    broker_pid = int((tmp_path / "broker.pid").read_text())
    assert broker_pid in [owner.pid for owner in tree]
    directories = set(Path(tempfile.gettempdir()).glob(DIRECTORY_PREFIX + "*"))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert still_running(tree) == [broker_pid], "a SIGKILLed session cannot stop its mosquitto"

    following = ProcessBroker.start(binary)  # the next session's broker reaps first
    try:
        deadline = time.monotonic() + 10
        while still_running(tree):
            assert time.monotonic() < deadline, "the dead session's mosquitto still runs"
            time.sleep(0.01)
        left = set(Path(tempfile.gettempdir()).glob(DIRECTORY_PREFIX + "*")) & directories
        assert left == set(), f"the dead session's broker directory is still there: {left}"
        assert labelled_leftovers(client, process.pid) == []
    finally:
        following.stop()
