import pytest

from pytest_edgesim.core.engine import Coordinator
from pytest_edgesim.errors import SimulationError


def test_events_run_in_time_then_insertion_order():
    coordinator = Coordinator()
    seen = []
    coordinator.schedule_at(20, seen.append, "c")
    coordinator.schedule_at(10, seen.append, "a")
    coordinator.schedule_at(10, seen.append, "b")
    coordinator.schedule_at(20, seen.append, "d")
    coordinator.run()
    assert seen == ["a", "b", "c", "d"]
    assert coordinator.now == 20
    assert coordinator.events_processed == 4


def test_ties_never_compare_callbacks_or_arguments():
    # Arguments that cannot be ordered must not matter: the sequence number decides.
    coordinator = Coordinator()
    seen = []
    for index in range(5):
        coordinator.schedule_at(7, lambda arg: seen.append(arg["i"]), {"i": index})
    coordinator.run()
    assert seen == [0, 1, 2, 3, 4]


def test_run_until_stops_inclusive_and_sets_clock():
    coordinator = Coordinator()
    seen = []
    for t in (5, 10, 15):
        coordinator.schedule_at(t, seen.append, t)
    assert coordinator.run(until=10) == 2
    assert seen == [5, 10]
    assert coordinator.now == 10
    coordinator.advance_to(12)
    assert coordinator.now == 12 and seen == [5, 10]
    coordinator.run()
    assert seen == [5, 10, 15]


def test_callbacks_can_schedule_more_and_step_runs_one():
    coordinator = Coordinator()
    seen = []

    def tick(n):
        seen.append((coordinator.now, n))
        if n < 3:
            coordinator.schedule_in(100, tick, n + 1)

    coordinator.schedule_at(0, tick, 0)
    assert coordinator.step()
    assert seen == [(0, 0)]
    coordinator.run()
    assert seen == [(0, 0), (100, 1), (200, 2), (300, 3)]
    assert not coordinator.step()


def test_scheduling_into_the_past_is_an_error():
    coordinator = Coordinator()
    coordinator.advance_to(50)
    with pytest.raises(SimulationError, match="already 50"):
        coordinator.schedule_at(49, print)
    with pytest.raises(SimulationError):
        coordinator.run(until=10)


def test_stop_returns_after_current_event():
    coordinator = Coordinator()
    seen = []
    coordinator.schedule_at(1, lambda _: (seen.append(1), coordinator.stop()))
    coordinator.schedule_at(2, seen.append, 2)
    coordinator.run(until=10)
    assert seen == [1] and coordinator.now == 1
    coordinator.run(until=10)
    assert seen == [1, 2] and coordinator.now == 10


def test_exclusive_run_leaves_events_at_until_pending():
    coordinator = Coordinator()
    seen = []
    for t in (5, 10):
        coordinator.schedule_at(t, seen.append, t)
    coordinator.run(until=10, inclusive=False)
    assert seen == [5] and coordinator.now == 10
    coordinator.run(until=10)
    assert seen == [5, 10]
