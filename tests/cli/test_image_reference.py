"""``docker.image`` is checked against Docker's reference grammar when a scenario loads, so
``edgesim validate`` catches a name the engine would refuse ("invalid reference format")."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgesim import Scenario, ScenarioError
from pytest_edgesim.cli.app import EXIT_FAILED, main


def with_image(image: str) -> dict:
    return {
        "edgesim": 1,
        "gateways": [
            {
                "name": "gw",
                "implementation": "docker",
                "subscribe": "s/#",
                "docker": {"mode": "lockstep", "image": image},
            }
        ],
    }


@pytest.mark.parametrize(
    "image",
    [
        "gateway",
        "edgesim/gateway:latest",
        "nosuch/image:1",
        "python:3.12-slim",
        "registry.local:5000/team/my_node__x:1.2-rc.1",
        "localhost/a-b/c.d",
        "ubuntu@sha256:" + "0" * 64,
    ],
)
def test_valid_image_references_load(image: str) -> None:
    gateway = Scenario.from_dict(with_image(image)).spec.gateways[0]
    assert gateway.docker is not None and gateway.docker.image == image


@pytest.mark.parametrize(
    "image",
    ["Bad Image Name!!", "Gateway", "team/Node", "a//b", "-a", "a-", "node:", "a:b:c", ""],
)
def test_invalid_image_references_are_scenario_errors(image: str) -> None:
    with pytest.raises(ScenarioError, match=r"gateways\[0\]\.docker\.image: .* is not a Docker"):
        Scenario.from_dict(with_image(image))


def test_edgesim_validate_reports_a_bad_image_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "edgesim: 1\ngateways:\n  - name: gw\n    implementation: docker\n    subscribe: s/#\n"
        '    docker: {mode: lockstep, image: "Bad Image Name!!"}\n'
    )
    assert main(["validate", str(path)]) == EXIT_FAILED
    assert capsys.readouterr().err.strip() == (
        f"{path}:6: gateways[0].docker.image: 'Bad Image Name!!' is not a Docker image "
        "reference: expected [REGISTRY[:PORT]/]NAME[:TAG], NAME being lower-case letters and "
        "digits in parts separated by '/' (joined within a part by '.', '_' or '-'), such as "
        "'edgesim/gateway' or 'registry.local:5000/team/node:1.2'"
    )
