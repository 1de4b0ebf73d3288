"""A gateway's ``session`` in its configuration: from the scenario, checked, scaled, and the
client id a persistent session uses."""

from __future__ import annotations

import os

import pytest

from pytest_edgesim import Scenario
from pytest_edgesim.gateway.config import GatewayConfigError, config_from_spec, validate_config
from pytest_edgesim.gateway.service import default_client_id
from pytest_edgesim.live.broker_config import mosquitto_settings
from pytest_edgesim.live.run import scale_config


def gateway_spec(session=None):
    gateway = {"name": "gw", "subscribe": ["sensors/#"]}
    if session is not None:
        gateway["session"] = session
    return Scenario.from_dict({"edgesim": 1, "gateways": [gateway]}).spec.gateways[0]


def test_the_configuration_carries_the_session_only_when_the_scenario_gives_one():
    assert "session" not in config_from_spec(gateway_spec())
    config = config_from_spec(gateway_spec({"clean": False, "keepalive": "2.5s"}))
    assert config["session"] == {"clean": False, "keepalive_s": 3}  # whole seconds, up
    validate_config(config)


def test_a_faster_live_run_shortens_the_keepalive_but_not_below_a_second():
    config = config_from_spec(gateway_spec({"clean": False, "keepalive": "10s"}))
    assert scale_config(config, 4)["session"]["keepalive_s"] == 3
    assert scale_config(config, 100)["session"]["keepalive_s"] == 1


@pytest.mark.parametrize(
    ("session", "message"),
    [
        ({"clean": "no"}, 'session.clean is "no": expected true or false'),
        ({"keepalive_s": 0}, "session.keepalive_s is 0: expected an integer from 1 to 65535"),
        ("persistent", 'session is "persistent": expected {"clean": false'),
    ],
)
def test_a_wrong_session_is_named(session, message):
    config = {**config_from_spec(gateway_spec()), "session": session}
    with pytest.raises(GatewayConfigError, match=message.replace("{", r"\{")):
        validate_config(config)


def test_a_persistent_session_keeps_its_client_id_across_processes():
    assert str(os.getpid()) in default_client_id("gw")
    assert str(os.getpid()) not in default_client_id("gw", persistent=True)


def test_the_broker_fields_are_mosquitto_options_with_every_default_written():
    spec = Scenario.from_dict({"edgesim": 1}).spec.broker
    assert mosquitto_settings(spec) == {
        "max_inflight_messages": "0",
        "max_queued_messages": "1000",
        "queue_qos0_messages": "false",
        "sys_interval": "1",
    }
