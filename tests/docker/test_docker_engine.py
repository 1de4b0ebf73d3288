from __future__ import annotations

import hashlib
import json
from pathlib import Path

import docker
import pytest

from pytest_edgesim.docker import engine


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("unix:///var/run/docker.sock", "127.0.0.1"),
        ("http+docker://localhost", "127.0.0.1"),
        ("npipe:////./pipe/docker_engine", "127.0.0.1"),
        ("tcp://10.1.2.3:2376", "10.1.2.3"),
        ("https://edge-box.local:2376", "edge-box.local"),
        ("ssh://pi@raspberrypi", "raspberrypi"),
        ("10.1.2.3:2375", "10.1.2.3"),
    ],
)
def test_published_ports_are_reached_at_the_engine_host(url: str, host: str) -> None:
    assert engine.host_of_engine_url(url) == host


def _write_context(config_dir: Path, name: str, host: str) -> None:
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}})
    )


def test_the_current_docker_context_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "edge"}))
    _write_context(tmp_path, "edge", "tcp://192.0.2.7:2375")
    endpoint = engine.resolve_endpoint()
    assert endpoint.url == "tcp://192.0.2.7:2375"
    assert endpoint.source == "docker context 'edge'"

    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert engine.resolve_endpoint().source == "the default socket"

    monkeypatch.setenv("DOCKER_HOST", "tcp://198.51.100.1:2375")
    assert engine.resolve_endpoint() == engine.Endpoint(
        "tcp://198.51.100.1:2375", False, "DOCKER_HOST"
    )


def test_a_missing_context_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("DOCKER_CONTEXT", "nowhere")
    with pytest.raises(engine.DockerUnavailableError, match="'nowhere'"):
        engine.resolve_endpoint()
    available, reason = engine.docker_available()
    assert not available
    assert "nowhere" in reason


def test_an_unreachable_engine_gives_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    available, reason = engine.docker_available(timeout_s=1)
    assert not available
    assert "/nonexistent/docker.sock" in reason


def test_the_published_host_can_be_overridden(
    docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(engine.PUBLISHED_HOST_ENV, raising=False)
    expected = engine.host_of_engine_url(engine.resolve_endpoint().url)
    assert engine.published_host(docker_client) == expected
    monkeypatch.setenv(engine.PUBLISHED_HOST_ENV, "172.17.0.1")
    assert engine.published_host(docker_client) == "172.17.0.1"
    assert engine.publish_ip(docker_client) == "0.0.0.0"


def test_docker_is_available_here(docker_client: docker.DockerClient) -> None:
    available, description = engine.docker_available()
    assert available, description
    assert description.startswith("Docker ")
