"""``edge_scenario.schedule``: a fault schedule from a test, replayed by replay_check."""

from __future__ import annotations

import pytest


def test_a_schedule_from_a_test_replays_to_the_same_digest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.deterministic(replay_check=True)
        def test_schedule(edge_scenario):
            edge_scenario.schedule(
                {"name": "cut", "kind": "backhaul_outage", "target": "gateway",
                 "when": {"subscribed": "gateway"}, "duration": "2s"}
            )
            edge_scenario.schedule(
                {"kind": "restart", "target": "gateway",
                 "after": {"fault": "cut", "of": "end", "delay": "1s"}}
            )
            result = edge_scenario.run()
            assert [(f.time_s, f.action) for f in result.faults] == [
                (0.0, "backhaul_outage"), (2.0, "backhaul_outage:end"), (3.0, "restart"),
            ]
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_a_bad_scheduled_fault_is_one_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_schedule(edge_scenario):
            edge_scenario.schedule({"kind": "restart", "target": "gateway", "at": 1,
                                    "latency": "5ms"})
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)  # (a test that used the API wrongly: an error)
    result.stdout.fnmatch_lines(["*FaultUsageError: latency: not a setting of a restart fault*"])
