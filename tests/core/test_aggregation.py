import pytest

from pytest_edgesim.core.aggregation import Aggregator, reading_value


def test_count_trigger_emits_summary_and_resets():
    aggregator = Aggregator(count=3, window=None)
    assert aggregator.add(1, "t", "s1", 1.0) is None
    assert aggregator.add(2, "t", "s2", 5.0) is None
    aggregate = aggregator.add(3, "t", "s1", 3.0)
    assert aggregate is not None
    assert aggregate.values == {"mean": 3.0, "min": 1.0, "max": 5.0, "count": 3}
    assert aggregate.first_at == 1 and aggregate.emitted_at == 3
    assert aggregator.pending == 0
    assert aggregate.canonical() == "mean=3 min=1 max=5 count=3"


def test_windows_flush_groups_in_key_order():
    aggregator = Aggregator(count=None, window=1000, functions=["sum", "last"], group_by="device")
    aggregator.add(10, "a", "s2", 2.0)
    aggregator.add(20, "a", "s1", 1.0)
    aggregator.add(30, "a", "s2", 4.0)
    assert aggregator.next_window_end(30) == 1000
    emitted = aggregator.close_window(1000)
    assert [(a.group, a.values) for a in emitted] == [
        ("s1", {"sum": 1.0, "last": 1.0}),
        ("s2", {"sum": 6.0, "last": 4.0}),
    ]
    assert aggregator.close_window(2000) == []


def test_needs_a_trigger():
    with pytest.raises(ValueError):
        Aggregator(count=None, window=None)


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (21, 21),
        (21.5, 21.5),
        ("21.5", 21.5),
        (b" 21.5\n", 21.5),
        ({"value": 3, "origin": "s"}, 3),
        ({"value": "4.5"}, 4.5),
        (True, None),
        (None, None),
        ("warm", None),
        (b"\xff", None),
        ({"mean": 2.0}, None),
        ({"value": {"value": 1}}, None),
        (float("nan"), None),
        ("inf", None),
        ([1.0], None),
        (10**400, None),
    ],
)
def test_the_value_a_reading_carries(payload, value):
    found = reading_value(payload)
    assert found == value and type(found) is type(value)


@pytest.mark.parametrize(
    ("payload", "value_field", "value"),
    [
        ({"mean": 2.5, "count": 4}, "mean", 2.5),  # another gateway's aggregate
        ({"sensor": {"temp": "21.5"}}, "sensor.temp", 21.5),
        ({"sensor": {"temp": 1}}, "sensor", None),  # an object is no number
        ({"sensor": 3}, "sensor.temp", None),  # the path ends early
        ({"value": 1}, "mean", None),  # "value" is only the default
        (b"7", "mean", 7),  # a bare number needs no field
    ],
)
def test_the_field_that_holds_a_reading_can_be_named(payload, value_field, value):
    assert reading_value(payload, value_field) == value
    aggregator = Aggregator.from_config({"count": 2, "value_field": value_field})
    assert aggregator is not None and aggregator.value_of(payload) == value


def test_an_aggregator_from_a_gateway_configuration():
    assert Aggregator.from_config(None) is None and Aggregator.from_config({}) is None
    aggregator = Aggregator.from_config({"window_us": 5, "functions": ["sum"], "group_by": "topic"})
    assert aggregator is not None
    assert (aggregator.count, aggregator.window, aggregator.functions) == (None, 5, ("sum",))
    assert (aggregator.group_by, aggregator.value_field) == ("topic", "value")
