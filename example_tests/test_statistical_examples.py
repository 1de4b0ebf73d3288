"""Statistical tests: a claim about many seeded runs, judged with a confidence interval.

A ``statistical`` test's body runs once per trial, each trial with fresh fixtures and its
own seed, derived from the base seed (here lossy.yaml's ``seed: 7``) and the trial index,
so the whole test is reproducible and any one trial can be replayed with the command a
failure prints (``--edgesim-trial-seed=...``). See docs/statistics.md for the rules.

Run with ``-v`` (or ``--edgesim-summary``) to see each verdict and the per-trial metrics::

    pytest example_tests/test_statistical_examples.py -v
"""

from __future__ import annotations

import pytest

SOIL_SENSORS = 8


@pytest.mark.statistical(trials=30, min_pass_rate=0.9)
@pytest.mark.edgesim(scenario="lossy.yaml")
def test_soil_readings_reach_the_gateway_in_time(edge_scenario):
    """Latency objective: in at least 90 % of runs, 95 % of readings reach the gateway
    within 2.5 s. The radio link loses bursts of packets and QoS 1 resends an
    unacknowledged reading after 2 s, so one resend fits in the budget, two do not."""
    result = edge_scenario.run()

    latency_ms = result.metrics.node("farm-gateway").latency_ms
    edge_scenario.record("gateway_p95_ms", latency_ms["p95"])
    edge_scenario.record("cloud_aggregates", result.metrics.node("cloud").delivered)
    assert latency_ms["p95"] < 2500


@pytest.mark.statistical(trials=40, min_pass_rate=0.8, sequential=True)
@pytest.mark.edgesim(scenario="lossy.yaml", duration="60s")
def test_every_soil_sensor_is_heard_within_a_minute(edge_scenario):
    """Sequential: stop as soon as the trials demonstrate (or refute) a pass rate of 0.8;
    40 trials is the budget. All-passing trials demonstrate 0.8 after 26 trials."""
    result = edge_scenario.run()

    for index in range(SOIL_SENSORS):
        topic = result.metrics.topic(f"farm/field-sensor-{index}/soil-moisture")
        assert topic.delivered > 0, f"nothing from field-sensor-{index} reached the gateway"
