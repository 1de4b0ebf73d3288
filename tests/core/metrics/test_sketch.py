import math

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgesim.core.metrics.sketch import RELATIVE_ACCURACY, LatencySketch


def exact_quantile(values, q):
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=300))
def test_quantiles_within_relative_accuracy(values):
    sketch = LatencySketch()
    for value in values:
        sketch.add(value)
    assert sketch.count == len(values)
    assert sketch.minimum == min(values) and sketch.maximum == max(values)
    assert sketch.total == sum(values)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        estimate = sketch.quantile(q)
        # the estimate is within 1 % of some observed value at a rank around q
        ordered = sorted(values)
        rank = q * (len(values) - 1)
        low, high = ordered[math.floor(rank)], ordered[math.ceil(rank)]
        assert (
            low * (1 - RELATIVE_ACCURACY) - 1e-9
            <= estimate
            <= high * (1 + RELATIVE_ACCURACY) + 1e-9
        )


def test_merge_equals_adding_everything():
    a, b, both = LatencySketch(), LatencySketch(), LatencySketch()
    for value in range(1, 5000, 7):
        a.add(value)
        both.add(value)
    for value in range(100_000, 200_000, 997):
        b.add(value)
        both.add(value)
    a.merge(b)
    assert a.count == both.count and a.total == both.total
    for q in (0.1, 0.5, 0.9, 0.99):
        assert a.quantile(q) == both.quantile(q)


def test_memory_does_not_grow_with_count():
    sketch = LatencySketch()
    for i in range(200_000):
        sketch.add(15_000 + (i * 7919) % 10_000)
    buckets_after_many = len(sketch._buckets)
    assert buckets_after_many < 60  # 15..25 ms at 1 % resolution


def test_empty_summary():
    assert LatencySketch().summary_ms() == {"count": 0}
    assert math.isnan(LatencySketch().quantile(0.5))


def test_a_bucket_past_16_bits_widens_and_loses_nothing():
    sketch, reference = LatencySketch(), LatencySketch()
    reference._widen()  # 64-bit counters from the start
    values = [20_000] * 70_000 + [5_000, 90_000] + [20_000] * 10
    for value in values:
        sketch.add(value)
        reference.add(value)
    assert sketch._buckets.typecode == "Q"
    assert max(sketch._buckets) == 70_010
    assert sketch.count == len(values)
    assert sketch.summary_ms() == reference.summary_ms()
    assert sketch.quantile(0.5) == reference.quantile(0.5)


def test_merging_full_narrow_counters_does_not_overflow():
    a, b = LatencySketch(), LatencySketch()
    for _ in range(40_000):
        a.add(1_000)
        b.add(1_000)
    a.merge(b)
    assert a.count == 80_000
    assert max(a._buckets) == 80_000
