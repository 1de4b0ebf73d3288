"""The HTML report: one self-contained page (inline CSS and SVG; nothing fetched to view it).

:func:`session_page` renders a pytest session (the JSON report's data: tests, their runs and
verdicts, and a baseline ``comparison`` when there is one); :func:`run_page` renders one
run (``RunResult.to_dict()``), as ``edgesim run --plot`` writes it. Neither imports pytest.
"""

from __future__ import annotations

import html
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_edgesim.core.metrics.timeline import ALL_FLOWS
from pytest_edgesim.reporting import charts

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1b1b1b; background: #f6f7f9; }
header { background: #23395d; color: #fff; padding: 14px 28px; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 4px 0 0; font-size: 13px; opacity: .85; }
main { padding: 8px 28px 40px; max-width: 1100px; }
section.test, section.block { background: #fff; border: 1px solid #dde1e6; border-radius: 6px;
  padding: 12px 18px; margin: 16px 0; }
h2 { font-size: 16px; margin: 4px 0 8px; word-break: break-all; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 5px 8px; text-align: left;
  vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
details { margin: 8px 0; font-size: 13px; } summary { cursor: pointer; color: #374151; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; color: #fff; background: #6b7280; }
.badge.passed { background: #007a5a; } .badge.failed, .badge.error { background: #b3261e; }
.badge.skipped, .badge.xfailed { background: #8a6d00; } .badge.xpassed { background: #8a4fa0; }
.badge.undecided { background: #8a6d00; }
.verdict { font-size: 14px; margin: 6px 0 10px; }
figure.chart { margin: 10px 0; }
figure.chart svg { width: 100%; height: auto; max-width: 900px; display: block; }
figcaption { font-size: 12px; color: #4b5563; margin-top: 2px; }
pre.replay { background: #1e1e1e; color: #e8e8e8; padding: 8px 12px; border-radius: 4px;
  overflow-x: auto; font-size: 12.5px; }
.muted { color: #6b7280; font-size: 13px; }
a { color: #1d4ed8; }
"""

_PARAMETER = re.compile(r"^(?P<base>[^\[]+)\[(?P<parameter>.+)\]$")


def _escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def _anchor(nodeid: str) -> str:
    return "test-" + re.sub(r"[^A-Za-z0-9_-]+", "-", nodeid).strip("-")


def _page(title: str, subtitle: str, body: Iterable[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_escape(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            f"<header><h1>{_escape(title)}</h1><p>{_escape(subtitle)}</p></header>",
            "<main>",
            *body,
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _figure(svg: str, kind: str, caption: str) -> str:
    return (
        f'<figure class="chart" data-chart="{_escape(kind)}">{svg}'
        f"<figcaption>{_escape(caption)}</figcaption></figure>"
    )


def _format(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


# --- a test's numbers ---------------------------------------------------------------------------
def _totals(run: Mapping[str, Any]) -> Mapping[str, Any]:
    metrics = run.get("metrics") or {}
    totals = metrics.get("totals") if isinstance(metrics, Mapping) else None
    return totals if isinstance(totals, Mapping) else {}


def _histograms(run: Mapping[str, Any]) -> Mapping[str, Any]:
    profile = run.get("profile") or {}
    histograms = profile.get("latency_histograms") if isinstance(profile, Mapping) else None
    return histograms if isinstance(histograms, Mapping) else {}


def _shown_run(test: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str]:
    """The run whose timeline a test's section charts (the first failing trial's, else the
    first), and how to name it."""
    runs = [run for run in test.get("runs", ()) if isinstance(run, Mapping)]
    if not runs:
        return None, ""
    verdict = test.get("verdict") if isinstance(test.get("verdict"), Mapping) else None
    if verdict and verdict.get("trials"):
        trials = list(verdict["trials"])
        failed = [trial for trial in trials if trial.get("outcome") == "failed"]
        wanted = (failed or trials)[0]
        for run in runs:
            if run.get("seed") == wanted.get("seed"):
                number = (wanted.get("index") or 0) + 1
                which = "first failing trial" if failed else "first trial"
                return run, f"{which}: trial {number}, seed {run.get('seed')}"
    run = runs[0]
    return run, f"run of scenario {run.get('scenario')}, seed {run.get('seed')}"


def replay_command(test: Mapping[str, Any]) -> str | None:
    """The command that replays the test: its own ``replay`` entry, the verdict's, or (a
    deterministic test with one seed) ``pytest NODEID --edgesim-seed=SEED``."""
    if test.get("replay"):
        return str(test["replay"])
    verdict = test.get("verdict")
    if isinstance(verdict, Mapping) and verdict.get("replay"):
        return str(verdict["replay"])
    seeds = list(test.get("seeds", ()))
    if test.get("tier") == "deterministic" and len(seeds) == 1:
        import shlex

        return f"pytest {shlex.quote(str(test['nodeid']))} --edgesim-seed={seeds[0]}"
    return None


def _verdict_text(test: Mapping[str, Any]) -> str:
    verdict = test.get("verdict")
    if not isinstance(verdict, Mapping) or verdict.get("total") is None:
        seeds = ", ".join(map(str, test.get("seeds", ()))) or "none"
        digests = {
            run.get("trace_digest") for run in test.get("runs", ()) if run.get("trace_digest")
        }
        digest = f"; trace digest {next(iter(digests))[:16]}…" if len(digests) == 1 else ""
        return f"{test.get('outcome', '?')} (seed {seeds}{digest})"
    passed, total = verdict.get("passed", 0), verdict.get("total", 0)
    text = f"{verdict.get('outcome')}: {passed}/{total} trials passed"
    if verdict.get("rate") is not None:
        text += f" (rate {verdict['rate']:.3g})"
    interval = verdict.get("interval")
    if interval:
        kind = verdict.get("interval_kind", "")
        confidence = float(verdict.get("confidence", 0.95))
        text += f"; {confidence * 100:g}% interval [{interval[0]:.3f}, {interval[1]:.3f}] ({kind})"
    if verdict.get("min_pass_rate") is not None:
        text += f"; required pass rate {verdict['min_pass_rate']:g}"
    if verdict.get("budget") is not None:
        text += f"; budget {verdict['budget']} trials"
    return text


def _p95_ms(runs: Sequence[Mapping[str, Any]]) -> tuple[float | None, str]:
    values = [
        float(_totals(run)["latency_ms"]["p95"])
        for run in runs
        if "p95" in (_totals(run).get("latency_ms") or {})
    ]
    if not values:
        return None, ""
    if len(values) == 1:
        return values[0], ""
    return statistics.median(values), f" (median of {len(values)} runs)"


def _outcome(test: Mapping[str, Any]) -> str:
    outcome = str(test.get("outcome", "not run"))
    verdict = test.get("verdict")
    if (
        outcome == "passed"
        and isinstance(verdict, Mapping)
        and verdict.get("outcome") == "undecided"
    ):
        return "undecided"
    return outcome


# --- the page's parts ---------------------------------------------------------------------------
def summary_table(tests: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for test in tests:
        runs = [run for run in test.get("runs", ()) if isinstance(run, Mapping)]
        sent = sum(int(_totals(run).get("sent", 0)) for run in runs)
        delivered = sum(int(_totals(run).get("delivered", 0)) for run in runs)
        p95, note = _p95_ms(runs)
        verdict = test.get("verdict") if isinstance(test.get("verdict"), Mapping) else {}
        trials = (
            f"{verdict.get('passed')}/{verdict.get('total')}"
            if verdict and verdict.get("total") is not None
            else "-"
        )
        interval = verdict.get("interval") if verdict else None
        rate = (
            f"{verdict['rate']:.3g} [{interval[0]:.3f}, {interval[1]:.3f}]"
            if verdict and verdict.get("rate") is not None and interval
            else "-"
        )
        outcome = _outcome(test)
        rows.append(
            "<tr>"
            f'<td><a href="#{_anchor(str(test["nodeid"]))}">{_escape(test["nodeid"])}</a></td>'
            f"<td>{_escape(test.get('tier', ''))}</td>"
            f'<td><span class="badge {_escape(outcome)}">{_escape(outcome)}</span></td>'
            f'<td class="num">{trials}</td>'
            f'<td class="num">{rate}</td>'
            f'<td class="num">{delivered}/{sent}</td>'
            f'<td class="num" title="{_escape(note.strip())}">{_format(p95)}{_escape(note)}</td>'
            "</tr>"
        )
    head = (
        "<tr><th>test</th><th>tier</th><th>outcome</th><th>trials passed</th>"
        "<th>pass rate [interval]</th><th>delivered/published (messages)</th>"
        "<th>p95 latency (ms)</th></tr>"
    )
    return (
        '<section class="block" id="summary"><h2>Summary</h2>'
        f'<table class="summary">{head}{"".join(rows)}</table></section>'
    )


def comparison_section(comparison: Any) -> str:
    """The baseline comparison (``--edgesim-compare``), when the session has one: a list of
    rows (dicts) becomes a table, anything else a key/value table."""
    parts = ['<section class="block" id="comparison"><h2>Baseline comparison</h2>']
    if comparison is None:
        parts.append(
            '<p class="muted">No baseline was compared in this session '
            "(--edgesim-compare NAME).</p>"
        )
    elif isinstance(comparison, Mapping) and _is_baseline_comparison(comparison):
        parts.append(_baseline_comparison(comparison))
    elif isinstance(comparison, Mapping) and isinstance(comparison.get("rows"), list):
        parts.append(_rows_table(comparison["rows"]))
        extra = {key: value for key, value in comparison.items() if key != "rows"}
        if extra:
            parts.append(_key_value_table(extra))
    elif isinstance(comparison, list):
        parts.append(_rows_table(comparison))
    elif isinstance(comparison, Mapping):
        parts.append(_key_value_table(comparison))
    else:
        parts.append(f"<pre>{_escape(comparison)}</pre>")
    parts.append("</section>")
    return "".join(parts)


_COMPARISON_ROW_KEYS = ("nodeid", "metric", "baseline", "current", "change")


def _is_baseline_comparison(comparison: Mapping[str, Any]) -> bool:
    """Whether ``comparison`` is what ``--edgesim-compare`` makes (the plugin's baselines)."""
    rows = comparison.get("rows")
    return isinstance(rows, list) and all(
        isinstance(row, Mapping) and all(key in row for key in _COMPARISON_ROW_KEYS) for row in rows
    )


def _change_text(row: Mapping[str, Any]) -> str:
    change = row.get("change")
    if not isinstance(change, (int, float)):
        return "-"
    text = f"{change:+.4g}"
    ratio = row.get("change_ratio")
    if isinstance(ratio, (int, float)):
        text += f" ({ratio * 100:+.1f}%)"
    return text


def _baseline_comparison(comparison: Mapping[str, Any]) -> str:
    """``--edgesim-compare``'s comparison: the baseline and the rules, a row per test,
    metric and flow (regressions first), then the tests only one side has."""
    rules = ", ".join(map(str, comparison.get("thresholds") or ())) or "none"
    parts = [
        f"<p>Baseline <strong>{_escape(comparison.get('baseline', '?'))}</strong> "
        f'<span class="muted">({_escape(comparison.get("file", ""))})</span>; '
        f"fails on: {_escape(rules)}.</p>"
    ]
    rows = sorted(
        comparison["rows"],
        key=lambda row: (not row.get("regressed"), not row.get("worse"), str(row["nodeid"])),
    )
    changed = [row for row in rows if row.get("change")]
    unchanged = [row for row in rows if not row.get("change")]
    if changed:
        parts.append(_comparison_table(changed))
    if unchanged:
        parts.append(
            f"<details><summary>{len(unchanged)} unchanged "
            f"value{'s' if len(unchanged) != 1 else ''}</summary>"
            f"{_comparison_table(unchanged)}</details>"
        )
    if not rows:
        parts.append('<p class="muted">No test of this session has values in the baseline.</p>')
    for key, label in (("new", "Not in the baseline"), ("missing", "In the baseline, not run now")):
        names = comparison.get(key) or ()
        if names:
            parts.append(f'<p class="muted">{label}: {_escape(", ".join(map(str, names)))}.</p>')
    return "".join(parts)


def _comparison_table(rows: Sequence[Mapping[str, Any]]) -> str:
    body = []
    for row in rows:
        status = "regressed" if row.get("regressed") else ("worse" if row.get("worse") else "")
        metric = str(row["metric"]) + (f" [{row['flow']}]" if row.get("flow") else "")
        badge = f'<span class="badge failed">{status}</span>' if status == "regressed" else status
        body.append(
            "<tr>"
            f"<td>{_escape(row['nodeid'])}</td><td>{_escape(metric)}</td>"
            f'<td class="num">{_format(row["baseline"], 4)}</td>'
            f'<td class="num">{_format(row["current"], 4)}</td>'
            f'<td class="num">{_escape(_change_text(row))}</td><td>{badge}</td>'
            "</tr>"
        )
    return (
        "<table><tr><th>test</th><th>metric [flow]</th><th>baseline</th><th>now</th>"
        f"<th>change</th><th></th></tr>{''.join(body)}</table>"
    )


def _rows_table(rows: Sequence[Any]) -> str:
    columns: list[str] = []
    for row in rows:
        if isinstance(row, Mapping):
            columns += [str(key) for key in row if str(key) not in columns]
    head = "".join(f"<th>{_escape(column)}</th>" for column in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_escape(_format(row.get(column)))}</td>" for column in columns)
        + "</tr>"
        for row in rows
        if isinstance(row, Mapping)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _key_value_table(values: Mapping[str, Any]) -> str:
    body = "".join(
        f"<tr><th>{_escape(key)}</th><td>{_escape(_format(value))}</td></tr>"
        for key, value in values.items()
    )
    return f"<table>{body}</table>"


def test_section(test: Mapping[str, Any], number: int) -> str:
    nodeid = str(test["nodeid"])
    outcome = _outcome(test)
    parts = [
        f'<section class="test" id="{_anchor(nodeid)}">',
        f'<h2><span class="badge {_escape(outcome)}">{_escape(outcome)}</span> '
        f"{_escape(nodeid)}</h2>",
        f'<p class="verdict">{_escape(_verdict_text(test))} '
        f'<span class="muted">({_escape(test.get("tier", ""))} tier)</span></p>',
    ]
    verdict = test.get("verdict")
    if (
        isinstance(verdict, Mapping)
        and verdict.get("trials")
        and verdict.get("rule")
        in (
            "fixed",
            "sequential",
        )
    ):
        parts.append(
            _figure(
                charts.pass_rate_chart(verdict, f"t{number}-rate"),
                "pass-rate",
                "The pass rate after each trial (line), its confidence band (shaded), the "
                "required pass rate (dashed) and the failing trials (crosses).",
            )
        )
    runs = [run for run in test.get("runs", ()) if isinstance(run, Mapping)]
    shown, which = _shown_run(test)
    if shown is not None:
        parts.append(
            _figure(
                charts.timeline_chart(
                    (shown.get("profile") or {}).get("timeline") or {},
                    shown.get("faults") or (),
                    f"t{number}-timeline",
                    f"Messages over time ({which})",
                ),
                "timeline",
                "Messages published, delivered to their subscribers and dropped per second of "
                "virtual time (topic totals), with partitions shaded and faults marked.",
            )
        )
        histograms = _histograms(shown) if len(runs) == 1 else _merged_flows(runs)
        faint = [_histograms(run).get(ALL_FLOWS, []) for run in runs] if len(runs) > 1 else []
        title = "Latency distribution per flow" + (
            f" (all {len(runs)} runs together)" if len(runs) > 1 else ""
        )
        parts.append(
            _figure(
                charts.latency_chart(
                    histograms,
                    f"t{number}-latency",
                    title,
                    faint=faint,
                    faint_label="each run, all topics" if faint else "",
                ),
                "latency",
                "Cumulative distribution of publisher-to-subscriber latency per topic (the "
                "busiest topics) and over all topics; thin grey lines: each run on its own. "
                "Dotted lines mark the 50th, 95th and 99th percentiles.",
            )
        )
    elif not runs:
        parts.append('<p class="muted">No scenario run was recorded for this test.</p>')
    replay = replay_command(test)
    if replay:
        parts.append("<h3>Replay</h3>")
        parts.append(f'<pre class="replay"><code>{_escape(replay)}</code></pre>')
    parts.append("</section>")
    return "\n".join(parts)


def _merged_flows(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[list[int]]]:
    names: list[str] = []
    for run in runs:
        names += [str(name) for name in _histograms(run) if str(name) not in names]
    ordered = [ALL_FLOWS] if ALL_FLOWS in names else []
    ordered += sorted(name for name in names if name != ALL_FLOWS)
    return {
        name: charts.merge_histograms([_histograms(run).get(name, []) for run in runs])
        for name in ordered
    }


def parameter_groups(tests: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[list[int]]]]:
    """Tests that differ only in their parameters (``test_x[python_model]``,
    ``test_x[docker:mqtt]``: gateway implementations, say): for each base name with two or
    more, every parameter's latencies over all topics (its runs together)."""
    groups: dict[str, dict[str, list[list[int]]]] = {}
    for test in tests:
        match = _PARAMETER.match(str(test["nodeid"]))
        runs = [run for run in test.get("runs", ()) if isinstance(run, Mapping)]
        if match is None or not runs:
            continue
        merged = charts.merge_histograms([_histograms(run).get(ALL_FLOWS, []) for run in runs])
        if merged:
            groups.setdefault(match["base"], {})[match["parameter"]] = merged
    return {base: members for base, members in groups.items() if len(members) >= 2}


def parameters_section(tests: Sequence[Mapping[str, Any]]) -> str:
    groups = parameter_groups(tests)
    if not groups:
        return ""
    parts = ['<section class="block" id="parameters"><h2>Compared across parameters</h2>']
    for number, (base, members) in enumerate(sorted(groups.items())):
        parts.append(
            _figure(
                charts.latency_chart(members, f"p{number}-latency", f"Latency, all topics: {base}"),
                "latency-comparison",
                "Cumulative latency distribution over all topics for each parameter of the "
                "same test (gateway implementations, brokers), every run together.",
            )
        )
    parts.append("</section>")
    return "\n".join(parts)


def session_page(session: Mapping[str, Any], title: str = "edgesim report") -> str:
    """The session's HTML page: summary table, baseline comparison, one section per test."""
    tests = [test for test in session.get("tests", ()) if isinstance(test, Mapping)]
    seed = session.get("seed")
    subtitle = f"{len(tests)} edgesim test{'s' if len(tests) != 1 else ''}; " + (
        f"seed {seed} for every scenario" if seed is not None else "each scenario's own seed"
    )
    body = [summary_table(tests), comparison_section(session.get("comparison"))]
    body.append(parameters_section(tests))
    body += [test_section(test, number) for number, test in enumerate(tests)]
    return _page(title, subtitle, body)


# --- one run (edgesim run --plot) ---------------------------------------------------------------
def run_charts(run: Mapping[str, Any]) -> dict[str, str]:
    """The charts of one run (``RunResult.to_dict()``): ``timeline`` and ``latency`` SVGs."""
    profile = run.get("profile") or {}
    return {
        "timeline": charts.timeline_chart(
            profile.get("timeline") or {},
            run.get("faults") or (),
            "run-timeline",
            f"Messages over time: {run.get('scenario')}, seed {run.get('seed')}",
        ),
        "latency": charts.latency_chart(
            _histograms(run), "run-latency", f"Latency distribution per flow: {run.get('scenario')}"
        ),
    }


def run_page(run: Mapping[str, Any], command: str | None = None) -> str:
    """A page for one run: its totals, its charts and the command that made it."""
    svgs = run_charts(run)
    totals = _totals(run)
    latency = totals.get("latency_ms") or {}
    rows = {
        "virtual time (s)": run.get("virtual_time_s"),
        "published": totals.get("sent"),
        "delivered": totals.get("delivered"),
        "dropped": sum((totals.get("dropped") or {}).values()),
        "p50 latency (ms)": latency.get("p50"),
        "p95 latency (ms)": latency.get("p95"),
        "p99 latency (ms)": latency.get("p99"),
        "trace digest": run.get("trace_digest"),
    }
    body = [
        '<section class="block" id="summary"><h2>Summary</h2>'
        + _key_value_table(rows)
        + "</section>",
        '<section class="test">',
        _figure(
            svgs["timeline"],
            "timeline",
            "Messages published, delivered and dropped per second of virtual time (topic "
            "totals), partitions shaded, faults marked.",
        ),
        _figure(
            svgs["latency"],
            "latency",
            "Cumulative distribution of publisher-to-subscriber latency per topic and overall.",
        ),
    ]
    if command:
        body.append(f'<h3>Command</h3><pre class="replay"><code>{_escape(command)}</code></pre>')
    body.append("</section>")
    return _page(f"edgesim run: {run.get('scenario')}", f"seed {run.get('seed')}", body)
