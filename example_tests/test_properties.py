"""Property tests: Hypothesis generates the scenarios, the test states what must always hold.

The strategies in ``pytest_edgesim.strategies`` draw small, valid scenarios (a few sensor
groups, one or two gateways, random links and partitions) that run in milliseconds, so
Hypothesis can try many. A failing example is printed as a scenario file: save it and
``edgesim run`` it. In CI, ``--hypothesis-profile=edgesim-ci`` makes the examples the same
on every run.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings

from pytest_edgesim import simulate
from pytest_edgesim.strategies import link_configs, seeds, small_scenarios

# Lossless links with bounded delay: nothing may be lost, nothing duplicated.
LOSSLESS = link_configs(max_loss=0, max_latency="50ms", max_jitter="10ms", bandwidth=False)
# A reading published this close to the end may still be on its way when the run stops.
IN_FLIGHT_MARGIN_US = 2 * (50_000 + 10_000 * 6) + 10_000


@settings(max_examples=40, deadline=None)
@given(
    scenario=small_scenarios(link=LOSSLESS, partitions=False, qos=[0]),
    seed=seeds(),
)
def test_on_lossless_links_every_reading_reaches_the_broker_exactly_once(scenario, seed):
    result = simulate(scenario, seed=seed, trace="full")
    assert result.trace is not None

    published = {
        event[5]
        for event in result.trace
        if event[1] == "publish" and event[0] < scenario.duration_ticks - IN_FLIGHT_MARGIN_US
    }
    at_broker = Counter(
        event[5] for event in result.trace if event[1] == "deliver" and event[2] == "broker"
    )
    assert published, "the scenario published nothing early enough to check"
    missing = sorted(message for message in published if at_broker[message] == 0)
    duplicated = sorted(message for message, times in at_broker.items() if times > 1)
    assert not missing, f"readings lost on lossless links: {missing[:5]}"
    assert not duplicated, f"readings delivered twice at QoS 0: {duplicated[:5]}"
    assert sum(stats.dropped_total for stats in result.metrics.links.values()) == 0


@settings(max_examples=25, deadline=None)
@given(scenario=small_scenarios(), seed=seeds())
def test_the_same_seed_gives_the_same_trace(scenario, seed):
    first = simulate(scenario, seed=seed)
    second = simulate(scenario, seed=seed)
    assert first.trace_digest == second.trace_digest
    assert first.metrics == second.metrics
