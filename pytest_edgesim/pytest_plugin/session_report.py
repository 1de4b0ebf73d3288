"""The session's record of edgesim tests: the JSON report and the terminal summary's numbers.

What a test did travels to the controller on its reports as ``user_properties`` (a worker's
``config.stash`` never reaches the controller): the test's tier (``edgesim_tier``, set at
collection), each seed in force (``edgesim_seed``), one entry per scenario run
(``edgesim_run``: scenario, seed, digest, metrics, wall time) and the statistical verdict
(``edgesim_verdict``, set by :mod:`~pytest_edgesim.pytest_plugin.trials`). Each report carries
the whole list so far, so the latest report of a test says everything about it.

The JSON report holds no wall-clock values, so a serial run and an ``-n 2`` run of the same
tests with the same seeds write the same file.

JUnit XML (``--junitxml``) writes the user properties of each test's teardown report. Those
four grow with the scenario and the trials, so where reports arrive they are replaced, once
recorded here, by one compact ``edgesim`` property (:func:`junit_summary`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_edgesim.pytest_plugin.configuration_errors import is_configuration_error

TIER_PROPERTY = "edgesim_tier"
SEED_PROPERTY = "edgesim_seed"
RUN_PROPERTY = "edgesim_run"
VERDICT_PROPERTY = "edgesim_verdict"
#: the one property JUnit XML gets instead of the four above
JUNIT_PROPERTY = "edgesim"
_RECORDED_PROPERTIES = (TIER_PROPERTY, SEED_PROPERTY, RUN_PROPERTY, VERDICT_PROPERTY)
#: set on the report xdist makes for a test whose worker died while running it
CRASH_ATTRIBUTE = "edgesim_worker_crash"
REPORT_VERSION = 1
SLOWEST_SHOWN = 5


@dataclass
class RecordedTest:
    """What the session knows about one edgesim test."""

    nodeid: str
    tier: str
    outcome: str = "not run"
    seeds: list[int] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    verdict: Any = None
    #: why the test stopped when its xdist worker died running it, else None
    crash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        crash = {} if self.crash is None else {"crash": self.crash}
        return {
            **crash,
            "nodeid": self.nodeid,
            "tier": self.tier,
            "outcome": self.outcome,
            "seeds": list(self.seeds),
            "runs": [
                {key: value for key, value in run.items() if key != "wall_time_s"}
                for run in self.runs
            ],
            "verdict": self.verdict,
        }


def _outcome(previous: str, report: pytest.TestReport) -> str:
    if report.when == "setup" and report.skipped and hasattr(report, "wasxfail"):
        return "xfailed"  # xfail(run=False)
    if report.when == "call":
        if report.failed and is_configuration_error(report):
            return "error"  # (as the terminal says: the test could not run as configured)
        if hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
        return report.outcome
    if report.failed:
        return "error" if previous in ("not run", "passed") else previous
    if report.skipped:
        return "skipped"
    return previous


class SessionReport:
    """Collects the reports of edgesim tests; registered as a plugin where reports arrive
    (a serial run, or the xdist controller)."""

    def __init__(self, seed: int | None):
        self.seed = seed
        self.tests: dict[str, RecordedTest] = {}
        #: the comparison with a baseline (``--edgesim-compare``; :mod:`.baselines`)
        self.comparison: dict[str, Any] | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.add(report)
        if report.when == "teardown" and report.nodeid in self.tests:
            record = self.tests[report.nodeid]
            kept = [pair for pair in report.user_properties if pair[0] not in _RECORDED_PROPERTIES]
            report.user_properties = [*kept, (JUNIT_PROPERTY, junit_summary(record))]

    def add(self, report: pytest.TestReport) -> None:
        pairs = report.user_properties
        tiers = properties(pairs, TIER_PROPERTY)
        if getattr(report, CRASH_ATTRIBUTE, False) and report.nodeid in self.tests:
            crashed = self.tests[report.nodeid]
            crashed.outcome = "failed"
            crashed.crash = str(report.longrepr)
            return
        if not tiers:
            return
        record = self.tests.get(report.nodeid)
        if record is None:
            record = self.tests[report.nodeid] = RecordedTest(report.nodeid, tiers[-1])
        record.outcome = _outcome(record.outcome, report)
        record.runs = [dict(run) for run in properties(pairs, RUN_PROPERTY)]
        seeds = properties(pairs, SEED_PROPERTY) + [run["seed"] for run in record.runs]
        record.seeds = list(dict.fromkeys(seeds))
        verdicts = properties(pairs, VERDICT_PROPERTY)
        if verdicts:
            record.verdict = verdicts[-1]

    def to_dict(self) -> dict[str, Any]:
        comparison = {} if self.comparison is None else {"comparison": self.comparison}
        return {
            "version": REPORT_VERSION,
            "seed": self.seed,
            "tests": [self.tests[nodeid].to_dict() for nodeid in sorted(self.tests)],
            **comparison,
        }

    def write(self, path: Path) -> None:
        """Write the JSON report (``NaN`` metrics become ``null`` so that it is valid JSON)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(_json_safe(self.to_dict()), indent=2, sort_keys=True, allow_nan=False)
        path.write_text(text + "\n", encoding="utf-8")

    # --- the terminal summary ----------------------------------------------------------------
    def tier_line(self) -> str:
        counts: dict[str, Counter[str]] = {}
        for record in self.tests.values():
            outcome = record.outcome
            verdict = record.verdict
            undecided = isinstance(verdict, dict) and verdict.get("outcome") == "undecided"
            if outcome == "passed" and undecided:  # (it passes, but it decided nothing)
                outcome = "undecided"
            counts.setdefault(record.tier, Counter())[outcome] += 1
        if not counts:
            return "tiers: no edgesim tests ran"
        parts = []
        for tier in sorted(counts):
            outcomes = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts[tier].items()))
            parts.append(f"{tier} {sum(counts[tier].values())} ({outcomes})")
        return "tiers: " + "; ".join(parts)

    def seed_lines(self) -> list[str]:
        if self.seed is not None:
            return [
                f"seed: {self.seed} for every scenario (replay with --edgesim-seed={self.seed})"
            ]
        seeds = sorted({seed for record in self.tests.values() for seed in record.seeds})
        shown = ", ".join(map(str, seeds[:10])) + (", ..." if len(seeds) > 10 else "")
        return [f"seeds: each scenario's own ({shown or 'none used'})"]

    def slowest_lines(self, count: int = SLOWEST_SHOWN) -> list[str]:
        runs = [
            (run.get("wall_time_s", 0.0), record.nodeid, run)
            for record in self.tests.values()
            for run in record.runs
        ]
        runs.sort(key=lambda entry: (-entry[0], entry[1]))
        if not runs:
            return []
        lines = [f"slowest scenarios (wall time, top {min(count, len(runs))}):"]
        for wall_time_s, nodeid, run in runs[:count]:
            lines.append(
                f"  {wall_time_s * 1000:9.1f} ms  {nodeid}  {run['scenario']} (seed {run['seed']})"
            )
        return lines

    def summary_lines(self) -> list[str]:
        return [self.tier_line(), *self.seed_lines(), *self.slowest_lines()]


def junit_summary(record: RecordedTest) -> str:
    """One line, whatever the scenario's size: the tier, the verdict, the trials, the
    interval and the seeds (``statistical; refuted; 7/10 trials passed; 95% wilson interval
    [0.397, 0.892]; base seed 11``)."""
    parts = [record.tier]
    verdict = record.verdict
    if isinstance(verdict, dict):
        parts.append(str(verdict.get("outcome")))
        parts.append(f"{verdict.get('passed')}/{verdict.get('total')} trials passed")
        if verdict.get("budget") != verdict.get("total"):
            parts[-1] += f" (budget {verdict.get('budget')})"
        interval = verdict.get("interval")
        if interval:
            low, high = interval
            confidence = float(verdict.get("confidence") or 0) * 100
            parts.append(
                f"{confidence:g}% {verdict.get('interval_kind')} interval [{low:.3f}, {high:.3f}]"
            )
        if verdict.get("base_seed") is not None:
            parts.append(f"base seed {verdict['base_seed']}")
        failed = verdict.get("failed_seeds") or []
        if failed:
            parts.append(f"first failing trial seed {failed[0]}")
    else:
        parts.append(record.outcome)
        seeds = record.seeds
        if seeds:
            shown = ", ".join(map(str, seeds[:3])) + (", ..." if len(seeds) > 3 else "")
            parts.append(f"seed{'s' if len(seeds) > 1 else ''} {shown}")
        digests = [run.get("trace_digest") for run in record.runs if run.get("trace_digest")]
        if len(digests) == 1:
            parts.append(f"trace digest {digests[0]}")
        elif digests:
            parts.append(f"{len(digests)} runs")
    if record.crash:
        parts.append("its xdist worker died running it")
    return "; ".join(parts)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):  # dicts, and the results' read-only summaries
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def properties(pairs: Iterable[tuple[str, Any]], name: str) -> list[Any]:
    """The values of the user properties called ``name``, in order."""
    return [value for key, value in pairs if key == name]


#: where the session's :class:`SessionReport` is kept (``config.stash``)
session_report_key = pytest.StashKey[SessionReport]()
