"""The edgesim markers: their help text, the checks on their arguments, and test tiers.

A marker's arguments are checked when the test is collected, so a typo is a collection
error naming the test and the argument rather than a surprise at run time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_edgesim.core.units import parse_duration

MARKERS = {
    "edgesim": (
        "edgesim(scenario=None, gateway=None, **overrides): the scenario edge_scenario runs: "
        "a YAML path relative to the test file, then to --edgesim-scenario-dir (default: a "
        "built-in minimal scenario); overrides as overrides={'dotted.path': value} or the "
        "shorthands seed=, duration=, name=, description=; gateway='docker' or a list such as "
        "['python_model', 'docker'] runs the test once per gateway implementation (python: "
        "your logic in process; docker:lockstep, docker:mqtt: a container in that mode); "
        "broker='trixie' or a list such as ['bookworm', 'trixie'] (or dicts with release=, "
        "image=, build=, config=, id=) runs it once per real broker (edge_scenario's live "
        "runs and mqtt_broker); "
        "time_scale=N runs a live (wall-clock) scenario N times faster than real time."
    ),
    "deterministic": (
        "deterministic(replay_check=False): a test of the deterministic tier: one run in "
        "virtual time with the seed in force; replay_check=True runs the same actions again and "
        "fails naming the first event where the two runs diverge. Unmarked edgesim tests are "
        "deterministic."
    ),
    "statistical": (
        "statistical(trials=N, confidence=0.95, min_pass_rate=0.95, sequential=False, "
        "faults=None): a test "
        "of the statistical tier: the body runs as N trials (default 30), each with fresh "
        "fixtures and its own seed; it fails when a Wilson score interval shows the pass rate "
        "below min_pass_rate (sequential=True: stop at the first decision of an anytime-valid "
        "rule, with N as the budget); faults='swarm' (or {'swarm': {...}}) makes each trial's "
        "seed draw its own fault profile, reported with pass rates by fault kind."
    ),
}

#: Fixtures that make a test an edgesim test (deterministic unless marked statistical).
EDGESIM_FIXTURES = frozenset(
    {"edge_scenario", "edgesim_seed", "edge_coordinator", "latency_network"}
)
GATEWAY_IMPLEMENTATIONS = ("python_model", "python", "docker", "docker:lockstep", "docker:mqtt")
#: ``edgesim(...)`` keyword shorthands for top-level scenario fields.
SHORTHAND_OVERRIDES = ("seed", "duration", "name", "description")
_EDGESIM_KEYWORDS = (
    "scenario",
    "gateway",
    "broker",
    "overrides",
    "time_scale",
    *SHORTHAND_OVERRIDES,
)
#: the keys of a ``broker=`` entry given as a dict
BROKER_KEYS = ("release", "image", "build", "config", "id")
_BROKER_SOURCES = ("release", "image", "build")
#: the fixtures ``broker=`` parametrises (those of them a test uses)
BROKER_FIXTURES = ("edgesim_broker", "mqtt_broker")


def register(config: pytest.Config) -> None:
    for text in MARKERS.values():
        config.addinivalue_line("markers", text)


def item_tier(node: pytest.Item, fixturenames: Iterable[str]) -> str | None:
    """``"statistical"``, ``"deterministic"``, or None for a test edgesim has nothing to do with."""
    if node.get_closest_marker("statistical") is not None:
        return "statistical"
    if (
        node.get_closest_marker("deterministic") is not None
        or node.get_closest_marker("edgesim") is not None
        or not EDGESIM_FIXTURES.isdisjoint(fixturenames)
    ):
        return "deterministic"
    return None


def gateway_parameters(node: pytest.Item) -> list[str] | None:
    """The implementations to parametrise over (``gateway=[...]`` given as a list), or None."""
    marker = node.get_closest_marker("edgesim")
    gateway = marker.kwargs.get("gateway") if marker is not None else None
    return list(gateway) if isinstance(gateway, (list, tuple)) else None


def broker_parameters(node: pytest.Item) -> list[tuple[str, dict[str, str]]] | None:
    """``(test id, entry)`` for each broker of ``broker=`` (one or a list), or None.

    An entry is a dict of :data:`BROKER_KEYS` (a string is a release), its ``build`` and
    ``config`` made absolute against the test file's directory. Call after
    :func:`marker_problems` found none.
    """
    marker = node.get_closest_marker("edgesim")
    if marker is None or "broker" not in marker.kwargs:
        return None
    given = marker.kwargs["broker"]
    entries = [given] if isinstance(given, (str, Mapping)) else list(given)
    found = []
    for entry in entries:
        choice = {"release": entry} if isinstance(entry, str) else dict(entry)
        for key in ("build", "config"):
            if key in choice:
                choice[key] = str(Path(node.path.parent, choice[key]).resolve())
        found.append((choice.pop("id", None) or broker_id(choice), choice))
    return found


def broker_id(choice: Mapping[str, str]) -> str:
    """``trixie``, ``trixie-strict`` (with ``strict.conf``), ``eclipse-mosquitto:2.0.18``..."""
    parts = [choice[key] for key in ("release", "image") if key in choice]
    parts += [Path(choice[key]).stem for key in ("build", "config") if key in choice]
    return "-".join(parts)


def replay_check_requested(node: pytest.Item) -> bool:
    marker = node.get_closest_marker("deterministic")
    return marker is not None and marker.kwargs.get("replay_check") is True


def _type_name(value: Any) -> str:
    return type(value).__name__


def _edgesim_problems(
    marker: pytest.Mark, fixturenames: Iterable[str], test_dir: Path
) -> list[str]:
    problems = []
    kwargs = dict(marker.kwargs)
    if len(marker.args) > 1:
        problems.append(
            f"edgesim() takes the scenario path as its only positional argument, "
            f"got {len(marker.args)}: {marker.args!r}"
        )
    if marker.args and "scenario" in kwargs:
        problems.append("edgesim(): the scenario is given both positionally and as scenario=")
    scenario = marker.args[0] if marker.args else kwargs.get("scenario")
    if scenario is not None and not isinstance(scenario, (str, os.PathLike)):
        problems.append(
            f"edgesim(scenario={scenario!r}): expected the path of a YAML file, "
            f"got a {_type_name(scenario)}"
        )
    for key, value in kwargs.items():
        if key not in _EDGESIM_KEYWORDS:
            problems.append(
                f"edgesim(): unknown argument {key}={value!r}; it takes scenario=, gateway=, "
                "broker=, time_scale=, "
                "overrides={'dotted.path': value} and the shorthands "
                f"{', '.join(name + '=' for name in SHORTHAND_OVERRIDES)}"
            )
    problems += _gateway_problems(kwargs.get("gateway"), "gateway" in kwargs, fixturenames)
    if "broker" in kwargs:
        problems += _broker_problems(kwargs["broker"], fixturenames, test_dir)
    overrides = kwargs.get("overrides")
    if overrides is not None and not (
        isinstance(overrides, Mapping) and all(isinstance(k, str) and k for k in overrides)
    ):
        problems.append(
            f"edgesim(overrides={overrides!r}): expected a dict of dotted paths to values, "
            "such as {'network.default.loss': 0.1}"
        )
    if "seed" in kwargs:
        seed = kwargs["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            problems.append(f"edgesim(seed={seed!r}): expected an integer between 0 and 2**63-1")
    time_scale = kwargs.get("time_scale")
    if time_scale is not None and (
        isinstance(time_scale, bool)
        or not isinstance(time_scale, (int, float))
        or not 0 < time_scale <= 1000
    ):
        problems.append(f"edgesim(time_scale={time_scale!r}): expected a number in (0, 1000]")
    if "duration" in kwargs:
        try:
            if parse_duration(kwargs["duration"]) <= 0:
                raise ValueError("must be longer than zero")
        except ValueError as error:
            problems.append(f"edgesim(duration={kwargs['duration']!r}): {error}")
    return problems


def _gateway_problems(gateway: Any, given: bool, fixturenames: Iterable[str]) -> list[str]:
    if not given:
        return []
    choices = GATEWAY_IMPLEMENTATIONS
    names = [gateway] if isinstance(gateway, str) else gateway
    if not isinstance(names, (list, tuple)) or not names:
        return [
            f"edgesim(gateway={gateway!r}): expected one of {', '.join(choices)} or a non-empty "
            "list of them"
        ]
    problems = [
        f"edgesim(gateway=...): unknown implementation {name!r} (expected one of "
        f"{', '.join(choices)})"
        for name in names
        if name not in choices
    ]
    if len(set(map(str, names))) != len(names):
        problems.append(f"edgesim(gateway={gateway!r}): an implementation is listed twice")
    if "edge_scenario" not in fixturenames:
        problems.append(
            "edgesim(gateway=...) chooses the gateways of the edge_scenario fixture, "
            "which this test does not use"
        )
    return problems


def _broker_problems(broker: Any, fixturenames: Iterable[str], test_dir: Path) -> list[str]:
    from pytest_edgesim.core.scenario.checks import config_file_problem
    from pytest_edgesim.core.scenario.schema import BROKER_RELEASES

    releases = ", ".join(BROKER_RELEASES)
    expected = (
        f"expected a Debian release ({releases}), a dict with one of release=, image=, build= "
        "(and config=, id=), or a non-empty list of them"
    )
    entries = [broker] if isinstance(broker, (str, Mapping)) else broker
    if not isinstance(entries, (list, tuple)) or not entries:
        return [f"edgesim(broker={broker!r}): {expected}"]
    problems = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"release": entry}
        if not isinstance(entry, Mapping):
            problems.append(f"edgesim(broker=...): {entry!r}: {expected}")
            continue
        unknown = [key for key in entry if key not in BROKER_KEYS]
        if unknown:
            problems.append(
                f"edgesim(broker=...): {dict(entry)!r}: unknown key {unknown[0]!r} (the keys "
                f"are {', '.join(BROKER_KEYS)})"
            )
        sources = [key for key in _BROKER_SOURCES if key in entry]
        if len(sources) > 1:
            problems.append(
                f"edgesim(broker=...): {dict(entry)!r}: give one of release, image and build, "
                f"not {' and '.join(sources)}"
            )
        if "release" in entry and entry["release"] not in BROKER_RELEASES:
            problems.append(
                f"edgesim(broker=...): unknown release {entry['release']!r} (expected one of "
                f"{releases})"
            )
        for key in ("image", "build", "config", "id"):
            if key in entry and not (isinstance(entry[key], str) and entry[key]):
                problems.append(
                    f"edgesim(broker=...): {key}={entry[key]!r}: expected a non-empty string"
                )
            elif key == "config" and key in entry:
                problem = config_file_problem(entry[key], test_dir)
                if problem:
                    problems.append(f"edgesim(broker=...): config={entry[key]!r}: {problem}")
    if not any(name in fixturenames for name in ("edge_scenario", "mqtt_broker")):
        problems.append(
            "edgesim(broker=...) chooses the broker of the edge_scenario and mqtt_broker "
            "fixtures, and this test uses neither"
        )
    return problems


def _deterministic_problems(marker: pytest.Mark) -> list[str]:
    problems = []
    if marker.args:
        problems.append(
            f"deterministic() takes keyword arguments only (replay_check=True), got {marker.args!r}"
        )
    for key, value in marker.kwargs.items():
        if key != "replay_check":
            problems.append(
                f"deterministic(): unknown argument {key}={value!r}; it takes replay_check="
            )
        elif not isinstance(value, bool):
            problems.append(
                f"deterministic(replay_check={value!r}): expected True or False, "
                f"got a {_type_name(value)}"
            )
    return problems


def marker_problems(node: pytest.Item, fixturenames: Iterable[str]) -> list[str]:
    """Everything wrong with the edgesim markers on ``node``, one line per problem."""
    fixturenames = list(fixturenames)
    problems = []
    edgesim = node.get_closest_marker("edgesim")
    if edgesim is not None:
        problems += _edgesim_problems(edgesim, fixturenames, Path(node.path).parent)
    deterministic = node.get_closest_marker("deterministic")
    if deterministic is not None:
        problems += _deterministic_problems(deterministic)
    statistical = node.get_closest_marker("statistical")
    if statistical is not None:
        if deterministic is not None:
            problems.append(
                "marked both deterministic and statistical: a test belongs to one tier, "
                "remove one of the two markers"
            )
        problems += statistical_problems(statistical)
    return problems


#: the keyword arguments of ``@pytest.mark.statistical``
MARKER_ARGUMENTS = ("trials", "confidence", "min_pass_rate", "sequential", "faults")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def statistical_problems(marker: pytest.Mark) -> list[str]:
    """Everything wrong with a ``statistical`` marker, one line per problem."""
    problems = []
    if marker.args:
        problems.append(
            f"statistical() takes keyword arguments only (trials=, confidence=, min_pass_rate=, "
            f"sequential=, faults=), got {marker.args!r}"
        )
    for key, value in marker.kwargs.items():
        if key not in MARKER_ARGUMENTS:
            problems.append(
                f"statistical(): unknown argument {key}={value!r}; it takes "
                + ", ".join(f"{name}=" for name in MARKER_ARGUMENTS)
            )
    kwargs = marker.kwargs
    if "trials" in kwargs:
        trials = kwargs["trials"]
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            problems.append(f"statistical(trials={trials!r}): expected an integer >= 1")
    if "confidence" in kwargs:
        confidence = kwargs["confidence"]
        if not _is_number(confidence) or not 0.0 < confidence < 1.0:
            problems.append(
                f"statistical(confidence={confidence!r}): expected a number between 0 and 1 "
                "(exclusive), such as 0.95"
            )
    if "min_pass_rate" in kwargs:
        rate = kwargs["min_pass_rate"]
        if not _is_number(rate) or not 0.0 < rate <= 1.0:
            problems.append(
                f"statistical(min_pass_rate={rate!r}): expected a number above 0 and at most 1, "
                "such as 0.9"
            )
    if "sequential" in kwargs and not isinstance(kwargs["sequential"], bool):
        problems.append(f"statistical(sequential={kwargs['sequential']!r}): expected True or False")
    if "faults" in kwargs:
        from pytest_edgesim.pytest_plugin.swarm_report import faults_problems

        problems += faults_problems(kwargs["faults"])
    return problems
