"""A user's gateway logic states always/sometimes/reachable/unreachable through its node."""

from __future__ import annotations

from pytest_edgesim import simulate
from tests.gateway.test_user_logic import scenario


def test_a_logic_states_properties_without_changing_the_trace():
    plain = simulate(scenario(logic="user_logics:Forwarder"))
    asserting = simulate(scenario(logic="user_logics:AssertingForwarder"))

    assert asserting.trace_digest == plain.trace_digest
    records = {record.label: record for record in asserting.assertions}
    assert records["seq is never negative"].failed == 0
    assert records["seq is never negative"].held > 0
    assert records["a sensor sent a fourth reading"].held > 0
    broken = records["fewer than three readings"]
    assert broken.failed > 0 and broken.first_failure_at == "gw"
    assert broken.first_failure_ticks is not None and broken.first_failure_ticks > 0
    assert records["second reading"].kind == "reachable" and records["second reading"].held > 0
    assert "a thousand readings" not in records  # never stated: never reached
