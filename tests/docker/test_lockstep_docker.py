"""Lockstep against the real engine: the gateway image driven in virtual time."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lockstep_gateways import serve_lockstep_gateways

from pytest_edgesim import Scenario, Simulation, simulate
from pytest_edgesim.core.native import NativeSimulation, choose_engine
from pytest_edgesim.docker.images import ensure_image
from pytest_edgesim.docker.labels import PID_LABEL, ROLE_LABEL, SESSION_LABEL, session_id
from pytest_edgesim.docker.lockstep_gateway import GATEWAY_COMMAND, ROLE, NodeContainer
from pytest_edgesim.gateway.config import config_from_spec
from pytest_edgesim.lockstep.host import LockstepError, hosted_gateway

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def new_lockstep_containers(client: docker.DockerClient, before: set[str]) -> list[str]:
    """This process's lockstep containers that were not there ``before`` (another test's
    container, reaped at the session's end, is not this test's business)."""
    return [c["Id"] for c in lockstep_containers(client) if c["Id"] not in before]


def _ids(client: docker.DockerClient) -> set[str]:
    return {summary["Id"] for summary in lockstep_containers(client)}


def lockstep_containers(client: docker.DockerClient) -> list[dict]:
    # this process's own: xdist workers may share the session id
    filters = {
        "label": [
            f"{SESSION_LABEL}={session_id()}",
            f"{ROLE_LABEL}={ROLE}",
            f"{PID_LABEL}={os.getpid()}",
        ]
    }
    return client.api.containers(all=True, filters=filters)


@pytest.fixture(scope="module")
def gateway_image(docker_client: docker.DockerClient) -> str:
    return ensure_image("gateway", docker_client)


@pytest.mark.parametrize("name", ["basic.yaml", "lossy.yaml", "partition.yaml"])
def test_the_gateway_container_in_lockstep_gives_the_python_models_digest(
    name: str, docker_client: docker.DockerClient, gateway_image: str
) -> None:
    scenario = Scenario.from_yaml(SCENARIOS / name)
    before = _ids(docker_client)
    expected = simulate(scenario)
    result = simulate(scenario.with_gateways("docker", mode="lockstep"))
    assert result.trace_digest == expected.trace_digest
    assert result.metrics == expected.metrics
    # the container's forwards name their readings over the protocol as the model's do
    assert result.deliveries == expected.deliveries
    assert result.delivery("*", "cloud").delivered > 0
    gateway = scenario.spec.gateways[0].name
    assert result.nodes[gateway]["implementation"] == "docker:lockstep"
    assert result.nodes[gateway]["processed"] == expected.nodes[gateway]["processed"] > 0
    assert not new_lockstep_containers(docker_client, before)


@pytest.mark.parametrize("name", ["basic.yaml", "lossy.yaml", "partition.yaml"])
def test_the_lockstep_container_on_the_native_engine_gives_the_pure_engines_result(
    name: str, docker_client: docker.DockerClient, gateway_image: str
) -> None:
    """The container is a Python node to the native engine (called back for each packet and
    timer, over the protocol as on the pure engine): the same trace and the same result."""
    twin = Scenario.from_yaml(SCENARIOS / name).with_gateways("docker", mode="lockstep")
    assert choose_engine(twin).native
    before = _ids(docker_client)
    with Simulation(twin) as pure:
        expected = pure.run("30s")
    with NativeSimulation(twin) as fast:
        got = fast.run("30s")
    assert got.trace_digest == expected.trace_digest
    assert got.events == expected.events
    assert got.metrics == expected.metrics
    assert got.deliveries == expected.deliveries
    assert got.nodes == expected.nodes
    assert got == expected
    assert not new_lockstep_containers(docker_client, before)


def test_the_same_seed_gives_the_same_digest_again(
    docker_client: docker.DockerClient, gateway_image: str
) -> None:
    twin = Scenario.from_yaml(SCENARIOS / "basic.yaml").with_gateways("docker", mode="lockstep")
    first = simulate(twin, seed=5, until="20s")
    assert simulate(twin, seed=5, until="20s").trace_digest == first.trace_digest
    assert simulate(twin, seed=6, until="20s").trace_digest != first.trace_digest


def test_a_restarted_lockstep_container_gives_the_python_models_digest(
    docker_client: docker.DockerClient, gateway_image: str
) -> None:
    """A kill drops the container's session, a start opens the next one (the container's
    node serves sessions one after another): the same trace as the in-process logic."""
    spec = Scenario.from_yaml(SCENARIOS / "basic.yaml").to_dict()
    spec["gateways"][0]["aggregate"] = {"window": "5s", "functions": ["mean", "count"]}
    spec["faults"] = [
        {"at": "12s", "action": "kill", "target": "gateway"},
        {"at": "13500ms", "action": "start", "target": "gateway"},
        {"at": "20s", "action": "restart", "target": "gateway"},
        {"at": "21s", "action": "pause", "target": "gateway"},
        {"at": "24s", "action": "resume", "target": "gateway"},
    ]
    scenario = Scenario.from_dict(spec)
    before = _ids(docker_client)
    expected = simulate(scenario, until="30s")
    result = simulate(scenario.with_gateways("docker", mode="lockstep"), until="30s")
    assert result.trace_digest == expected.trace_digest
    assert result.nodes["gateway"]["restarts"] == 2
    assert not new_lockstep_containers(docker_client, before)


def test_a_container_killed_mid_run_stops_the_run_with_its_logs_and_is_removed(
    docker_client: docker.DockerClient, gateway_image: str
) -> None:
    twin = Scenario.from_yaml(SCENARIOS / "basic.yaml").with_gateways("docker", mode="lockstep")
    before = _ids(docker_client)
    with Simulation(twin) as simulation:
        simulation.run("5s")
        gateway = simulation.node("gateway")
        container = gateway.host.container
        assert new_lockstep_containers(docker_client, before)
        docker_client.api.kill(container.container_id)
        docker_client.api.wait(container.container_id)
        with pytest.raises(LockstepError) as caught:
            simulation.run("10s")
    message = str(caught.value)
    assert "lockstep node 'gateway'" in message
    assert "waiting for reply to advance to t=" in message
    assert "no longer running" in message
    assert "listening on" in message  # the container's last log lines
    assert not new_lockstep_containers(docker_client, before)


# --- a property over small scenarios, one container for every example ----------------------
@pytest.fixture(scope="module")
def shared_node(docker_client: docker.DockerClient, gateway_image: str) -> Iterator[NodeContainer]:
    container = NodeContainer.start(gateway_image, docker_client, command=GATEWAY_COMMAND)
    yield container
    container.remove()


@st.composite
def small_scenarios(draw: st.DrawFn) -> dict:
    """A few sensors, one gateway with or without aggregation, a lossy latency network."""
    aggregate = draw(
        st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"count": st.integers(1, 6)},
                optional={"window": st.sampled_from(["500ms", "1s", "3s"])},
            ),
        )
    )
    gateway = {
        "name": "gw",
        "subscribe": [{"filter": "s/#", "qos": draw(st.integers(0, 1))}],
        "processing_delay": draw(
            st.sampled_from(
                [
                    {"distribution": "constant", "value": "0ms"},
                    {"distribution": "uniform", "low": "1ms", "high": "30ms"},
                    {"distribution": "exponential", "mean": "20ms"},
                ]
            )
        ),
        "queue": {
            "capacity": draw(st.integers(1, 5)),
            "drop": draw(st.sampled_from(["newest", "oldest"])),
        },
        "forward": {"qos": draw(st.integers(0, 1))},
    }
    if aggregate is not None:
        gateway["aggregate"] = aggregate
    return {
        "edgesim": 1,
        "name": "generated",
        "seed": draw(st.integers(0, 2**32)),
        "duration": "5s",
        "devices": [
            {
                "name": "s",
                "count": draw(st.integers(1, 4)),
                "topic": "s/{name}",
                "qos": draw(st.integers(0, 1)),
                "publish": {"period": draw(st.sampled_from(["50ms", "200ms", "1s"]))},
                "value": {"model": "random_walk", "start": 10.0, "step": 1.0},
            }
        ],
        "gateways": [gateway],
        "network": {
            "default": {
                "latency": draw(st.sampled_from(["0ms", "1ms", "10ms"])),
                "loss": draw(st.sampled_from([0.0, 0.1])),
            }
        },
    }


def test_container_and_python_model_agree_on_small_generated_scenarios(
    shared_node: NodeContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_lockstep_gateways(
        monkeypatch,
        lambda spec, site: hosted_gateway(
            spec, site, shared_node.socket_host(owned=False), config_from_spec(spec)
        ),
    )

    @settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(small_scenarios())
    def agree(data: dict) -> None:
        scenario = Scenario.from_dict(data)
        expected = simulate(scenario)
        assert (
            simulate(scenario.with_gateways("docker", mode="lockstep")).trace_digest
            == expected.trace_digest
        )

    agree()


def test_edgesim_run_prints_the_twins_digest(
    docker_client: docker.DockerClient, gateway_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_edgesim.cli.app import main

    # a module-scoped container of another test may be alive meanwhile: compare ids
    before = {summary["Id"] for summary in lockstep_containers(docker_client)}
    digests = []
    for name in ("lockstep-gateway.yaml", "lockstep-gateway-python.yaml"):
        assert main(["run", str(SCENARIOS / name), "--duration", "20s"]) == 0
        out = capsys.readouterr().out
        digests += [line for line in out.splitlines() if line.startswith("trace digest:")]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert {summary["Id"] for summary in lockstep_containers(docker_client)} <= before


MISSING_IMAGE = "edgesim-test.invalid/no-such-node:1"


def test_a_missing_image_is_one_error_naming_the_gateway_and_the_image(
    docker_client: docker.DockerClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_edgesim.cli.app import main
    from pytest_edgesim.docker.images import ImageError

    expected = (
        f"gateway 'gateway': docker.image '{MISSING_IMAGE}' is not on the Docker engine "
        "(edgesim does not pull it)"
    )
    # a module-scoped container of another test may be alive meanwhile: compare ids
    before = {summary["Id"] for summary in lockstep_containers(docker_client)}
    twin = Scenario.from_yaml(SCENARIOS / "basic.yaml").with_gateways("docker", mode="lockstep")
    with pytest.raises(ImageError, match=re.escape(expected)):
        simulate(twin.with_overrides([f"gateways[0].docker.image={MISSING_IMAGE}"]))

    scenario = (SCENARIOS / "lockstep-gateway.yaml").read_text()
    path = tmp_path / "missing.yaml"
    path.write_text(
        scenario.replace("{mode: lockstep}", f'{{mode: lockstep, image: "{MISSING_IMAGE}"}}')
    )
    capsys.readouterr()
    assert main(["run", str(path)]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert {summary["Id"] for summary in lockstep_containers(docker_client)} <= before
