"""Swarm testing and assertions over runs, in the pytest layer.

``@pytest.mark.statistical(faults="swarm")`` (or ``faults={"swarm": {...}}``, the
scenario's ``swarm:`` section written as a dict) gives the scenario a ``swarm:`` section, so
each trial's seed draws its own fault profile (:mod:`pytest_edgesim.core.swarm`). What each
run drew and stated (``always``/``sometimes``/...) travels on its ``edgesim_run`` entry
(``swarm``, ``assertions``; see :mod:`~pytest_edgesim.pytest_plugin.session_report`), so it
reaches the xdist controller; :func:`annotate` adds to a statistical verdict each trial's
profile, the pass rates by fault kind and the judgement of the assertions across trials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgesim.pytest_plugin.session_report import (
    RUN_PROPERTY,
    properties,
    session_report_key,
)

if TYPE_CHECKING:
    from pytest_edgesim.core.edge_scenario import EdgeScenario
    from pytest_edgesim.core.scenario import Scenario

SWARM = "swarm"


# --- the marker -------------------------------------------------------------------------------
def marker_faults(item: pytest.Item) -> Any:
    marker = item.get_closest_marker("statistical")
    return None if marker is None else marker.kwargs.get("faults")


def faults_problems(value: Any) -> list[str]:
    """What is wrong with ``statistical(faults=...)``, one line per problem."""
    expected = "expected 'swarm' or {'swarm': {...}} (the scenario's swarm: section as a dict)"
    if value == SWARM:
        return []
    if not (isinstance(value, Mapping) and list(value) == [SWARM]):
        return [f"statistical(faults={value!r}): {expected}"]
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.errors import ScenarioError

    try:
        Scenario.from_dict({"edgesim": 1, "swarm": value[SWARM] or {}})
    except ScenarioError as error:
        return [
            f"statistical(faults=...): {problem.removeprefix('<dict>: ')}"
            for problem in error.problems
        ]
    return []


def with_swarm(item: pytest.Item, scenario: Scenario) -> Scenario:
    """The scenario with the marker's ``faults=`` swarm section, if it gives one (a
    ``faults="swarm"`` keeps the scenario's own section, or takes the defaults)."""
    value = marker_faults(item)
    if value is None:
        return scenario
    if value == SWARM:
        if scenario.spec.swarm is not None:
            return scenario
        section: Any = {}
    else:
        section = dict(value[SWARM] or {})
    return scenario.with_overrides({SWARM: section})


# --- what a run carries -------------------------------------------------------------------------
def run_entry(edge: EdgeScenario) -> dict[str, Any]:
    """The ``swarm`` and ``assertions`` keys of a run's ``edgesim_run`` entry (or none)."""
    entry: dict[str, Any] = {}
    profile = edge.simulation.swarm_profile
    if profile is not None:
        entry["swarm"] = profile.to_dict()
    records = edge.simulation.assertions.records()
    if records:
        entry["assertions"] = [record.to_dict() for record in records]
    return entry


def _fault_text(fault: Mapping[str, Any]) -> str:
    from pytest_edgesim.core.swarm import SwarmFault

    return str(SwarmFault.from_dict(fault))


def profile_lines(edges: Iterable[EdgeScenario]) -> list[str]:
    """What each swarmed run of a test drew (for a failing test's edgesim section)."""
    return [
        f"swarm profile (seed {edge.seed}): {edge.simulation.swarm_profile.describe()}"
        for edge in edges
        if edge.built and edge.simulation.swarm_profile is not None
    ]


def live_problems(edges: Iterable[EdgeScenario]) -> list[str]:
    """The assertions of a test's runs, judged (a test that is not statistical)."""
    from pytest_edgesim.core.assertions import RunAssertions, judge

    runs = [
        RunAssertions(f"run with seed {edge.seed}", edge.simulation.assertions.records())
        for edge in edges
        if edge.built
    ]
    return judge([run for run in runs if run.records]) if any(r.records for r in runs) else []


# --- the verdict --------------------------------------------------------------------------------
def annotate(item: pytest.Item, verdict: dict[str, Any]) -> None:
    """Add to a statistical verdict what its trials drew and stated: per trial its profile
    (``swarm``: the faults, as text; ``swarm_kinds``), ``swarm_by_kind`` (the pass rates by
    kind), ``assertions`` (per property, the trials it held and failed in) and
    ``assertion_problems``; a problem fails the test."""
    from pytest_edgesim.core.assertions import AssertionRecord, RunAssertions, judge, summary
    from pytest_edgesim.core.swarm import pass_rates_by_kind

    entries = [e for e in properties(item.user_properties, RUN_PROPERTY) if isinstance(e, Mapping)]
    if verdict["rule"] == "on-real" and entries:
        entries = entries[1:]  # (the models' reference run, under the same seed as the trials)
    by_seed: dict[int, list[Mapping[str, Any]]] = {}
    for entry in entries:  # (in order: a seed's entries are its trials' runs, in turn)
        by_seed.setdefault(entry["seed"], []).append(entry)
    swarm_trials: list[tuple[list[str], bool]] = []
    asserted: list[RunAssertions] = []
    for position, trial in enumerate(verdict["trials"]):
        queued = by_seed.get(trial["seed"], [])
        entry = queued.pop(0) if queued else {}
        profile = entry.get("swarm")
        if profile is not None:
            trial["swarm"] = [_fault_text(fault) for fault in profile["faults"]]
            trial["swarm_kinds"] = list(profile["kinds"])
            swarm_trials.append((list(profile["kinds"]), trial["outcome"] == "passed"))
        index = trial["index"] if trial["index"] is not None else position
        records = tuple(AssertionRecord.from_dict(r) for r in entry.get("assertions", ()))
        if verdict["rule"] == "replay":  # (one trial cannot show that "sometimes" never holds)
            records = tuple(r for r in records if r.kind in ("always", "unreachable"))
        asserted.append(RunAssertions(f"trial {index + 1}, seed {trial['seed']}", records))
    if swarm_trials:
        verdict["swarm_by_kind"] = pass_rates_by_kind(swarm_trials, verdict["confidence"])
    if any(run.records for run in asserted):
        problems = judge(asserted)
        verdict["assertions"] = summary(asserted)
        verdict["assertion_problems"] = problems
        if problems:
            verdict["fails"] = True


def verdict_note(verdict: Mapping[str, Any]) -> str:
    """``; sometimes('x') never held in 20 trials`` (the assertions' problems), or nothing."""
    problems = verdict.get("assertion_problems") or []
    return "".join(f"; {problem}" for problem in problems)


def kind_table(verdict: Mapping[str, Any]) -> list[str]:
    """The pass rates by fault kind, a table of lines (empty without swarm testing)."""
    rows = verdict.get("swarm_by_kind")
    if not rows:
        return []
    confidence = f"{verdict['confidence'] * 100:g}%"
    width = max(len("fault kind"), *(len(row["kind"]) for row in rows))
    lines = [
        f"pass rates by fault kind ({confidence} Wilson intervals):",
        f"  {'fault kind':<{width}}  trials on  passed  rate  interval      alone: passed",
    ]
    for row in rows:
        low, high = row["interval"]
        alone = f"{row['alone_passed']}/{row['alone']}" if row["alone"] else "-"
        lines.append(
            f"  {row['kind']:<{width}}  {row['trials']:>9}  {row['passed']:>6}  "
            f"{row['rate']:.2f}  [{low:.2f}, {high:.2f}]  {alone:>13}"
        )
    ranked = [row for row in rows if row["kind"] != "(no faults)" and row["passed"] < row["trials"]]
    if ranked:
        worst = min(ranked, key=lambda row: (row["rate"], -row["trials"], row["kind"]))
        lines.append(
            f"  lowest pass rate: {worst['kind']} ({worst['passed']}/{worst['trials']} trials "
            "with it on passed)"
        )
    return lines


def trial_lines(verdict: Mapping[str, Any]) -> list[str]:
    """Per trial, its outcome and the faults it drew (``-v``)."""
    lines = []
    for position, trial in enumerate(verdict["trials"]):
        if "swarm" not in trial:
            continue
        index = trial["index"] if trial["index"] is not None else position
        faults = "; ".join(trial["swarm"]) or "no faults"
        lines.append(f"  trial {index + 1} (seed {trial['seed']}) {trial['outcome']}: {faults}")
    return lines


def failure_lines(verdict: Mapping[str, Any]) -> list[str]:
    """What a failing statistical test's edgesim section adds: the assertions' problems,
    the pass rates by kind, and the profile of the first failing trial."""
    lines = list(verdict.get("assertion_problems") or [])
    lines += kind_table(verdict)
    failed = next((t for t in verdict["trials"] if t["outcome"] == "failed" and "swarm" in t), None)
    if failed is not None:
        faults = "; ".join(failed["swarm"]) or "no faults"
        lines.append(f"the first failing trial (seed {failed['seed']}) drew: {faults}")
    return lines


def summary_lines(terminalreporter: Any) -> list[str]:
    """For the edgesim summary: per statistical test with swarm testing or assertions, the
    table of pass rates by kind and the assertions' problems; with ``-v``, every trial's
    profile."""
    report = terminalreporter.config.stash[session_report_key]
    verbose = int(terminalreporter.config.getoption("verbose", default=0) or 0) > 0
    lines: list[str] = []
    for nodeid, record in sorted(report.tests.items()):
        verdict = record.verdict
        if not isinstance(verdict, dict):
            continue
        table = kind_table(verdict)
        problems = verdict.get("assertion_problems") or []
        if not table and not problems and not verdict.get("assertions"):
            continue
        lines.append(f"swarm and assertions: {nodeid}")
        lines += [f"  {line}" for line in table]
        for row in verdict.get("assertions") or []:
            lines.append(
                f"  {row['kind']}({row['label']!r}): held in {row['runs_held']}, "
                f"failed in {row['runs_failed']} of {len(verdict['trials'])} trials"
            )
        lines += [f"  FAILED: {problem}" for problem in problems]
        if verbose:
            lines += [f"  {line}" for line in trial_lines(verdict)]
    return lines
