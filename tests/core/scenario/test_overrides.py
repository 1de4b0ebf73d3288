"""Overrides by dotted path: from code (a dict) and from the command line (``PATH=VALUE``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgesim import Scenario, ScenarioError, simulate
from pytest_edgesim.core.scenario.overrides import parse_path, parse_value
from pytest_edgesim.core.scenario.schema import BernoulliLoss, ConstantDelay
from pytest_edgesim.core.units import TICKS_PER_MS, TICKS_PER_SECOND

BASIC = Path(__file__).resolve().parents[3] / "scenarios" / "basic.yaml"


@pytest.fixture(scope="module")
def basic() -> Scenario:
    return Scenario.from_yaml(BASIC)


def test_dict_overrides_replace_fields(basic: Scenario):
    changed = basic.with_overrides(
        {
            "duration": "30s",
            "network.default.latency": "5ms",
            "devices[0].count": 5,
            "network.links[0].loss": 0.1,
        }
    )

    assert changed.duration_ticks == 30 * TICKS_PER_SECOND
    assert changed.spec.network.default.latency == 5 * TICKS_PER_MS
    assert len(changed.devices) == 5
    loss = changed.spec.network.links[0].loss
    assert isinstance(loss, BernoulliLoss) and loss.rate == 0.1
    # the original is untouched; the source and base directory carry over
    assert basic.duration_ticks == 60 * TICKS_PER_SECOND and len(basic.devices) == 3
    assert (changed.source, changed.base_dir) == (basic.source, basic.base_dir)


def test_set_strings_are_read_as_yaml(basic: Scenario):
    changed = basic.with_overrides(
        [
            "seed=9",
            "devices[0].qos=1",
            "devices[0].topic = sites/{name}/t",
            "gateways[0].subscribe=[sites/#, other/+]",
            "gateways[0].aggregate={count: 4, functions: [max]}",
            "network.links[1].reorder=true",
        ]
    )

    assert changed.seed == 9
    assert changed.spec.devices[0].qos == 1
    assert changed.devices[0].topic == "sites/temp-0/t"
    assert [s.filter for s in changed.spec.gateways[0].subscribe] == ["sites/#", "other/+"]
    aggregate = changed.spec.gateways[0].aggregate
    assert aggregate is not None and (aggregate.count, aggregate.functions) == (4, ["max"])
    assert changed.spec.network.links[1].reorder is True


def test_list_items_can_be_named(basic: Scenario):
    changed = basic.with_overrides({"gateways.gateway.queue.capacity": 3, "devices.temp.count": 2})
    assert changed.spec.gateways[0].queue.capacity == 3
    assert len(changed.devices) == 2


def test_missing_mappings_are_created(basic: Scenario):
    changed = basic.with_overrides(["broker.processing_delay=3ms", "broker.retry_interval=2s"])
    delay = changed.spec.broker.processing_delay
    assert isinstance(delay, ConstantDelay) and delay.value == 3 * TICKS_PER_MS
    assert changed.spec.broker.retry_interval == 2 * TICKS_PER_SECOND


def test_a_problem_elsewhere_names_every_override(basic: Scenario):
    # renaming the cloud leaves the references to it dangling: the error names both
    with pytest.raises(ScenarioError) as caught:
        basic.with_overrides(["cloud.name=backend", "seed=1"])
    assert caught.value.problems == [
        f"{basic.source}: override 'cloud.name', 'seed': network.links[1].to: 'cloud' "
        "matches no node; "
        "nodes are: broker, backend, temp-0, temp-1, temp-2, gateway",
        f"{basic.source}: override 'cloud.name', 'seed': gateways[0].forward.to: 'cloud' "
        "is not a node",
    ]


def test_no_overrides_is_the_same_scenario(basic: Scenario):
    assert basic.with_overrides({}) is basic
    assert basic.with_overrides([]) is basic


def test_an_override_changes_the_run(basic: Scenario):
    slow = basic.with_overrides(["network.links[0].latency=80ms"])
    fast = simulate(basic, until="5s").metrics.link("temp-0", "broker")
    slower = simulate(slow, until="5s").metrics.link("temp-0", "broker")
    assert fast.latency_ms["min"] == pytest.approx(20.0, rel=0.02)
    assert slower.latency_ms["min"] == pytest.approx(80.0, rel=0.02)


def test_paths_and_values_parse():
    assert parse_path("devices[0].publish.period") == ["devices", 0, "publish", "period"]
    assert parse_path("gateways.gw-1.aggregate.count") == ["gateways", "gw-1", "aggregate", "count"]
    assert parse_path("network.links[2]") == ["network", "links", 2]
    assert parse_value("0.05") == 0.05
    assert parse_value("20ms") == "20ms"
    assert parse_value("[a, b]") == ["a", "b"]
    assert parse_value("") == ""
    assert parse_value("a: b: c") == "a: b: c"  # not YAML, and not meant to be: a string


@pytest.mark.parametrize("text", ["[sites/#", "{unclosed: 1", "'quoted", '"quoted'])
def test_a_value_that_starts_as_yaml_but_is_broken_is_an_error(basic: Scenario, text: str):
    with pytest.raises(ValueError, match="is not valid YAML"):
        parse_value(text)
    with pytest.raises(ScenarioError) as caught:
        basic.with_overrides([f"gateways[0].subscribe={text}"])
    assert caught.value.problems == [
        f"{basic.source}: override 'gateways[0].subscribe': the value {text!r} is not valid "
        f"YAML: {caught.value.problems[0].rsplit('YAML: ', 1)[1]}"
    ]


@pytest.mark.parametrize("overrides", ["seed=7", b"seed=7", 7, None])
def test_overrides_that_are_not_a_list_or_mapping_are_a_type_error(basic: Scenario, overrides):
    with pytest.raises(
        TypeError, match=r"^overrides must be a mapping of paths to values or a list"
    ):
        basic.with_overrides(overrides)
    if overrides == "seed=7":
        with pytest.raises(TypeError, match=r"for one override write \['seed=7'\]"):
            basic.with_overrides(overrides)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["duration"], "override 'duration': expected PATH=VALUE, e.g. duration=30s"),
        (["=3"], "override '': the path is empty"),
        (["devices[x=1"], "override 'devices[x': cannot read the path at '[x'"),
        ({"devices[5].count": 3}, "override 'devices[5].count': devices has 1 item(s)"),
        (
            {"gateways.nope.queue.capacity": 3},
            "override 'gateways.nope.queue.capacity': gateways has no item named 'nope' "
            "(names: gateway)",
        ),
        ({"duration.unit": "s"}, "override 'duration.unit': duration is not a mapping or list"),
        (
            {"network.links[0].los": 0.1},
            "override 'network.links[0].los': unknown field 'los' (did you mean 'loss'?)",
        ),
        (
            ["network.default.latency=fast"],
            "override 'network.default.latency': must be a duration such as '20ms', '1.5s' "
            "or 2 (seconds), got 'fast'",
        ),
        ({"devices[0].count": 0}, "override 'devices[0].count': must be at least 1, got 0"),
        (
            {"network.links[0].to": "gatway"},
            "override 'network.links[0].to': 'gatway' matches no node (did you mean 'gateway'?)",
        ),
    ],
)
def test_bad_overrides_name_the_scenario_and_the_override(basic: Scenario, override, message: str):
    with pytest.raises(ScenarioError) as caught:
        basic.with_overrides(override)
    assert len(caught.value.problems) == 1
    assert str(caught.value).startswith(f"{basic.source}: {message}")


def test_with_gateways_swaps_every_gateways_implementation_and_keeps_a_set_mode():
    data = {
        "edgesim": 1,
        "devices": [{"name": "s"}],
        "gateways": [
            {"name": "open", "subscribe": "#"},
            {"name": "set", "subscribe": "#", "docker": {"mode": "mqtt"}},
        ],
    }
    scenario = Scenario.from_dict(data)
    twin = scenario.with_gateways("docker", mode="lockstep")
    modes = {g.name: (g.implementation, g.docker and g.docker.mode) for g in twin.spec.gateways}
    assert modes == {"open": ("docker", "lockstep"), "set": ("docker", "mqtt")}
    back = twin.with_gateways("python_model", mode="lockstep")  # a mode only for docker
    assert {g.implementation for g in back.spec.gateways} == {"python_model"}
    assert simulate(back, until="3s").trace_digest == simulate(scenario, until="3s").trace_digest
    with pytest.raises(
        ScenarioError, match="implementation must be 'python_model', 'python', 'docker'"
    ):
        scenario.with_gateways("rust")
    with pytest.raises(ScenarioError, match="mode must be 'mqtt' or 'lockstep', got 'sync'"):
        scenario.with_gateways("docker", mode="sync")
