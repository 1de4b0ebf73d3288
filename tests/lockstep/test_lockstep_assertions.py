"""A node's always/sometimes/... statements cross the lockstep protocol (the ``assert``
output kind) and reach the run's assertions, as in process, without touching the trace."""

from __future__ import annotations

from pathlib import Path

import pytest
from lockstep_gateways import serve_lockstep_gateways

from pytest_edgesim import Scenario, simulate
from pytest_edgesim.core.result import RunResult
from pytest_edgesim.gateway.config import config_from_spec
from pytest_edgesim.gateway.logic import GatewayLogic
from pytest_edgesim.lockstep.host import LockstepError, hosted_gateway
from tests.lockstep.test_lockstep_protocol import ServedNode

BASIC = Path(__file__).resolve().parents[2] / "scenarios" / "basic.yaml"


class StatingGateway(GatewayLogic):
    """The project's gateway logic, stating properties about what it receives."""

    def on_message(self, t, message):
        self.node.always(message["seq"] >= 0, "seq is never negative")
        self.node.sometimes(message["seq"] >= 3, "a fourth reading")
        if message["seq"] == 1000:
            self.node.unreachable("a thousandth reading")
        super().on_message(t, message)


class Misstating(GatewayLogic):
    def on_message(self, t, message):
        self.node._outputs.append(
            {"t": t, "kind": "assert", "assertion": "often", "label": "x", "held": True}
        )
        super().on_message(t, message)


def served_run(logic, monkeypatch: pytest.MonkeyPatch) -> RunResult:
    node = ServedNode(logic)
    try:
        serve_lockstep_gateways(
            monkeypatch,
            lambda spec, site: hosted_gateway(
                spec, site, node.host(timeout_s=5), config_from_spec(spec)
            ),
        )
        scenario = Scenario.from_yaml(BASIC).with_gateways("docker", mode="lockstep")
        return simulate(scenario, until="5s")
    finally:
        node.stop()


def test_statements_over_a_socket_reach_the_run_and_leave_the_digest_alone(monkeypatch):
    over_a_socket = served_run(StatingGateway, monkeypatch)
    plain = served_run(GatewayLogic, monkeypatch)

    assert over_a_socket.trace_digest == plain.trace_digest
    records = {record.label: record for record in over_a_socket.assertions}
    assert set(records) == {"seq is never negative", "a fourth reading"}
    assert records["seq is never negative"].failed == 0
    assert records["a fourth reading"].held > 0 and records["a fourth reading"].failed > 0
    assert plain.assertions == ()


def test_a_malformed_statement_is_one_clear_error(monkeypatch):
    with pytest.raises(LockstepError, match="malformed output") as raised:
        served_run(Misstating, monkeypatch)
    assert "field 'assertion' must be one of always, sometimes, reachable, unreachable" in str(
        raised.value
    )
