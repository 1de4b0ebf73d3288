"""The run's profile: a timeline of messages per slice of virtual time, with partitions, and
latency histograms per flow on a fixed grid (core/metrics/timeline.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_edgesim import Scenario, Simulation, simulate
from pytest_edgesim.core.metrics.sketch import LatencySketch
from pytest_edgesim.core.metrics.timeline import (
    ALL_FLOWS,
    HISTOGRAM_FLOWS,
    LOWEST_BIN,
    TIMELINE_BUCKETS,
    LatencyHistogram,
    bin_edges_ms,
    latency_bin,
)
from pytest_edgesim.core.result import RunResult

SCENARIOS = Path(__file__).parents[3] / "scenarios"


def test_slices_add_up_to_the_totals() -> None:
    result = simulate(SCENARIOS / "lossy.yaml")
    timeline = result.profile.timeline
    totals = result.metrics.totals
    assert sum(timeline.sent) == totals.sent
    assert sum(timeline.delivered) == totals.delivered
    assert sum(timeline.dropped) == totals.dropped_total > 0
    assert len(timeline.sent) == len(timeline.delivered) == len(timeline.dropped)
    assert len(timeline.sent) <= TIMELINE_BUCKETS
    assert timeline.bucket_ticks * len(timeline.sent) >= result.virtual_time_ticks


def test_partitions_are_spans_and_the_cut_shows_in_the_slices() -> None:
    result = simulate(SCENARIOS / "partition.yaml")
    timeline = result.profile.timeline
    (span,) = timeline.partitions
    assert (span.down_ticks, span.up_ticks) == (20_000_000, 35_000_000)
    assert span.between == "edge-gw | cloud"
    assert timeline.bucket_s == 1.0
    # nothing reaches the cloud while the WAN link is down; QoS 1 redelivers after it heals
    during = timeline.delivered[21:35]
    before = timeline.delivered[5:19]
    assert sum(during) < sum(before)


def test_a_partition_still_down_at_the_end_has_no_healing() -> None:
    with Simulation(Scenario.from_yaml(SCENARIOS / "basic.yaml")) as simulation:
        simulation.run("10s")
        simulation.network.partition("gateway", "cloud")
        result = simulation.run("20s")
    (span,) = result.profile.timeline.partitions
    assert (span.down_ticks, span.up_ticks) == (10_000_000, None)


def test_a_run_longer_than_planned_keeps_a_fixed_number_of_slices() -> None:
    scenario = Scenario.from_yaml(SCENARIOS / "basic.yaml")
    with Simulation(scenario) as simulation:
        result = simulation.run(scenario.duration_ticks * 5 / 1_000_000)
    timeline = result.profile.timeline
    assert len(timeline.sent) <= 2 * TIMELINE_BUCKETS
    assert sum(timeline.sent) == result.metrics.totals.sent
    assert timeline.bucket_ticks * len(timeline.sent) >= result.virtual_time_ticks


def test_runs_in_pieces_give_the_same_profile_and_digest_as_one_run() -> None:
    scenario = Scenario.from_yaml(SCENARIOS / "partition.yaml")
    whole = simulate(scenario)
    with Simulation(scenario) as simulation:
        for until in ("0.3s", "7.25s", "20s", "33s", "60s"):
            pieces = simulation.run(until)
    assert pieces.trace_digest == whole.trace_digest
    assert pieces.profile == whole.profile


def test_histograms_per_flow_count_every_latency() -> None:
    result = simulate(SCENARIOS / "basic.yaml")
    histograms = result.profile.latency
    assert histograms[ALL_FLOWS].count == result.metrics.totals.latency_ms["count"]
    for topic, histogram in histograms.items():
        if topic != ALL_FLOWS:
            assert histogram.count == result.metrics.topic(topic).latency_ms["count"]
    assert len(histograms) <= HISTOGRAM_FLOWS + 1


def test_only_the_busiest_flows_get_a_histogram() -> None:
    result = simulate(SCENARIOS / "thousand-sensors.yaml", until="5s")
    assert len(result.profile.latency) == HISTOGRAM_FLOWS + 1


def test_the_grid_is_fixed() -> None:
    assert latency_bin(0.0) == LOWEST_BIN
    assert latency_bin(0.001) == LOWEST_BIN  # one tick
    assert latency_bin(1.0) == 0
    assert latency_bin(10.0) == 10
    assert latency_bin(12.0) == 10
    low, high = bin_edges_ms(10)
    assert low == pytest.approx(10.0) and high == pytest.approx(10**1.1)
    sketch = LatencySketch()
    for ticks in (0, 1000, 1000, 12_000, 250_000):
        sketch.add(ticks)
    histogram = LatencyHistogram.of_sketch(sketch)
    assert histogram.bins == ((LOWEST_BIN, 1), (0, 2), (10, 1), (23, 1))


def test_the_profile_survives_json_and_is_small() -> None:
    result = simulate(SCENARIOS / "thousand-sensors.yaml", until="10s")
    text = result.to_json()
    back = RunResult.from_dict(json.loads(text))
    assert back.profile == result.profile
    assert len(json.dumps(result.profile.to_dict())) < 8_000
