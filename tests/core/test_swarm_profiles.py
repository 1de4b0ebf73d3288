"""Swarm testing in the core: profiles drawn from a seed, within bounds, applied to a run."""

from __future__ import annotations

import pytest

from pytest_edgesim import Scenario, simulate
from pytest_edgesim.core.rng import RandomStream
from pytest_edgesim.core.swarm import (
    NO_FAULTS,
    SwarmBounds,
    SwarmFault,
    SwarmTopology,
    draw_profile,
    pass_rates_by_kind,
    register_swarm_action,
    register_swarm_kind,
    swarm_kinds,
)
from pytest_edgesim.errors import ScenarioError

SECOND = 1_000_000
TOPOLOGY = SwarmTopology(
    broker="broker",
    gateways=("gw",),
    devices=("sensor-0", "sensor-1"),
    supported={
        "gw": ("stop", "kill", "start", "pause", "resume", "disconnect", "reconnect"),
        "broker": ("stop", "kill", "start", "pause", "resume"),
    },
)
EVERY_KIND = {name: SwarmBounds(probability=1.0, max_count=3) for name in swarm_kinds()}

SWARMED = {
    "edgesim": 1,
    "name": "swarmed",
    "duration": "30s",
    "devices": [{"name": "s", "count": 2, "topic": "t/{name}", "publish": {"period": "1s"}}],
    "gateways": [{"name": "gw", "subscribe": "t/#", "forward": {"topic": "cloud/t"}}],
    "swarm": {"start": "2s", "end": "20s", "probability": 0.5},
}


def test_a_profile_is_a_function_of_the_seed_alone():
    first = draw_profile(42, TOPOLOGY, EVERY_KIND)
    assert draw_profile(42, TOPOLOGY, EVERY_KIND) == first
    assert draw_profile(43, TOPOLOGY, EVERY_KIND) != first
    # one stream per kind: leaving a kind out never shifts what the others draw
    fewer = {name: bounds for name, bounds in EVERY_KIND.items() if name != "partition"}
    without = draw_profile(42, TOPOLOGY, fewer)
    assert [f for f in without.faults if f.kind == "gateway_restart"] == [
        f for f in first.faults if f.kind == "gateway_restart"
    ]


def test_draws_stay_within_the_bounds_and_never_collide():
    bounds = SwarmBounds(
        probability=1.0,
        max_count=4,
        start_ticks=5 * SECOND,
        end_ticks=20 * SECOND,
        min_duration_ticks=2 * SECOND,
        max_duration_ticks=3 * SECOND,
        max_loss=0.2,
        max_latency_ticks=100_000,
    )
    kinds = dict.fromkeys(swarm_kinds(), bounds)
    for seed in range(200):
        profile = draw_profile(seed, TOPOLOGY, kinds)
        held: dict[str, int] = {}
        for fault in profile.faults:
            assert 5 * SECOND <= fault.at_ticks < 20 * SECOND
            assert fault.duration_ticks == 0 or 2 * SECOND <= fault.duration_ticks <= 3 * SECOND
            settings = dict(fault.settings)
            assert 0 < settings.get("loss", 0.1) <= 0.2
            assert 0 < settings.get("latency_ms", 1) <= 100
            if fault.action in ("restart", "kill", "pause", "disconnect"):
                node = fault.targets[0]
                assert held.get(node, -1) < fault.at_ticks, profile.describe()
                held[node] = fault.end_ticks
        assert list(profile.faults) == sorted(profile.faults, key=lambda f: f.at_ticks)
        assert set(profile.kinds) == {fault.kind for fault in profile.faults}


def test_probability_switches_kinds_on_in_that_share_of_seeds():
    kinds = {"gateway_restart": SwarmBounds(probability=0.3, max_count=1)}
    on = sum(bool(draw_profile(seed, TOPOLOGY, kinds).faults) for seed in range(1000))
    # binomial(1000, 0.3): sd 14.5; +-4.5 sd is a false alarm of about 1e-5
    assert 300 - 65 <= on <= 300 + 65


def test_a_kind_draws_only_targets_that_can_undergo_it():
    unfaultable = SwarmTopology("broker", ("gw",), ("s",), supported={})
    profile = draw_profile(1, unfaultable, EVERY_KIND)
    assert {fault.kind for fault in profile.faults} <= {
        "partition",
        "isolate",
        "link_loss",
        "link_latency",
    }


def test_the_catalogue_and_the_actions_are_registries():
    def draw(rng: RandomStream, topology: SwarmTopology, bounds: SwarmBounds) -> list[SwarmFault]:
        return [SwarmFault("my_kind", "my_pause", bounds.at(rng), (topology.gateways[0],))]

    def apply(run, fault: SwarmFault) -> None:  # a pause of one second, the kind's own way
        run.schedule_fault(f"{fault.at_ticks}us", "pause", fault.targets[0])
        run.schedule_fault(f"{fault.at_ticks + SECOND}us", "resume", fault.targets[0])

    register_swarm_kind("my_kind", "pauses the first gateway for a second", draw)
    register_swarm_action("my_pause", apply)
    try:
        profile = draw_profile(3, TOPOLOGY, {"my_kind": SwarmBounds(probability=1.0)})
        assert profile.kinds == ("my_kind",)
        swarmed = {**SWARMED, "swarm": {"kinds": ["my_kind"], "probability": 1.0}}
        result = simulate(Scenario.from_dict(swarmed), seed=3)
        assert [fault.action for fault in result.faults][:2] == ["pause", "resume"]
    finally:
        from pytest_edgesim.core import swarm

        del swarm._CATALOGUE["my_kind"]
        del swarm._APPLIERS["my_pause"]


def test_a_swarmed_scenario_runs_its_profile_and_repeats_to_the_digest():
    scenario = Scenario.from_dict(SWARMED)
    runs = {seed: simulate(scenario, seed=seed) for seed in range(6)}
    again = simulate(scenario, seed=3)
    assert again.trace_digest == runs[3].trace_digest
    assert again.swarm_profile == runs[3].swarm_profile
    node_faults = [r for r in runs.values() if r.swarm_profile and r.faults]
    assert node_faults, "no seed drew a node fault"
    for result in node_faults:  # what was drawn was done
        drawn = {f.at_ticks for f in result.swarm_profile.faults if f.action != "partition"}
        assert {fault.time_ticks for fault in result.faults} & drawn
    # and the result says what was drawn, back and forth through JSON
    from pytest_edgesim import RunResult

    result = runs[3]
    assert RunResult.from_dict(result.to_dict()).swarm_profile == result.swarm_profile


def test_without_a_swarm_section_nothing_changes():
    plain = {key: value for key, value in SWARMED.items() if key != "swarm"}
    result = simulate(Scenario.from_dict(plain))
    assert result.swarm_profile is None and "swarm" not in result.to_dict()
    assert result.faults == ()


@pytest.mark.parametrize(
    ("swarm", "message"),
    [
        (
            {"kinds": ["partishun"]},
            "swarm.kinds.partishun: unknown swarm kind 'partishun' (did you mean 'partition'?)",
        ),
        ({"probability": 2}, "swarm.probability"),
        ({"start": "40s"}, "swarm.start: 40s is not before the end of the run"),
        ({"start": "5s", "end": "2s"}, "end must be after start"),
        ({"kinds": {"link_loss": {"max_loss": "lots"}}}, "swarm.kinds.link_loss.max_loss"),
    ],
)
def test_a_bad_swarm_section_is_one_clear_error(swarm, message):
    with pytest.raises(ScenarioError) as error:
        Scenario.from_dict({**SWARMED, "swarm": swarm})
    assert message in str(error.value)


def test_pass_rates_by_kind_with_their_intervals():
    trials = [
        (["partition"], False),
        (["partition", "gateway_restart"], False),
        (["gateway_restart"], True),
        ([], True),
    ]
    rows = {row["kind"]: row for row in pass_rates_by_kind(trials)}
    assert list(rows) == ["gateway_restart", "partition", NO_FAULTS]
    assert rows["partition"]["trials"] == 2 and rows["partition"]["passed"] == 0
    assert rows["partition"]["alone"] == 1 and rows["partition"]["alone_passed"] == 0
    assert rows["gateway_restart"]["rate"] == 0.5
    low, high = rows["gateway_restart"]["interval"]
    assert 0 < low < 0.5 < high < 1


def test_kinds_of_the_fault_schedule_are_drawn_only_when_named():
    """backhaul_outage and storage_full come from the fault schedule (run.schedule): a swarm
    that names no kinds never draws them (existing profiles stay as they were); one that
    names them cuts the gateway's uplink, and its buffer's overflow is counted."""
    from pytest_edgesim.core.swarm import resolve_bounds

    spec = Scenario.from_dict(SWARMED).spec
    assert spec.swarm is not None
    assert not {"backhaul_outage", "storage_full"} & set(resolve_bounds(spec.swarm, 30 * SECOND))

    outage = {
        **SWARMED,
        "gateways": [
            {
                "name": "gw",
                "subscribe": "t/#",
                "forward": {"topic": "cloud/t", "qos": 1, "buffer": {"capacity": 3}},
            }
        ],
        "swarm": {
            "start": "2s",
            "end": "10s",
            "min_duration": "10s",
            "max_duration": "15s",
            "kinds": {"backhaul_outage": {"probability": 1.0, "max_count": 1}},
        },
    }
    result = simulate(Scenario.from_dict(outage))
    assert result.swarm_profile is not None
    (fault,) = result.swarm_profile.faults
    assert (fault.kind, fault.targets) == ("backhaul_outage", ("gw",))
    assert [applied.action for applied in result.faults][:1] == ["backhaul_outage"]
    assert result.delivery("*", "cloud").lost_by_cause.get("storage_full", 0) > 0
