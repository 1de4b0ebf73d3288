"""Swarm testing: each trial's seed draws its own mix of faults (docs/faults.md).

``scenarios/gap_gateway.py`` forwards readings and notices gaps in each sensor's sequence
numbers; it has a planted bug: after a long gap it silences the sensor for good. A fixed
fault plan finds it only if someone thought of the right fault; ``faults="swarm"`` draws a
profile per trial from the catalogue (restarts, crashes, pauses, disconnections, broker
restarts, partitions, lossy and slow links) and the report's table of pass rates by fault
kind says which kinds break the gateway. Run with ``-v`` to see each trial's faults::

    pytest example_tests/test_swarm.py -v

The gateway also states ``self.node.sometimes(True, "caught up after a gap")`` on its
reconnect path: a test whose trials never took that path fails with its own message
("sometimes('caught up after a gap') never held in 30 trials"), so a passing test shows
the faults really exercised it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

SENSORS = {"sensor-0", "sensor-1", "sensor-2"}
SCENARIOS = Path(__file__).parents[1] / "scenarios"


def heard_at_the_end(result) -> set[str]:
    """The sensors whose readings reached the cloud in the last 10 s (every fault is over
    by 45 s: swarm start 5 s..35 s, at most 10 s long)."""
    return {arrival.payload["sensor"] for arrival in result.arrivals if arrival.time >= 50_000_000}


@pytest.mark.statistical(trials=30, min_pass_rate=0.9, faults="swarm")
@pytest.mark.edgesim(scenario="swarm-gateway.yaml", overrides={"gateways[0].config.fixed": True})
def test_the_fixed_gateway_hears_every_sensor_again_whatever_the_faults(edge_scenario):
    result = edge_scenario.run()

    # (the logic's sometimes("caught up after a gap") is judged over the 30 trials)
    edge_scenario.always(result.swarm_profile is not None, "every trial drew a profile")
    assert heard_at_the_end(result) == SENSORS


BUGGY_TEST = """
import pytest

@pytest.mark.statistical(trials=60, faults="swarm")
@pytest.mark.edgesim(scenario="swarm-gateway.yaml")
def test_buggy_gateway(edge_scenario):
    result = edge_scenario.run()
    heard = {a.payload["sensor"] for a in result.arrivals if a.time >= 50_000_000}
    assert heard == {"sensor-0", "sensor-1", "sensor-2"}
"""


def test_the_swarm_finds_the_planted_bug_and_names_the_faults_that_trigger_it(pytester):
    """The buggy gateway, swarmed: the test fails, and the table of pass rates by kind
    shows that faults it survives unharmed (restarts) pass, while the faults that make it
    miss readings while it runs (a gateway cut off from everything, a disconnection) fail."""
    for name in ("swarm-gateway.yaml", "gap_gateway.py"):
        shutil.copy(SCENARIOS / name, pytester.path / name)
    pytester.makepyfile(test_buggy=BUGGY_TEST)

    result = pytester.runpytest("-v", "-p", "no:randomly", "--edgesim-report=report.json")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*pass rates by fault kind (95% Wilson intervals):*", "*lowest pass rate: *"]
    )
    verdict = json.loads((pytester.path / "report.json").read_text())["tests"][0]["verdict"]
    rates = {row["kind"]: row for row in verdict["swarm_by_kind"]}
    # the faults that make the gateway miss readings while it runs trigger the bug: on
    # their own, they fail every trial...
    for kind in ("disconnect", "isolate", "partition"):
        assert rates[kind]["alone"] > 0 and rates[kind]["alone_passed"] == 0, rates[kind]
    ranked = sorted(rates.values(), key=lambda row: row["rate"])
    assert {row["kind"] for row in ranked[:2]} == {"disconnect", "isolate"}
    # ...and every failing trial drew one of them
    for trial in verdict["trials"]:
        if trial["outcome"] == "failed":
            assert {"disconnect", "isolate", "partition"} & set(trial["swarm_kinds"]), trial
    # a restarted gateway starts with no history: restarts alone never trigger it
    for kind in ("gateway_restart", "gateway_crash", "link_latency"):
        assert rates[kind]["alone_passed"] == rates[kind]["alone"], rates[kind]
