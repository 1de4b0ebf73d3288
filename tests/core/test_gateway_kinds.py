"""Gateway kinds: derived once from the scenario, found by name (entry points or code)."""

from __future__ import annotations

import pytest

from pytest_edgesim import GatewayKind, Scenario, SimulationError, register_gateway_kind, simulate
from pytest_edgesim.core import gateway_kinds
from pytest_edgesim.core.gateway_kinds import gateway_kind
from pytest_edgesim.core.scenario.schema import GatewaySpec
from pytest_edgesim.gateway.model import GatewayModel

BASIC = {
    "edgesim": 1,
    "duration": "3s",
    "devices": [{"name": "s", "count": 2, "topic": "sensors/{name}"}],
    "gateways": [{"name": "gw", "subscribe": "sensors/#"}],
}


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ({}, "python_model"),
        ({"implementation": "docker"}, "docker_mqtt"),
        ({"implementation": "docker", "docker": {"mode": "mqtt"}}, "docker_mqtt"),
        ({"implementation": "docker", "docker": {"mode": "lockstep"}}, "docker_lockstep"),
    ],
)
def test_a_gateways_kind_is_derived_from_its_entry(entry: dict, kind: str) -> None:
    spec = GatewaySpec.model_validate({"name": "gw", "subscribe": "s/#", **entry})
    assert spec.kind == kind


def test_the_installed_kinds_are_found_through_their_entry_points() -> None:
    assert gateway_kind("python_model").runs_in_virtual_time
    lockstep = gateway_kind("docker_lockstep")
    assert lockstep.needs_docker and lockstep.runs_in_virtual_time
    mqtt = gateway_kind("docker_mqtt")
    assert mqtt.needs_docker and not mqtt.runs_in_virtual_time and mqtt.wall_clock is not None


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(SimulationError, match=r"no gateway kind 'nosuch'.*python_model"):
        gateway_kind("nosuch")


def test_a_kind_registered_in_code_builds_the_gateways_of_that_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = []

    def build(spec, site):
        node = GatewayModel(
            spec.name, spec, broker=site.broker, retry_interval=site.retry_interval, seed=site.seed
        )
        made.append(node)
        return node

    monkeypatch.setattr(gateway_kinds, "_registered", dict(gateway_kinds._registered))
    register_gateway_kind(GatewayKind("python_model", "counted by the test", virtual_time=build))
    scenario = Scenario.from_dict(BASIC)
    assert simulate(scenario).trace_digest
    assert [node.name for node in made] == ["gw"]


def test_a_wall_clock_kind_cannot_run_in_virtual_time() -> None:
    scenario = Scenario.from_dict(
        {**BASIC, "gateways": [{**BASIC["gateways"][0], "implementation": "docker"}]}
    )
    with pytest.raises(
        SimulationError, match=r"gateway 'gw': a docker_mqtt gateway .* runs only on"
    ):
        simulate(scenario)
