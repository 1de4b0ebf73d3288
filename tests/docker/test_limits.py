"""Every container edgesim creates has memory, CPU and process limits (docker/limits.py)."""

from __future__ import annotations

import docker
import pytest

from pytest_edgesim.docker.broker import BrokerContainer
from pytest_edgesim.docker.limits import (
    CPUS_ENV,
    MEMORY_ENV,
    PIDS_ENV,
    LimitError,
    container_limits,
)


def test_the_defaults_limit_memory_cpu_and_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (MEMORY_ENV, CPUS_ENV, PIDS_ENV):
        monkeypatch.delenv(name, raising=False)
    assert container_limits() == {
        "mem_limit": 512 * 1024**2,
        "nano_cpus": 1_000_000_000,
        "pids_limit": 256,
    }


def test_the_environment_changes_or_lifts_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "2g")
    monkeypatch.setenv(CPUS_ENV, "0.5")
    monkeypatch.setenv(PIDS_ENV, "none")
    assert container_limits() == {"mem_limit": 2 * 1024**3, "nano_cpus": 500_000_000}


@pytest.mark.parametrize(
    ("name", "value"), [(MEMORY_ENV, "lots"), (MEMORY_ENV, "0"), (CPUS_ENV, "-1"), (PIDS_ENV, "0")]
)
def test_a_limit_that_means_nothing_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(LimitError, match=f"^{name}='{value}': expected"):
        container_limits()


def test_a_broker_container_runs_within_the_limits(
    docker_client: docker.DockerClient, broker_image: str, test_session: str
) -> None:
    with BrokerContainer.start(broker_image, docker_client, session=test_session) as broker:
        host = docker_client.api.inspect_container(broker.container_id)["HostConfig"]
    assert host["Memory"] == 512 * 1024**2
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == 256
