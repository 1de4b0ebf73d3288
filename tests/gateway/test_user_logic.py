"""A user's own gateway logic (``implementation: python``, ``logic: 'module:Name'``): the
scenario fields, loading the logic, and running it in virtual time in this process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_edgesim import Scenario, ScenarioError, simulate
from pytest_edgesim.gateway.config import config_from_spec, validate_config
from pytest_edgesim.gateway.logic_loading import LogicImportError, load_logic

HERE = Path(__file__).parent


def scenario(**gateway) -> Scenario:
    entry = {
        "name": "gw",
        "subscribe": "sensors/#",
        "implementation": "python",
        "logic": "user_logics:Forwarder",
        "forward": {"topic": "cloud/out"},
        **gateway,
    }
    return Scenario.from_dict(
        {
            "edgesim": 1,
            "seed": 3,
            "duration": "5s",
            "devices": [{"name": "s", "count": 2, "topic": "sensors/{name}"}],
            "gateways": [{key: value for key, value in entry.items() if value is not None}],
            "network": {
                "default": {"latency": "2ms"},
                "links": [{"from": "s*", "to": "broker", "loss": 0.1}],
            },
        }
    )


@pytest.mark.parametrize(
    ("gateway", "expected"),
    [
        ({"logic": None}, "implementation: python runs your own logic: add logic:"),
        ({"implementation": "python_model"}, "logic: runs with implementation: python"),
        ({"aggregate": {"count": 3}}, "aggregate: settings of the project's gateway"),
        ({"logic": "user_logics.Forwarder"}, "is not a logic reference: expected 'module:Name'"),
        ({"logic": None, "implementation": "python_model", "config": {"a": 1}}, "config: is the"),
    ],
)
def test_a_user_gateway_entry_that_cannot_mean_anything_is_one_clear_error(gateway, expected):
    with pytest.raises(ScenarioError, match="gateways\\[0\\]") as raised:
        scenario(**gateway)
    assert expected in str(raised.value)


def test_the_logic_runs_in_process_with_its_config_and_the_forward_settings():
    result = simulate(scenario(config={"scale": 3}))

    arrivals = result.arrivals
    assert arrivals and all(arrival.topic == "cloud/out" for arrival in arrivals)
    assert all(arrival.payload["scale"] == 3 for arrival in arrivals)
    node = result.nodes["gw"]
    assert node["implementation"] == "python"
    assert node["forwarded"] == len(arrivals)  # QoS 0 over the lossless default WAN link


def test_a_user_logic_run_repeats_to_the_bit_and_its_seed_matters():
    noisy = scenario(logic="user_logics:Noisy")
    first, second = simulate(noisy), simulate(noisy)
    assert first.trace_digest == second.trace_digest
    assert [a.payload for a in first.arrivals] == [a.payload for a in second.arrivals]
    assert simulate(noisy, seed=4).trace_digest != first.trace_digest


def test_timers_of_a_user_logic_run_in_virtual_time():
    result = simulate(scenario(logic="user_logics:Ticker", config={"period_s": 0.5}))
    ticks = [arrival.payload["tick"] for arrival in result.arrivals]
    assert ticks == list(range(1, len(ticks) + 1)) and len(ticks) == 9  # 0.5 s .. 4.5 s


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("nosuch_module:Logic", "cannot import 'nosuch_module' (ModuleNotFoundError"),
        ("user_logics:Missing", "module 'user_logics' has no 'Missing'"),
        ("user_logics:not_a_logic", "is not a logic: expected a NodeLogic subclass"),
    ],
)
def test_a_logic_that_cannot_be_had_says_why(reference, expected):
    with pytest.raises(LogicImportError, match="gateway 'gw': logic") as raised:
        simulate(scenario(logic=reference))
    assert expected in str(raised.value)


def test_a_logic_beside_the_scenario_file_is_found(tmp_path):
    (tmp_path / "beside_logic.py").write_text(
        "from pytest_edgesim import NodeLogic\n\n"
        "class Echo(NodeLogic):\n"
        "    def on_message(self, t, message):\n"
        "        self.node.publish('cloud/out', message['payload'])\n"
    )
    path = tmp_path / "scenario.yaml"
    path.write_text(
        "edgesim: 1\nduration: 3s\n"
        "devices: [{name: s, topic: 'sensors/{name}'}]\n"
        "gateways: [{name: gw, subscribe: 'sensors/#', implementation: python,\n"
        "            logic: 'beside_logic:Echo', forward: {topic: cloud/out}}]\n"
    )
    assert len(simulate(path).arrivals) == 3


def test_load_logic_takes_a_class_or_a_factory():
    assert load_logic("user_logics:Forwarder").__name__ == "Forwarder"
    assert callable(load_logic("user_logics:Ticker"))


def test_the_gateway_configuration_carries_the_logic_for_a_container():
    spec = scenario(config={"scale": 2}).spec.gateways[0]
    config = config_from_spec(spec, "edgesim/t/")
    validate_config(config)
    assert config["logic"] == "user_logics:Forwarder"
    assert config["logic_config"] == {"forward_topic": "cloud/out", "forward_qos": 0, "scale": 2}


def test_the_project_gateway_configuration_is_unchanged_by_the_logic_fields():
    spec = Scenario.from_yaml(HERE.parents[1] / "scenarios" / "basic.yaml").spec.gateways[0]
    assert "logic" not in config_from_spec(spec)


def test_with_gateways_moves_a_user_logic_between_implementations():
    base = scenario()
    assert base.with_gateways("docker:lockstep").spec.gateways[0].kind == "docker_lockstep"
    assert base.with_gateways("docker:mqtt").spec.gateways[0].kind == "docker_mqtt"
    with pytest.raises(ScenarioError, match="logic: runs with implementation: python"):
        base.with_gateways("python_model")


def test_serving_a_logic_by_reference_needs_module_and_name():
    done = subprocess.run(
        [sys.executable, "-m", "pytest_edgesim.lockstep", "no-colon"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "usage: python -m pytest_edgesim.lockstep MODULE:NAME" in done.stderr
