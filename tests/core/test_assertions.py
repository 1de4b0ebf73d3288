"""Assertions over runs: always, sometimes, reachable, unreachable; recorded and judged."""

from __future__ import annotations

import pytest

from pytest_edgesim import Scenario
from pytest_edgesim.core.assertions import AssertionLog, AssertionRecord, RunAssertions, judge
from pytest_edgesim.core.simulation import Simulation

SECOND = 1_000_000


def log_of(*statements: tuple[str, str, bool, int]) -> tuple[AssertionRecord, ...]:
    log = AssertionLog()
    for kind, label, held, time_s in statements:
        log.record(kind, label, held, time_s * SECOND, "gw")
    return log.records()


def test_a_log_counts_each_property_and_keeps_the_first_counter_example():
    records = log_of(
        ("always", "a", True, 1),
        ("always", "a", False, 2),
        ("always", "a", False, 3),
        ("sometimes", "b", False, 1),
        ("unreachable", "c", True, 4),
        ("reachable", "d", False, 5),
    )
    by_label = {record.label: record for record in records}
    assert (by_label["a"].held, by_label["a"].failed) == (1, 2)
    assert by_label["a"].first_failure_ticks == 2 * SECOND
    assert by_label["a"].first_failure_at == "gw"
    assert by_label["c"].failed == 1  # reaching unreachable fails, whatever was passed
    assert by_label["d"].held == 1  # reaching reachable holds
    assert AssertionRecord.from_dict(by_label["a"].to_dict()) == by_label["a"]


def test_judging_across_runs():
    runs = [
        RunAssertions(
            "trial 1, seed 5", log_of(("always", "up", True, 1), ("sometimes", "r", False, 1))
        ),
        RunAssertions(
            "trial 2, seed 6",
            log_of(
                ("always", "up", False, 7),
                ("sometimes", "r", False, 2),
                ("unreachable", "x", True, 9),
            ),
        ),
        RunAssertions("trial 3, seed 7", log_of(("reachable", "y", True, 1))),
    ]
    assert judge(runs) == [
        "always('up') was false in 1 of 3 trials (first: trial 2, seed 6 at t=7s (gw))",
        "sometimes('r') never held in 3 trials",
        "unreachable('x') was reached in 1 of 3 trials (first: trial 2, seed 6 at t=9s (gw))",
    ]
    # a sometimes that held once, in any run, is satisfied
    held_once = [*runs, RunAssertions("trial 4, seed 8", log_of(("sometimes", "r", True, 3)))]
    assert not any("sometimes" in problem for problem in judge(held_once))


def test_bad_statements_are_refused():
    log = AssertionLog()
    with pytest.raises(ValueError, match="label must be a non-empty string"):
        log.record("sometimes", "", True, 0, "test")
    with pytest.raises(ValueError, match="unknown assertion 'often'"):
        log.record("often", "x", True, 0, "test")


def test_a_run_keeps_what_the_test_states_and_the_result_carries_it():
    scenario = Scenario.from_dict(
        {
            "edgesim": 1,
            "duration": "5s",
            "devices": [{"name": "s", "topic": "t/s", "publish": {"period": "1s"}}],
            "gateways": [{"name": "gw", "subscribe": "t/#", "forward": {"topic": "cloud/t"}}],
        }
    )
    plain = Simulation(scenario).run()
    with Simulation(scenario) as simulation:
        simulation.run("2s")
        assert simulation.sometimes(simulation.cloud.arrivals, "something reached the cloud")
        simulation.always(simulation.now == 2 * SECOND, "paused where asked")
        result = simulation.run()
    assert [record.to_dict() for record in result.assertions] == [
        {
            "kind": "sometimes",
            "label": "something reached the cloud",
            "held": 1,
            "failed": 0,
            "first_failure_s": None,
            "first_failure_at": "",
        },
        {
            "kind": "always",
            "label": "paused where asked",
            "held": 1,
            "failed": 0,
            "first_failure_s": None,
            "first_failure_at": "",
        },
    ]
    assert result.trace_digest == plain.trace_digest  # stating a property is no event
    assert "assertions" not in plain.to_dict()
