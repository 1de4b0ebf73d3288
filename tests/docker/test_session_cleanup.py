"""Nothing outlives a session: pass, failure, Ctrl-C, and a SIGKILLed pytest (whose
leftovers the next session that reaches the engine reaps before it creates anything).

Each case runs a real pytest in a subprocess against the real engine and looks for
containers carrying that process's ``edgesim.pid`` label.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from pytest_edgesim.docker.labels import PID_LABEL

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
    assert containers_of(client, process.pid), "the session should hold a broker container"

    process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    assert f"KeyboardInterrupt: {signal.Signals(signum).name} received" in output.decode()
    assert containers_of(client, process.pid) == []


KILLED_WORKER_TEST = """
import os, pathlib, signal

def test_a_worker_killed_while_it_holds_a_broker(mqtt_broker):
    mqtt_broker.client().disconnect()
    pathlib.Path("worker.pid").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)

def test_another_one(edgesim_seed):
    pass
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
    assert containers_of(client, worker) == [], "the dead worker's broker outlived the session"


def test_a_killed_session_is_reaped_by_the_next(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    killed_dir, next_dir = tmp_path / "killed", tmp_path / "next"
    killed_dir.mkdir()
    next_dir.mkdir()
    process = start_pytest(killed_dir, WAITING_TEST)
    wait_until_ready(killed_dir, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    left = containers_of(client, process.pid)
    assert left, "a SIGKILLed session cannot clean up: its broker is still there"

    following = start_pytest(next_dir, FAILING_TEST.replace("assert False", "assert True"))
    output, _ = following.communicate(timeout=180)
    assert following.returncode == 0, output.decode()
    assert containers_of(client, process.pid) == []
    assert containers_of(client, following.pid) == []


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


def test_a_killed_session_s_process_broker_is_reaped_by_the_next(tmp_path: Path) -> None:
    """The process backend's mosquitto outlives a SIGKILLed session (it is not its child's
    keeper); the next process broker stops it and removes its directory."""
    from pytest_edgesim.live.process_broker import ProcessBroker, mosquitto_binary
    from pytest_edgesim.live.processes import pid_alive

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
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    broker_pid = int((tmp_path / "broker.pid").read_text())
    assert pid_alive(broker_pid), "a SIGKILLed session cannot stop its mosquitto"

    following = ProcessBroker.start(binary)  # the next session's broker reaps first
    try:
        deadline = time.monotonic() + 10
        while pid_alive(broker_pid):
            assert time.monotonic() < deadline, "the dead session's mosquitto still runs"
            time.sleep(0.01)
    finally:
        following.stop()
