"""Baselines: save a session's metrics (``--edgesim-save NAME``) and compare a later
session with them (``--edgesim-compare NAME``, ``--edgesim-compare-fail=p95_ms:10%``).

A baseline is a JSON file, ``NAME.json`` in the baseline directory
(:func:`~pytest_edgesim.pytest_plugin.settings.baseline_dir`), holding per test its pass
rate, its trials and, per flow (each destination readings reach: the cloud, a gateway), the
delivery ratio and the p50/p95/p99 latency, each the mean over the test's scenario runs. It is
made from the session record (:class:`.SessionReport`) on the process where reports arrive,
so under pytest-xdist it sums what every worker sent on its reports.

The comparison is plain data (:func:`compare`); the JSON report carries it as
``comparison`` and the terminal summary prints it as a table.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_edgesim.pytest_plugin import settings
from pytest_edgesim.pytest_plugin.session_report import RecordedTest, SessionReport

BASELINE_VERSION = 1
#: metric -> whether a higher value is better
METRICS = {
    "pass_rate": True,
    "delivery_ratio": True,
    "p50_ms": False,
    "p95_ms": False,
    "p99_ms": False,
}
FLOW_METRICS = ("delivery_ratio", "p50_ms", "p95_ms", "p99_ms")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_RULE = re.compile(r"\s*([a-z0-9_]+)\s*:\s*([0-9]*\.?[0-9]+)\s*(%?)\s*")


# --- the options ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Threshold:
    """``--edgesim-compare-fail=METRIC:AMOUNT[%]``: how much worse a metric may get."""

    metric: str
    amount: float
    relative: bool

    @property
    def text(self) -> str:
        return f"{self.metric}:{self.amount:g}{'%' if self.relative else ''}"

    def exceeded(self, baseline: float, worse_by: float) -> bool:
        """Whether getting worse by ``worse_by`` (> 0) from ``baseline`` is beyond it."""
        if self.relative:
            if baseline == 0:
                return worse_by > 0
            return worse_by > abs(baseline) * self.amount / 100
        return worse_by > self.amount


def _check_name(value: str, option: str) -> str:
    if not _NAME.fullmatch(value):
        raise pytest.UsageError(
            f"{option}: expected a baseline name (letters, digits, '.', '_', '-'), got {value!r}"
        )
    return value


def save_name(config: pytest.Config) -> str | None:
    value = config.getoption("edgesim_save", default=None)
    return None if value is None else _check_name(str(value), "--edgesim-save")


def compare_name(config: pytest.Config) -> str | None:
    value = config.getoption("edgesim_compare", default=None)
    return None if value is None else _check_name(str(value), "--edgesim-compare")


def thresholds(config: pytest.Config) -> list[Threshold]:
    """The ``--edgesim-compare-fail`` rules, checked."""
    rules = []
    for text in config.getoption("edgesim_compare_fail", default=None) or []:
        match = _RULE.fullmatch(str(text))
        if match is None or match.group(1) not in METRICS:
            raise pytest.UsageError(
                f"--edgesim-compare-fail: expected METRIC:AMOUNT or METRIC:PERCENT% with METRIC "
                f"one of {', '.join(METRICS)} (e.g. p95_ms:10% or delivery_ratio:0.02), "
                f"got {text!r}"
            )
        rules.append(Threshold(match.group(1), float(match.group(2)), bool(match.group(3))))
    return rules


def baseline_path(config: pytest.Config, name: str) -> Path:
    return settings.baseline_dir(config) / f"{name}.json"


def validate(config: pytest.Config) -> None:
    """Check the baseline options at start-up: names, rules, and that the baseline to
    compare with exists and is one."""
    save_name(config)
    rules = thresholds(config)
    name = compare_name(config)
    if name is None:
        if rules:
            raise pytest.UsageError(
                "--edgesim-compare-fail needs --edgesim-compare NAME (the baseline to compare with)"
            )
        return
    load(config, name)


def load(config: pytest.Config, name: str) -> dict[str, Any]:
    path = baseline_path(config, name)
    if not path.is_file():
        directory = path.parent
        saved = sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []
        have = f"saved baselines there: {', '.join(saved)}" if saved else "none is saved there"
        raise pytest.UsageError(
            f"--edgesim-compare {name}: no baseline {path} ({have}); save one with "
            f"--edgesim-save {name}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise pytest.UsageError(f"--edgesim-compare {name}: cannot read {path}: {error}") from None
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
        raise pytest.UsageError(
            f"--edgesim-compare {name}: {path} is not an edgesim baseline of version "
            f"{BASELINE_VERSION} (save it again with --edgesim-save {name})"
        )
    return data


# --- what a baseline holds --------------------------------------------------------------------
def _mean(values: list[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(numbers) / len(numbers) if numbers else None


def _pass_rate(record: RecordedTest) -> tuple[float | None, int]:
    """The test's pass rate and how many trials it is over."""
    verdict = record.verdict
    if isinstance(verdict, dict) and verdict.get("total"):
        return verdict.get("rate"), int(verdict["total"])
    if record.outcome == "passed":
        return 1.0, 1
    if record.outcome == "failed":
        return 0.0, 1
    return None, 0


def test_entry(record: RecordedTest) -> dict[str, Any]:
    """One test's entry in a baseline (and the values a comparison reads)."""
    pass_rate, trials = _pass_rate(record)
    flows: dict[str, dict[str, float | None]] = {}
    names = sorted({name for run in record.runs for name in run.get("flows", {})})
    for name in names:
        per_run = [run["flows"][name] for run in record.runs if name in run.get("flows", {})]
        flows[name] = {
            metric: _mean([run.get(metric) for run in per_run]) for metric in FLOW_METRICS
        }
    return {
        "tier": record.tier,
        "outcome": record.outcome,
        "trials": trials,
        "runs": len(record.runs),
        "pass_rate": pass_rate,
        "flows": flows,
    }


def baseline(report: SessionReport, name: str) -> dict[str, Any]:
    """The baseline of the session ``report`` records."""
    return {
        "version": BASELINE_VERSION,
        "name": name,
        "seed": report.seed,
        "tests": {nodeid: test_entry(report.tests[nodeid]) for nodeid in sorted(report.tests)},
    }


def save(report: SessionReport, path: Path, name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(baseline(report, name), indent=2, sort_keys=True, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


# --- comparing --------------------------------------------------------------------------------
def _values(entry: dict[str, Any]) -> list[tuple[str, str | None, float | None]]:
    """``(metric, flow, value)`` of a test's entry, in a fixed order."""
    values: list[tuple[str, str | None, float | None]] = [("pass_rate", None, entry["pass_rate"])]
    for flow in sorted(entry.get("flows", {})):
        values += [(metric, flow, entry["flows"][flow].get(metric)) for metric in FLOW_METRICS]
    return values


def compare(
    report: SessionReport, saved: dict[str, Any], name: str, path: Path, rules: list[Threshold]
) -> dict[str, Any]:
    """The session against the baseline ``saved``: a row per test, metric and flow both have."""
    before = saved.get("tests", {})
    rows = []
    for nodeid in sorted(set(report.tests) & set(before)):
        previous = {(m, f): v for m, f, v in _values(before[nodeid])}
        for metric, flow, current in _values(test_entry(report.tests[nodeid])):
            old = previous.get((metric, flow))
            if old is None or current is None:
                continue
            higher_is_better = METRICS[metric]
            change = current - old
            worse_by = -change if higher_is_better else change
            broken = [rule for rule in rules if rule.metric == metric]
            regressed = worse_by > 0 and any(rule.exceeded(old, worse_by) for rule in broken)
            rows.append(
                {
                    "nodeid": nodeid,
                    "metric": metric,
                    "flow": flow,
                    "baseline": old,
                    "current": current,
                    "change": change,
                    "change_ratio": change / old if old else None,
                    "worse": worse_by > 0,
                    "regressed": regressed,
                    "thresholds": [rule.text for rule in broken],
                }
            )
    return {
        "baseline": name,
        "file": str(path),
        "thresholds": [rule.text for rule in rules],
        "rows": rows,
        "new": sorted(set(report.tests) - set(before)),
        "missing": sorted(set(before) - set(report.tests)),
        "regressions": sum(row["regressed"] for row in rows),
    }


def _number(metric: str, value: float) -> str:
    return f"{value:.4f}" if not metric.endswith("_ms") else f"{value:.2f}"


def _change(row: dict[str, Any], separator: str = " ") -> str:
    metric = row["metric"]
    text = f"{row['change']:+.4f}" if not metric.endswith("_ms") else f"{row['change']:+.2f}"
    if row["change_ratio"] is not None:
        percent = f"{row['change_ratio'] * 100:+.1f}%"
        text += f"{separator}{percent}" if separator != " " else f" ({percent})"
    return text


def comparison_lines(comparison: dict[str, Any], every_row: bool = False) -> list[str]:
    """The comparison as the terminal shows it: a table of the values that changed (of
    every value with ``every_row``), then each regression."""
    rules = ", ".join(comparison["thresholds"]) or "none (--edgesim-compare-fail)"
    lines = [f"baseline {comparison['baseline']} ({comparison['file']}); fail on: {rules}"]
    rows = [row for row in comparison["rows"] if every_row or row["change"] != 0]
    unchanged = len(comparison["rows"]) - len(rows)
    table = [("test", "metric", "baseline", "now", "change", "")]
    for row in rows:
        metric = row["metric"] + (f" [{row['flow']}]" if row["flow"] else "")
        mark = "REGRESSED" if row["regressed"] else ("worse" if row["worse"] else "")
        table.append(
            (
                row["nodeid"],
                metric,
                _number(row["metric"], row["baseline"]),
                _number(row["metric"], row["current"]),
                _change(row),
                mark,
            )
        )
    if rows:
        widths = [max(len(line[column]) for line in table) for column in range(6)]
        for number, line in enumerate(table):
            cells = [
                cell.ljust(width) if column < 2 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(line[:5], widths, strict=False))
            ]
            lines.append(("  ".join(cells) + "  " + line[5]).rstrip())
            if number == 0:
                lines.append("  ".join("-" * width for width in widths[:5]))
    elif not comparison["rows"]:
        lines.append("no test of this session has values in the baseline")
    if unchanged:
        lines.append(f"{unchanged} unchanged value{'s' if unchanged > 1 else ''} not shown (-v)")
    if comparison["new"]:
        lines.append(f"not in the baseline: {', '.join(comparison['new'])}")
    if comparison["missing"]:
        lines.append(f"in the baseline, not run now: {', '.join(comparison['missing'])}")
    for row in rows:
        if row["regressed"]:
            metric = row["metric"] + (f" of flow {row['flow']}" if row["flow"] else "")
            lines.append(
                f"REGRESSION {row['nodeid']}: {metric} {_number(row['metric'], row['baseline'])}"
                f" -> {_number(row['metric'], row['current'])} ({_change(row, ', ')}), beyond "
                f"{', '.join(row['thresholds'])}"
            )
    if comparison["regressions"]:
        lines.append(
            f"{comparison['regressions']} regression(s) beyond --edgesim-compare-fail: "
            "the session fails"
        )
    return lines
