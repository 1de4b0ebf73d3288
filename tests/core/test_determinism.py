"""Same scenario and seed: the same digest, in any process, whatever PYTHONHASHSEED says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scenarios_for_tests import scenario_dict

from pytest_edgesim import Scenario, simulate

_CHILD = """
import json, sys
from pytest_edgesim import Scenario, simulate
scenario = Scenario.from_dict(json.loads(sys.argv[1]))
result = simulate(scenario, seed=int(sys.argv[2]))
print(result.trace_digest)
"""


def digest_in_subprocess(data, seed, hash_seed):
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(data), str(seed)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_same_seed_same_digest_across_processes_and_hash_seeds():
    data = scenario_dict()
    in_process = simulate(Scenario.from_dict(data), seed=3).trace_digest
    assert digest_in_subprocess(data, 3, "0") == in_process
    assert digest_in_subprocess(data, 3, "4242") == in_process


def test_different_seeds_give_different_digests():
    scenario = Scenario.from_dict(scenario_dict())
    digests = {simulate(scenario, seed=seed).trace_digest for seed in range(5)}
    assert len(digests) == 5


def test_runs_repeat_exactly_including_metrics():
    scenario = Scenario.from_dict(scenario_dict())
    first, second = simulate(scenario, trace="full"), simulate(scenario, trace="full")
    assert first == second
    assert first.trace and first.trace == second.trace


def _readings_of(result, device):
    return [e for e in result.trace if e[1] == "publish" and e[2] == device]


def _deliveries_of(result, device):
    return [e for e in result.trace if e[1] == "deliver" and e[5].startswith(device + "#")]


def test_adding_an_unrelated_sensor_leaves_other_sensors_unchanged():
    base = scenario_dict()
    extended = scenario_dict()
    extended["devices"].append(
        {
            "name": "pressure",
            "topic": "other/pressure",
            "qos": 1,
            "value": {"model": "random_walk", "start": 1000, "step": 2},
        }
    )
    before = simulate(Scenario.from_dict(base), trace="full")
    after = simulate(Scenario.from_dict(extended), trace="full")
    assert before.trace_digest != after.trace_digest
    for device in ("temp-0", "temp-3", "humidity"):
        assert _readings_of(before, device) == _readings_of(after, device)
        # the sensor's uplink draws (loss, jitter) are its own: same deliveries to the broker
        assert [e for e in _deliveries_of(before, device) if e[2] == "broker"] == [
            e for e in _deliveries_of(after, device) if e[2] == "broker"
        ]


def test_pausing_and_resuming_gives_the_same_run():
    from pytest_edgesim import Simulation

    scenario = Scenario.from_dict(scenario_dict())
    whole = simulate(scenario)
    with Simulation(scenario) as simulation:
        for until in ("1s", "2.5s", "7s", "20s"):
            paused = simulation.run(until)
    assert paused.trace_digest == whole.trace_digest
    assert paused.metrics == whole.metrics


# The digests of the example scenarios at 60 virtual seconds, as this version computes them.
# A change here means every trace changed: a deliberate change to the models or the trace
# format (then update these and say so in CHANGELOG.md), or an accident, such as an
# optimisation that moved one event or one random draw.
GOLDEN_DIGESTS = {
    "basic.yaml": "32dcde9b217ae38a6dc178c06d2814354d0cbd6cc310b688914449b67d1c291d",
    "lossy.yaml": "24f4b812327d104620ad6a41f68d8e17c1a06b19e15f432d95315ab92d18bf82",
    "partition.yaml": "eef2f84bc32c7da202b839808fc0794f76d14abbe32eb064a74a95b507a1bf97",
}


@pytest.mark.parametrize("scenario", sorted(GOLDEN_DIGESTS))
def test_the_example_scenarios_keep_their_golden_digests(scenario: str) -> None:
    path = Path(__file__).resolve().parents[2] / "scenarios" / scenario
    assert simulate(path, until="60s").trace_digest == GOLDEN_DIGESTS[scenario]
