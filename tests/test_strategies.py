"""The Hypothesis strategies give valid values within their bounds, generated scenarios run
in milliseconds, and a failing example is shown as a scenario in YAML."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import Phase, given, settings

from pytest_edgesim import Scenario, simulate
from pytest_edgesim.core.scenario.schema import GilbertElliottLoss, LinkSettings, NormalJitter
from pytest_edgesim.core.topics import validate_topic_filter, validate_topic_name
from pytest_edgesim.core.units import TICKS_PER_MS, TICKS_PER_SECOND
from pytest_edgesim.strategies import (
    CI_PROFILE,
    falsifying_scenarios,
    link_configs,
    seeds,
    small_scenarios,
    topic_filters,
    topic_names,
)


# --- topics -------------------------------------------------------------------------------
@given(topic_names())
def test_topic_names_are_valid(name: str):
    assert validate_topic_name(name) is None


@given(topic_filters())
def test_topic_filters_are_valid(topic_filter: str):
    assert validate_topic_filter(topic_filter) is None


def kinds_seen(strategy, kinds: dict, examples: int = 300) -> set[str]:
    """The names of the ``kinds`` (name -> predicate) that ``examples`` draws hit."""
    seen: set[str] = set()

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None)
    @given(strategy)
    def draw(value) -> None:
        seen.update(name for name, wanted in kinds.items() if wanted(value))

    draw()
    return seen


def test_topic_names_reach_the_corners():
    kinds = {
        "$-topic": lambda t: t.startswith("$"),
        "empty level": lambda t: "//" in t,
        "empty first and last levels": lambda t: t.startswith("/") and t.endswith("/"),
        "space": lambda t: " " in t,
        "non-ASCII": lambda t: any(ord(c) > 127 for c in t),
        "one level": lambda t: "/" not in t,
    }
    assert kinds_seen(topic_names(), kinds) == set(kinds)


def test_topic_filters_reach_the_corners():
    kinds = {
        "#": lambda f: f == "#",
        "+ first, # last": lambda f: f.startswith("+/") and f.endswith("/#"),
        "$-filter with +": lambda f: f.startswith("$") and "+" in f,
        "empty level": lambda f: "//" in f,
        "no wildcard": lambda f: "+" not in f and "#" not in f,
    }
    assert kinds_seen(topic_filters(), kinds) == set(kinds)


def test_without_system_topics():
    dollar = {"$": lambda t: t.startswith("$")}
    assert kinds_seen(topic_names(system_topics=False), dollar, 100) == set()
    assert kinds_seen(topic_filters(system_topics=False), dollar, 100) == set()


@given(topic_names(max_levels=2), topic_filters(max_levels=2))
def test_max_levels(name: str, topic_filter: str):
    assert name.count("/") <= 1
    assert topic_filter.count("/") <= 1


# --- links --------------------------------------------------------------------------------
@given(link_configs())
def test_link_configs_are_valid_link_settings(config: dict):
    settings_ = LinkSettings.model_validate(config)
    assert settings_.latency is not None and 0 <= settings_.latency <= 200 * TICKS_PER_MS
    assert settings_.reorder is None  # FIFO unless asked for


@given(
    link_configs(
        min_latency="10ms", max_latency="20ms", max_jitter="3ms", max_loss=0.05, reorder=True
    )
)
def test_link_configs_stay_within_their_bounds(config: dict):
    link = LinkSettings.model_validate(config)
    assert link.latency is not None and 10 * TICKS_PER_MS <= link.latency <= 20 * TICKS_PER_MS
    if link.jitter is not None:
        spread = link.jitter.stddev if isinstance(link.jitter, NormalJitter) else link.jitter.max
        assert spread <= 3 * TICKS_PER_MS
    if isinstance(link.loss, GilbertElliottLoss):
        assert link.loss.loss_good <= 0.05 and link.loss.loss_bad <= 0.05
        assert link.loss.p_bad_to_good > 0
    elif link.loss is not None:
        assert link.loss.rate <= 0.05
    assert link.reorder in (None, True)


@given(link_configs(max_loss=0))
def test_max_loss_zero_gives_lossless_links(config: dict):
    loss = LinkSettings.model_validate(config).loss
    if isinstance(loss, GilbertElliottLoss):
        assert loss.loss_good == loss.loss_bad == 0
    else:
        assert loss is None or loss.rate == 0


@given(link_configs(jitter=(), loss=(), bandwidth=False))
def test_impairments_can_be_turned_off(config: dict):
    assert list(config) == ["latency"]


def test_every_impairment_kind_is_drawn():
    kinds = {
        "uniform jitter": lambda c: c.get("jitter", {}).get("distribution") == "uniform",
        "normal jitter": lambda c: c.get("jitter", {}).get("distribution") == "normal",
        "independent loss": lambda c: isinstance(c.get("loss"), float) and c["loss"] > 0,
        "gilbert-elliott loss": lambda c: isinstance(c.get("loss"), dict),
        "bandwidth": lambda c: "bandwidth" in c,
        "reorder": lambda c: c.get("reorder") is True,
        "FIFO": lambda c: c.get("reorder") is False,
        "latency only": lambda c: list(c) == ["latency"],
    }
    assert kinds_seen(link_configs(reorder=None), kinds) == set(kinds)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_loss": 1.5}, "max_loss must be between 0 and 1"),
        ({"min_latency": "50ms", "max_latency": "10ms"}, "is below min_latency"),
        ({"max_jitter": "soon"}, "link_configs: max_jitter: must be a duration"),
        ({"loss": ["burst"]}, "unknown jitter or loss kind"),
    ],
)
def test_bad_link_config_bounds(arguments: dict, message: str):
    with pytest.raises(ValueError, match=message):
        link_configs(**arguments)


@given(seeds())
def test_seeds_are_accepted_by_scenarios(seed: int):
    assert Scenario.from_dict({"edgesim": 1, "seed": seed}).seed == seed


# --- scenarios ----------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(small_scenarios())
def test_small_scenarios_are_valid_and_run(scenario: Scenario):
    assert isinstance(scenario, Scenario)
    assert 1 <= len(scenario.spec.devices) <= 5
    assert 1 <= len(scenario.spec.gateways) <= 2
    assert TICKS_PER_SECOND <= scenario.duration_ticks <= 3 * TICKS_PER_SECOND
    result = simulate(scenario)
    assert result.virtual_time_ticks == scenario.duration_ticks
    assert result.wall_time_s < 5  # milliseconds in practice; a hang would show here


@settings(max_examples=20, deadline=None)
@given(
    small_scenarios(
        sensor_groups=(2, 2),
        gateways=(1, 1),
        partitions=False,
        qos=(0,),
        link=link_configs(max_loss=0),
        max_duration="2s",
    )
)
def test_the_bounds_of_small_scenarios(scenario: Scenario):
    spec = scenario.spec
    assert [d.name for d in spec.devices] == ["temp", "humidity"]
    assert [g.name for g in spec.gateways] == ["edge-a"]
    assert spec.network.partitions == []
    assert {d.qos for d in spec.devices} == {0}
    assert scenario.duration_ticks <= 2 * TICKS_PER_SECOND
    # lossless links, no partitions, QoS 0: nothing is dropped on the way to the broker, and
    # every reading that reaches it reaches it exactly once
    result = simulate(scenario, trace="full")
    for device in scenario.devices:
        uplink = result.metrics.links.get(f"{device.name}->broker")
        if uplink is not None:  # a Poisson sensor may not publish in a short run
            assert uplink.dropped_total == 0
            assert uplink.delivered <= uplink.sent
    assert result.trace is not None
    at_broker = [event[5] for event in result.trace if event[1:3] == ("deliver", "broker")]
    assert len(at_broker) == len(set(at_broker))
    published = {event[5] for event in result.trace if event[1] == "publish"}
    assert set(at_broker) <= published


def test_partitions_are_drawn():
    def check(scenario: Scenario) -> bool:
        for partition in scenario.spec.network.partitions:
            assert partition.start < (partition.end or scenario.duration_ticks + 1)
            assert (partition.end or 0) <= scenario.duration_ticks
        return len(scenario.spec.network.partitions) == 2

    assert kinds_seen(small_scenarios(), {"two partitions": check}, 50) == {"two partitions"}


@settings(max_examples=25, deadline=None)
@given(small_scenarios())
def test_the_repr_is_one_line_and_to_yaml_loads_to_the_same_scenario(scenario: Scenario):
    # (Hypothesis prints the repr on pytest's "E" lines, where YAML could not be copied)
    assert "\n" not in repr(scenario) and "'generated'" in repr(scenario)
    again = Scenario.from_dict(yaml.safe_load(scenario.to_yaml()))
    assert again == scenario and again.spec == scenario.spec
    changed = scenario.with_overrides({"seed": 5})
    assert "\nseed: 5\n" in changed.to_yaml()


def test_the_falsifying_example_s_scenario_is_kept_for_the_report():
    # no explain phase: it re-runs the failing example many times, for nothing wanted here
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]

    @settings(database=None, max_examples=50, derandomize=True, phases=phases)
    @given(scenario=small_scenarios(sensor_groups=(1, 2), gateways=(1, 1), partitions=False))
    def property_that_fails(scenario: Scenario) -> None:
        assert len(scenario.devices) < 2

    falsifying_scenarios()  # (none kept from an earlier test)
    with pytest.raises(AssertionError):
        property_that_fails()
    (scenario,) = falsifying_scenarios()  # the final run's only: not those of the search
    assert len(scenario.devices) == 2  # shrunk to the smallest failing scenario
    assert falsifying_scenarios() == []


def test_small_scenario_arguments_are_checked():
    with pytest.raises(ValueError, match="sensor_groups"):
        small_scenarios(sensor_groups=(0, 9))
    with pytest.raises(ValueError, match="gateways"):
        small_scenarios(gateways=(1, 3))
    with pytest.raises(ValueError, match="max_duration must be at least 1s"):
        small_scenarios(max_duration="500ms")
    with pytest.raises(ValueError, match="qos"):
        small_scenarios(qos=(2,))


# --- the CI profile -----------------------------------------------------------------------
def test_the_ci_profile():
    profile = settings.get_profile(CI_PROFILE)
    assert profile.derandomize is True
    assert profile.deadline is None
    assert profile.print_blob is True
    assert 20 <= profile.max_examples <= 200
    assert profile.database is None


def test_the_ci_profile_loads_from_the_command_line(tmp_path: Path):
    (tmp_path / "conftest.py").write_text("import pytest_edgesim.strategies\n")
    (tmp_path / "test_it.py").write_text(
        "from hypothesis import given, settings, strategies as st\n"
        "def test_profile():\n"
        "    assert settings().derandomize and settings().deadline is None\n"
    )

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--hypothesis-profile=edgesim-ci",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


@pytest.mark.parametrize(("low", "high"), [(0, 10_000), (-5, 10), (20, 10), (1.5, 10)])
def test_link_configs_refuses_a_bandwidth_range_when_called_not_when_drawn(low, high):
    with pytest.raises(ValueError, match="1 <= min_bandwidth_kbps <= max_bandwidth_kbps"):
        link_configs(min_bandwidth_kbps=low, max_bandwidth_kbps=high)
    link_configs(min_bandwidth_kbps=low, max_bandwidth_kbps=high, bandwidth=False)  # unused
