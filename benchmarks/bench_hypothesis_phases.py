"""Benchmark: how long Hypothesis takes to find, shrink and explain a failing scenario.

    python benchmarks/bench_hypothesis_phases.py

A property over ``small_scenarios()`` with lossy links (``link_configs(max_loss=0.3)``)
that claims no sensor uplink drops anything: it fails within a few examples. It runs three
times, derandomized and without an example database, with the phases generate; generate and
shrink; generate, shrink and explain, and prints the wall time of each, so the cost of the
shrink phase and of the explain phase is the difference between consecutive lines
(docs/scenario-reference.md quotes it).
"""

from __future__ import annotations

import time

from hypothesis import Phase, given, settings

from pytest_edgesim import Scenario, simulate
from pytest_edgesim.strategies import link_configs, seeds, small_scenarios


def timed(phases: list[Phase]) -> float:
    @settings(database=None, derandomize=True, deadline=None, phases=phases, max_examples=100)
    @given(
        scenario=small_scenarios(link=link_configs(max_loss=0.3), partitions=False), seed=seeds()
    )
    def no_uplink_drops(scenario: Scenario, seed: int) -> None:
        result = simulate(scenario, seed=seed)
        for device in scenario.devices:
            uplink = result.metrics.links.get(f"{device.name}->broker")
            assert uplink is None or uplink.dropped_total == 0

    start = time.perf_counter()
    try:
        no_uplink_drops()
    except AssertionError:
        return time.perf_counter() - start
    raise SystemExit("the property did not fail: nothing to measure")


def main() -> None:
    for label, phases in (
        ("generate", [Phase.generate]),
        ("generate + shrink", [Phase.generate, Phase.shrink]),
        ("generate + shrink + explain", [Phase.generate, Phase.shrink, Phase.explain]),
    ):
        print(f"{label}: {timed(phases):.1f} s", flush=True)


if __name__ == "__main__":
    main()
