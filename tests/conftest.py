"""Fixtures for tests against the real Docker engine.

Every resource these tests create belongs to one test session id, which is removed at the
end; the teardown then asserts that nothing with that label is left.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from pytest_edgesim.docker.broker import BrokerContainer
from pytest_edgesim.docker.cleanup import remove_session
from pytest_edgesim.docker.engine import connect, docker_available
from pytest_edgesim.docker.images import ensure_image
from pytest_edgesim.docker.labels import SESSION_LABEL, new_session_id
from pytest_edgesim.pytest_plugin.settings import docker_mode


@pytest.fixture(scope="session")
def docker_client(request: pytest.FixtureRequest) -> Iterator[docker.DockerClient]:
    mode = docker_mode(request.config)  # --edgesim-docker, its ini key or EDGESIM_DOCKER
    if mode == "off":
        pytest.skip("Docker tests are off (--edgesim-docker=off)")
    available, reason = docker_available()
    if not available:
        if mode == "require":
            pytest.fail(f"Docker is required but unavailable: {reason}")
        pytest.skip(f"Docker unavailable: {reason}")
    client = connect()
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_session(docker_client: docker.DockerClient) -> Iterator[str]:
    """A session id owning every resource the docker tests create; nothing outlives it."""
    session = new_session_id()
    yield session
    remove_session(docker_client, session)
    label = {"label": f"{SESSION_LABEL}={session}"}
    leftovers = (
        docker_client.api.containers(all=True, filters=label)
        + docker_client.api.networks(filters=label)
        + (docker_client.api.volumes(filters=label).get("Volumes") or [])
    )
    assert not leftovers, f"resources of {session} left behind: {leftovers}"


@pytest.fixture(scope="session")
def broker_image(docker_client: docker.DockerClient) -> str:
    return ensure_image("broker", docker_client)


@pytest.fixture(scope="module")
def broker(
    docker_client: docker.DockerClient, broker_image: str, test_session: str
) -> Iterator[BrokerContainer]:
    with BrokerContainer.start(broker_image, docker_client, session=test_session) as started:
        yield started
