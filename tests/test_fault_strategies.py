"""fault_schedules: every drawn schedule loads and runs; a failure shows it as YAML."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgesim import Scenario, simulate
from pytest_edgesim.strategies import FaultList, fault_schedules

BASE = Scenario.from_dict(
    {
        "edgesim": 1,
        "duration": "3s",
        "devices": [{"name": "temp", "count": 2, "publish": {"period": "200ms"}}],
        "gateways": [
            {"name": "edge", "subscribe": "sensors/#", "forward": {"buffer": {"capacity": 3}}}
        ],
    }
)


@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(schedule=fault_schedules(BASE))
def test_every_drawn_schedule_loads_runs_and_repeats(schedule: FaultList) -> None:
    scenario = BASE.with_overrides({"faults": list(schedule)})
    first = simulate(scenario)
    assert simulate(scenario).trace_digest == first.trace_digest


def test_a_shrunk_counterexample_is_the_smallest_schedule_as_yaml() -> None:
    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(schedule=fault_schedules(BASE, kinds=("backhaul_outage", "restart", "clock_skew")))
    def nothing_is_lost(schedule: FaultList) -> None:
        result = simulate(BASE.with_overrides({"faults": list(schedule)}))
        assert (
            result.deliveries.delivery("temp-*", "cloud").lost_by_cause.get("storage_full", 0) == 0
        )

    with pytest.raises(AssertionError) as caught:
        nothing_is_lost()
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "# fault schedule as YAML" in notes
    assert "kind: backhaul_outage" in notes
    shown = notes.split("# fault schedule as YAML", 1)[1].split("# end of faults", 1)[0]
    assert shown.count("kind:") == 1  # shrunk to the one fault that loses readings


@given(st.data())
@settings(max_examples=5, deadline=None, database=None, derandomize=True)
def test_a_schedule_can_be_drawn_for_named_nodes(data: st.DataObject) -> None:
    nodes = {"gateways": ["edge"], "devices": ["temp-0", "temp-1"]}
    schedule = data.draw(fault_schedules(nodes, max_faults=2))
    assert len(schedule) <= 2
