"""scripts/deploy_to_edge.sh: the commands it prints, and a real deployment to this machine.

The real run replaces ``ssh`` and ``scp`` with shims that run the "remote" side here, so
the script saves nothing it does not load, starts the real broker and gateway images with
the gateway configuration of a scenario, and the test sends readings through them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import NotFound
from mqtt_probe import Probe, wait_for_log_line

from pytest_edgesim.docker.broker import BrokerContainer
from pytest_edgesim.docker.engine import publish_ip, published_host
from pytest_edgesim.docker.faults import free_host_port
from pytest_edgesim.docker.images import ensure_image
from pytest_edgesim.docker.labels import new_session_id, resource_labels

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy_to_edge.sh"
SCENARIO = ROOT / "scenarios" / "basic.yaml"
# What docs/deployability.md changes for production, minus TLS and passwords.
PRODUCTION_LIKE_BROKER_CONFIG = """\
listener 1883
allow_anonymous true
persistence true
persistence_location /mosquitto/data/
autosave_interval 60
log_dest stderr
"""


def _deploy(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


def _commands(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


def test_dry_run_prints_save_load_and_run_commands() -> None:
    result = _deploy("--dry-run", "--scenario", str(SCENARIO), "pi@edge-box")
    assert result.returncode == 0, result.stderr
    commands = _commands(result.stdout)
    assert len(commands) == len(result.stdout.splitlines())  # a dry run only prints commands
    save = next(c for c in commands if c.startswith("docker save"))
    assert save == (
        "docker save edgesim/mqtt-broker:latest edgesim/gateway:latest | gzip "
        "| ssh pi@edge-box 'gunzip | docker load'"
    )
    runs = [c for c in commands if c.startswith("ssh pi@edge-box docker run")]
    assert runs == [
        "ssh pi@edge-box docker run -d --name edgesim-broker --restart unless-stopped "
        "--network edgesim-edge -p 1883:1883 edgesim/mqtt-broker:latest",
        "ssh pi@edge-box docker run -d --name edgesim-gateway --restart unless-stopped "
        "--network edgesim-edge --env-file REMOTE_HOME/edgesim/gateway.env "
        "-e EDGESIM_BROKER_HOST=edgesim-broker -e EDGESIM_BROKER_PORT=1883 "
        "edgesim/gateway:latest",
    ]
    assert any(
        c.startswith("scp ") and c.endswith(":REMOTE_HOME/edgesim/gateway.env") for c in commands
    )
    # Order: architecture check, copy, configuration, then the containers.
    assert commands.index(save) < commands.index(runs[0])
    assert "Architecture" in commands[0]


def test_dry_run_with_an_external_broker_runs_only_the_gateway(tmp_path: Path) -> None:
    config = tmp_path / "gateway.json"
    config.write_text(
        json.dumps({"name": "gw", "subscribe": [{"filter": "a/#"}], "forward": {"topic": "b"}})
    )
    result = _deploy(
        "--dry-run",
        "--no-broker",
        "--broker-host",
        "mqtt.plant.example",
        "--broker-port",
        "8883",
        "--gateway-config",
        str(config),
        "--no-copy",
        "ops@gw-7",
    )
    assert result.returncode == 0, result.stderr
    commands = _commands(result.stdout)
    assert not any("docker save" in c or "mqtt-broker" in c for c in commands)
    (gateway_run,) = [c for c in commands if " docker run " in c]
    assert "-e EDGESIM_BROKER_HOST=mqtt.plant.example -e EDGESIM_BROKER_PORT=8883" in gateway_run


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), "give USER@HOST"),
        (("box",), "needs a configuration"),
        (("--scenario", "nope.yaml", "box"), "nope.yaml: no such file"),
        (("--no-broker", "--scenario", str(SCENARIO), "box"), "--no-broker needs --broker-host"),
        (("--frobnicate", "box"), "unknown option --frobnicate"),
        (("--scenario",), "--scenario needs a value"),
        (("--scenario", str(SCENARIO), "--gateway", "nosuch", "box"), "has no gateway 'nosuch'"),
        (("--gateway-config", str(ROOT / "pyproject.toml"), "box"), "not JSON"),
    ],
)
def test_bad_arguments_fail_with_one_clear_message(
    arguments: tuple[str, ...], message: str
) -> None:
    result = _deploy("--dry-run", *arguments)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    # (stopped before the first command, or at the configuration, before any is run)
    assert not any(" docker run " in line for line in result.stdout.splitlines())


def test_a_dry_run_refuses_a_gateway_config_the_gateway_would_refuse(tmp_path: Path) -> None:
    config = tmp_path / "gateway.json"
    config.write_text("{}")
    result = _deploy("--dry-run", "--gateway-config", str(config), "box")
    assert result.returncode == 2
    assert f"--gateway-config {config}: name is missing" in result.stderr
    assert not any(" docker run " in line for line in result.stdout.splitlines())


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_script_is_shellcheck_clean() -> None:
    result = subprocess.run(
        ["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


# -- a real deployment, with ssh and scp running the remote side here -------------------------


@pytest.fixture
def loopback_ssh(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``ssh`` and ``scp`` run the "remote" side on this machine."""
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "ssh").write_text(
        '#!/bin/sh\nwhile [ "$1" = "-o" ]; do shift 2; done\nshift\nexec sh -c "$*"\n'
    )
    (shims / "scp").write_text(
        '#!/bin/sh\nwhile [ "$1" = "-o" ]; do shift 2; done\nexec cp "$1" "${2#*:}"\n'
    )
    for shim in shims.iterdir():
        shim.chmod(0o755)
    return {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture
def deployment_prefix(docker_client: docker.DockerClient, test_session: str) -> Iterator[str]:
    prefix = f"{test_session}-deploy-{new_session_id()[-6:]}"
    yield prefix
    for name in (f"{prefix}-gateway", f"{prefix}-broker"):
        with contextlib.suppress(NotFound):
            docker_client.api.remove_container(name, force=True)
    with contextlib.suppress(NotFound):
        docker_client.api.remove_network(f"{prefix}-edge")
    with contextlib.suppress(NotFound):
        docker_client.api.remove_volume(f"{prefix}-mosquitto-data")


def test_a_real_deployment_runs_the_scenarios_gateway_against_the_broker(
    docker_client: docker.DockerClient,
    broker_image: str,
    test_session: str,
    loopback_ssh: dict[str, str],
    deployment_prefix: str,
    tmp_path: Path,
) -> None:
    gateway_image = ensure_image("gateway", docker_client)
    broker_config = tmp_path / "mosquitto.conf"
    broker_config.write_text(PRODUCTION_LIKE_BROKER_CONFIG)
    mqtt_port = free_host_port(publish_ip(docker_client))
    labels = [
        argument
        for key, value in resource_labels("deployment", session=test_session).items()
        for argument in ("--label", f"{key}={value}")
    ]
    result = _deploy(
        "--scenario", str(SCENARIO),
        "--broker-image", broker_image,
        "--gateway-image", gateway_image,
        "--mqtt-port", str(mqtt_port),
        "--name-prefix", deployment_prefix,
        "--remote-dir", str(tmp_path / "box"),
        "--broker-config", str(broker_config),
        *labels,
        "edge@loopback",
        env=loopback_ssh,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Loaded image" in result.stdout

    gateway = docker_client.containers.get(f"{deployment_prefix}-gateway")
    assert gateway.labels["edgesim.session"] == test_session
    assert wait_for_log_line(gateway, b"ready", 30), gateway.logs().decode()
    env_file = (tmp_path / "box" / "gateway.env").read_text()
    config = json.loads(env_file.removeprefix("EDGESIM_GATEWAY_CONFIG="))
    assert config["name"] == "gateway"
    # the scenario's simulated processing delay stays behind: the box has its own
    assert config["processing_delay_us"] == {"distribution": "constant", "value": 0}
    assert "No such container" not in result.stderr  # a first deploy removes nothing, quietly

    broker = BrokerContainer(
        docker_client.containers.get(f"{deployment_prefix}-broker").id,
        f"{deployment_prefix}-broker",
        published_host(docker_client),
        mqtt_port,
        docker_client,
    )
    broker.wait_ready(30)
    cloud = Probe(broker.host, broker.port, subscribe=(("cloud/gateway/temperature", 1),))
    sensor = Probe(broker.host, broker.port)
    try:
        # basic.yaml's gateway aggregates every 10 readings into mean/min/max/count.
        for value in range(10):
            reading = {"value": float(value), "origin": "temp-0", "seq": value}
            sensor.publish("sites/lab/temp-0/temperature", json.dumps(reading).encode(), qos=1)
        aggregate = json.loads(cloud.receive(30).payload)
    finally:
        sensor.close()
        cloud.close()
    assert aggregate["count"] == 10
    assert aggregate["mean"] == pytest.approx(4.5)
    assert (aggregate["min"], aggregate["max"]) == (0.0, 9.0)
    # The mounted configuration is the one running: it keeps its database on the volume.
    broker.stop()
    log = "\n".join(broker.logs())
    assert "Saving in-memory database to /mosquitto/data/" in log
    assert "Error" not in log, log
