"""The scenario's ``broker:`` section names the real broker: its errors name file:line:field,
and the user's configuration file is checked when the scenario loads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_edgesim import Scenario
from pytest_edgesim.errors import ScenarioError

BROKER = """\
edgesim: 1
broker:
  implementation: docker
{body}
"""


def load(tmp_path: Path, body: str) -> Scenario:
    path = tmp_path / "plant.yaml"
    path.write_text(BROKER.format(body=body))
    return Scenario.from_yaml(path)


def problem(tmp_path: Path, body: str) -> str:
    with pytest.raises(ScenarioError) as raised:
        load(tmp_path, body)
    return str(raised.value)


def test_a_release_and_a_configuration(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mosquitto.conf").write_text("allow_anonymous true\n")

    scenario = load(tmp_path, "  docker: {release: trixie}\n  config: conf/mosquitto.conf")

    assert scenario.spec.broker.docker is not None
    assert scenario.spec.broker.docker.release == "trixie"
    assert scenario.spec.broker.config == "conf/mosquitto.conf"


def test_a_missing_configuration_names_file_line_and_field(tmp_path: Path) -> None:
    message = problem(tmp_path, "  docker: {release: trixie}\n  config: missing.conf")

    assert message == (
        f"{tmp_path / 'plant.yaml'}:5: broker.config: the broker configuration 'missing.conf' "
        f"({tmp_path / 'missing.conf'}) does not exist"
    )


def test_a_directory_is_not_a_configuration(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()

    assert problem(tmp_path, "  config: conf").endswith(f"({tmp_path / 'conf'}) is not a file")


def test_an_unreadable_configuration_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.conf"
    secret.write_text("password_file /etc/do-not-print\n")
    secret.chmod(0)
    if os.geteuid() == 0:  # root reads any file: refuse it as the kernel would for others
        opened = Path.open

        def refuse(path: Path, *args: object, **kwargs: object) -> object:
            if path == secret:
                raise PermissionError(13, "Permission denied", str(path))
            return opened(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Path, "open", refuse)

    message = problem(tmp_path, "  config: secret.conf")

    assert message.endswith("cannot be read: Permission denied")
    assert "do-not-print" not in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "  docker: {release: buster}",
            "broker.docker.release: must be one of 'bookworm', 'trixie' or 'forky', got 'buster'",
        ),
        (
            "  docker: {release: trixie, image: 'eclipse-mosquitto:2'}",
            "broker.docker: give one of release, image and build, not release and image",
        ),
        (
            "  docker: {image: 'Not An Image'}",
            "broker.docker.image: 'Not An Image' is not a Docker image reference",
        ),
        ("  docker: {mode: lockstep}", "broker.docker.mode"),
    ],
)
def test_docker_settings_errors(tmp_path: Path, body: str, expected: str) -> None:
    assert expected in problem(tmp_path, body)


def test_a_configuration_needs_a_real_broker(tmp_path: Path) -> None:
    (tmp_path / "mosquitto.conf").write_text("")
    path = tmp_path / "model.yaml"
    path.write_text("edgesim: 1\nbroker:\n  config: mosquitto.conf\n")

    with pytest.raises(ScenarioError) as raised:
        Scenario.from_yaml(path)

    assert str(raised.value) == (
        f"{path}:2: broker: config applies to a real broker only: add implementation: docker"
    )


def test_the_builder_takes_the_configuration(tmp_path: Path) -> None:
    from pytest_edgesim import ScenarioBuilder

    (tmp_path / "mosquitto.conf").write_text("")
    builder = ScenarioBuilder().broker(
        implementation="docker", docker={"release": "forky"}, config="mosquitto.conf"
    )
    scenario = Scenario.from_dict(builder.to_dict(), base_dir=tmp_path)

    assert scenario.spec.broker.config == "mosquitto.conf"
