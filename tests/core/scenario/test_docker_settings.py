"""A gateway's ``docker:`` settings for a program of the user's: ``command`` and
``environment`` placeholders, ``ready`` and ``isolation``; each mistake is one error naming
the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_edgesim import Scenario, ScenarioError
from pytest_edgesim.core.scenario.schema import DockerSettings
from pytest_edgesim.core.units import TICKS_PER_SECOND

HEAD = """\
edgesim: 1
gateways:
  - name: gw
    implementation: docker
    subscribe: sensors/#
    docker:
"""

CASES = [
    (
        "unknown-placeholder",
        '      command: [my-gw, "--host={broker_hots}"]\n',
        7,
        "gateways[0].docker.command[1]",
        "unknown placeholder {broker_hots} in '--host={broker_hots}': the placeholders are "
        "{broker_host}, {broker_port}, {broker_username}, {broker_password}, {topic_prefix}, "
        "{name}, {client_id}, {control_topic}",
    ),
    (
        "unknown-placeholder-in-environment",
        "      environment: {HOST: '{host}'}\n",
        7,
        "gateways[0].docker.environment.HOST",
        "unknown placeholder {host}",
    ),
    (
        "empty-command",
        "      command: []\n",
        7,
        "gateways[0].docker.command",
        "at least 1",
    ),
    (
        "ready-word",
        "      ready: started\n",
        7,
        "gateways[0].docker.ready",
        "must be 'subscribed' or one of {subscribed: true}, {log: REGEX}, {port: N}, "
        "{command: [...]} (with an optional timeout), got 'started'",
    ),
    (
        "two-strategies",
        "      ready: {log: up, port: 80}\n",
        7,
        "gateways[0].docker.ready",
        "choose one of subscribed, log, port and command, not log and port",
    ),
    (
        "bad-regex",
        "      ready: {log: 'up ('}\n",
        7,
        "gateways[0].docker.ready.log",
        "'up (' is not a regular expression",
    ),
    (
        "bad-port",
        "      ready: {port: 70000}\n",
        7,
        "gateways[0].docker.ready.port",
        "65535",
    ),
    (
        "zero-timeout",
        "      ready: {timeout: 0s}\n",
        7,
        "gateways[0].docker.ready.timeout",
        "must be longer than zero",
    ),
    (
        "isolation",
        "      isolation: none\n",
        7,
        "gateways[0].docker.isolation",
        "'prefix' or 'restart'",
    ),
]


@pytest.mark.parametrize(
    ("docker", "line", "field", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_one_clear_error_naming_file_line_and_field(
    tmp_path: Path, docker: str, line: int, field: str, message: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(HEAD + docker)
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_yaml(path)
    assert len(caught.value.problems) == 1, caught.value.problems
    text = str(caught.value)
    assert text.startswith(f"{path}:{line}: {field}: "), text
    assert message in text


def _docker(settings: dict[str, Any]) -> DockerSettings:
    data = {
        "edgesim": 1,
        "gateways": [
            {"name": "gw", "implementation": "docker", "subscribe": "s/#", "docker": settings}
        ],
    }
    docker = Scenario.from_dict(data).spec.gateways[0].docker
    assert docker is not None
    return docker


def test_ready_and_isolation_as_written() -> None:
    docker = _docker(
        {
            "build": "my-gateway",
            "command": ["my-gw", "--host={broker_host}", "--in={topic_prefix}sensors/#"],
            "environment": {"CONFIG": '{"port": 1} {client_id}'},  # JSON braces are text
            "ready": {"log": r"listening on \d+", "timeout": "5s"},
        }
    )
    assert docker.ready.strategy == "log" and docker.ready.timeout == 5 * TICKS_PER_SECOND
    assert docker.takes_topic_prefix() and docker.isolation is None
    assert _docker({"ready": "subscribed"}).ready.strategy == "subscribed"
    assert _docker({}).ready.strategy is None  # the image's default
    assert not _docker({"environment": {"P": "{name}"}}).takes_topic_prefix()
