"""The edgesim markers: their help text, the checks on their arguments, and test tiers.

A marker's arguments are checked when the test is collected, so a typo is a collection
error naming the test and the argument rather than a surprise at run time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
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
        "time_scale=N runs a live (wall-clock) scenario N times faster than real time."
    ),
    "deterministic": (
        "deterministic(replay_check=False): a test of the deterministic tier: one run in "
        "virtual time with the seed in force; replay_check=True runs the same actions again and "
        "fails naming the first event where the two runs diverge. Unmarked edgesim tests are "
        "deterministic."
    ),
    "statistical": (
        "statistical(trials=N, confidence=0.95, min_pass_rate=0.95, sequential=False): a test "
        "of the statistical tier: the body runs as N trials (default 30), each with fresh "
        "fixtures and its own seed; it fails when a Wilson score interval shows the pass rate "
        "below min_pass_rate (sequential=True: stop at the first decision of an anytime-valid "
        "rule, with N as the budget)."
    ),
}

#: Fixtures that make a test an edgesim test (deterministic unless marked statistical).
EDGESIM_FIXTURES = frozenset(
    {"edge_scenario", "edgesim_seed", "edge_coordinator", "latency_network"}
)
GATEWAY_IMPLEMENTATIONS = ("python_model", "python", "docker", "docker:lockstep", "docker:mqtt")
#: ``edgesim(...)`` keyword shorthands for top-level scenario fields.
SHORTHAND_OVERRIDES = ("seed", "duration", "name", "description")
_EDGESIM_KEYWORDS = ("scenario", "gateway", "overrides", "time_scale", *SHORTHAND_OVERRIDES)


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


def replay_check_requested(node: pytest.Item) -> bool:
    marker = node.get_closest_marker("deterministic")
    return marker is not None and marker.kwargs.get("replay_check") is True


def _type_name(value: Any) -> str:
    return type(value).__name__


def _edgesim_problems(marker: pytest.Mark, fixturenames: Iterable[str]) -> list[str]:
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
                "time_scale=, "
                "overrides={'dotted.path': value} and the shorthands "
                f"{', '.join(name + '=' for name in SHORTHAND_OVERRIDES)}"
            )
    problems += _gateway_problems(kwargs.get("gateway"), "gateway" in kwargs, fixturenames)
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
        problems += _edgesim_problems(edgesim, fixturenames)
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
MARKER_ARGUMENTS = ("trials", "confidence", "min_pass_rate", "sequential")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def statistical_problems(marker: pytest.Mark) -> list[str]:
    """Everything wrong with a ``statistical`` marker, one line per problem."""
    problems = []
    if marker.args:
        problems.append(
            f"statistical() takes keyword arguments only (trials=, confidence=, min_pass_rate=, "
            f"sequential=), got {marker.args!r}"
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
    return problems
