"""The statistical tier: ``@pytest.mark.statistical`` runs a test's body as trials.

Each trial is a full setup / call / teardown of the test item, so function-scoped fixtures
(``edge_scenario`` included) are built afresh, and each has its own seed,
``derive_seed(base_seed, "statistical-trial/<index>")`` (blake2b, see
:mod:`pytest_edgesim.core.rng`). The base seed is the one a deterministic run would use: the
``edgesim(seed=...)`` marker, else ``--edgesim-seed``, else the scenario's own seed.
The trials' pass rate is judged by :mod:`pytest_edgesim.core.stats` (fixed N, or sequential with
``sequential=True``) and the test is reported once: the first trial's setup, one call report
carrying the verdict, the last trial's teardown. The verdict travels to the xdist controller
as the user property ``edgesim_verdict``.

``--edgesim-trial-seed=SEED`` replays one trial: every selected statistical test runs once
with that seed and passes or fails as that trial did.

A trial ends as pass, fail or error (:func:`trial_outcome`). An error of the test (a
configuration error, a :class:`~pytest_edgesim.errors.UsageError`, a Hypothesis health
check, a set-up that fails: :mod:`~pytest_edgesim.pytest_plugin.configuration_errors`) is
no trial outcome: the test ends there, as an ERROR with that error, whatever its budget.
An ``xfail`` mark meets the verdict, as pytest's rules say (strict, ``raises=``), not the
first trial; ``skip``, ``skipif`` and ``xfail(run=False)`` end the test at once.

The plugin calls this module from its hooks and fixtures: :func:`run_protocol`,
:func:`current_trial`, :func:`record_metric`, :func:`record_faults`,
:func:`failure_lines`, :func:`report_status` and :func:`summary_lines`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_edgesim.core import stats
from pytest_edgesim.core.rng import derive_seed
from pytest_edgesim.pytest_plugin import artifacts, progress, settings, swarm_report
from pytest_edgesim.pytest_plugin.configuration_errors import is_configuration_error
from pytest_edgesim.pytest_plugin.items import item_scenario, scenario_loaded
from pytest_edgesim.pytest_plugin.replay import replay_command
from pytest_edgesim.pytest_plugin.rerun import (
    begin_run,
    clear_sections,
    end_run,
    run_phase,
    xfail_in_force,
)
from pytest_edgesim.pytest_plugin.session_report import (
    SEED_PROPERTY,
    VERDICT_PROPERTY,
    properties,
    session_report_key,
)

DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_PASS_RATE = 0.95
SEEDS_SHOWN = 10
UNDECIDED_STATUS = ("undecided", "U", "UNDECIDED")


# --- the marker ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialSettings:
    """A statistical test's settings after the marker, the options and the defaults."""

    trials: int
    confidence: float
    min_pass_rate: float
    sequential: bool


def trial_settings(item: pytest.Item) -> TrialSettings:
    """The settings of a statistical test (``trials`` through :func:`config.resolve_trials`)."""
    if _on_real_key in item.stash:
        trials = settings.on_real_trials(item.config) or ON_REAL_SUGGESTED_TRIALS
        return TrialSettings(trials, DEFAULT_CONFIDENCE, 1.0, False)
    marker = item.get_closest_marker("statistical")
    kwargs = dict(marker.kwargs) if marker is not None else {}
    return TrialSettings(
        trials=settings.resolve_trials(item.config, kwargs.get("trials")),
        confidence=float(kwargs.get("confidence", DEFAULT_CONFIDENCE)),
        min_pass_rate=float(kwargs.get("min_pass_rate", DEFAULT_MIN_PASS_RATE)),
        sequential=bool(kwargs.get("sequential", False)),
    )


# --- trials and their seeds -----------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One trial: its index (None when replaying a seed) and its seed."""

    index: int | None
    seed: int

    def describe(self, budget: int) -> str:
        """``trial 3 of 10, seed S`` (counting from 1; the JSON report's index is from 0)."""
        if self.index is None:
            return f"the replayed trial, seed {self.seed}"
        return f"trial {self.index + 1} of {budget}, seed {self.seed}"


def trial_seed(base_seed: int, index: int) -> int:
    """The seed of trial ``index`` under ``base_seed`` (stable across runs and machines)."""
    return derive_seed(base_seed, f"statistical-trial/{index}")


def trial_replay_command(item: pytest.Item, seed: int) -> str:
    """The command that runs the trial with ``seed`` of ``item`` alone."""
    return replay_command(item, f"--edgesim-trial-seed={seed}")


@dataclass
class TrialRecord:
    trial: Trial
    outcome: str
    metrics: dict[str, float] = field(default_factory=dict)
    faults: tuple[str, ...] = ()


@dataclass
class TrialRun:
    """A statistical test's trials while it runs (kept in the item's stash)."""

    settings: TrialSettings
    base_seed: int | None
    current: Trial | None = None
    current_metrics: dict[str, float] = field(default_factory=dict)
    current_faults: list[str] = field(default_factory=list)
    records: list[TrialRecord] = field(default_factory=list)
    first_failure: tuple[Trial, str, list[tuple[str, str]]] | None = None
    #: a trial failed in a way an ``xfail(raises=...)`` mark does not expect
    unexpected_failure: bool = False
    verdict: dict[str, Any] | None = None
    #: --edgesim-on-real: how the models' run ended (None: passed), and each real failure
    reference: tuple[str, str] | None = None
    real_failures: list[tuple[str, str]] = field(default_factory=list)
    #: the trials' setup, call and teardown durations together (the test's real duration)
    duration_s: float = 0.0
    #: the first trial's setup report, logged as soon as it was made (under xdist the
    #: controller then knows the test, should its worker die during the trials)
    logged_setup: pytest.TestReport | None = None


_run_key = pytest.StashKey[TrialRun]()


# --- a deterministic test on real components (--edgesim-on-real) ---------------------------------
#: the trials a failing deterministic test's command suggests
ON_REAL_SUGGESTED_TRIALS = 20
#: "model" while the reference run of the models plays, then "real"
_on_real_key = pytest.StashKey[str]()


def on_real_tier(item: pytest.Item) -> str:
    """The tier of a deterministic test under ``--edgesim-on-real``: statistical (its trials
    on real components) when it runs through ``edge_scenario``; else it stays deterministic
    and is skipped, since only ``edge_scenario`` can swap its components."""
    if "edge_scenario" not in getattr(item, "fixturenames", ()):
        item.add_marker(
            pytest.mark.skip(
                reason="--edgesim-on-real: this test does not use edge_scenario, so its "
                "components cannot be swapped for real ones"
            )
        )
        return "deterministic"
    item.stash[_on_real_key] = "model"
    return "statistical"


def on_real_components(item: pytest.Item) -> bool:
    """Whether ``item`` is running its trials on real components now."""
    return item.stash.get(_on_real_key, None) == "real"


def _crash_site(report: pytest.TestReport) -> tuple[str, str]:
    """Where and how a failed call failed: ``(path:line, first line of the message)``."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None:
        return "", str(report.longrepr).splitlines()[0] if report.longrepr else ""
    message = str(crash.message).splitlines()[0] if crash.message else ""
    return f"{crash.path}:{crash.lineno}", message


def current_trial(item: pytest.Item) -> Trial | None:
    """The trial running now on ``item``, or None outside a statistical trial."""
    run = item.stash.get(_run_key, None)
    return None if run is None else run.current


def trial_budget(item: pytest.Item) -> int:
    """How many trials the statistical test running now may play (1 outside one)."""
    run = item.stash.get(_run_key, None)
    return 1 if run is None else run.settings.trials


def record_metric(item: pytest.Item, name: str, value: float) -> None:
    """Record a per-trial metric (``edge_scenario.record``); the trial's last value counts.

    Outside a statistical trial this does nothing (the value stays on the scenario).
    """
    run = item.stash.get(_run_key, None)
    if run is None or run.current is None:
        return
    value = float(value)
    if not math.isfinite(value):
        from pytest_edgesim.errors import UsageError

        raise UsageError(f"record({name!r}, {value!r}): expected a finite number")
    run.current_metrics[str(name)] = value


def record_faults(item: pytest.Item, faults: list[str]) -> None:
    """The faults (restarts, kills, pauses, disconnects) a run of the current trial
    underwent, as ``str(AppliedFault)``; the verdict says how many trials had any."""
    run = item.stash.get(_run_key, None)
    if run is not None and run.current is not None:
        run.current_faults.extend(faults)


def _base_seed(item: pytest.Item) -> int:
    """The seed a deterministic run of ``item`` would use; trial seeds derive from it."""
    marker = item.get_closest_marker("edgesim")
    marker_seed = marker.kwargs.get("seed") if marker is not None else None
    session_seed = settings.session_seed(item.config)
    if marker_seed is not None or session_seed is not None:
        return settings.resolve_seed(item.config, 0, marker_seed)
    try:
        scenario, _ = item_scenario(item)
    except (Exception, pytest.fail.Exception):
        return 0  # the fixture reports the broken scenario when the trial sets up
    return int(scenario.seed)


# --- running the trials -----------------------------------------------------------------------
def trial_outcome(item: pytest.Item, call: pytest.TestReport | None) -> str | None:
    """How a trial's body ended, as the pass rate counts it: ``"passed"`` or ``"failed"``;
    None when it ends the test instead (no body run, a skip, an imperative
    ``pytest.xfail()``, an error of the test).

    Under an ``xfail`` mark pytest has already turned the body's outcome into an xfail or an
    xpass; this undoes that, so that the mark meets the trials' verdict, not one trial."""
    if call is None or is_configuration_error(call):
        return None
    xfailed = xfail_in_force(item)
    if hasattr(call, "wasxfail"):
        if not xfailed:
            return None  # pytest.xfail() in the body: the test is xfailed, as pytest has it
        return "failed" if call.skipped else "passed"
    if call.skipped:
        return None
    if (
        call.failed
        and xfailed
        and xfailed.strict
        and str(call.longrepr).startswith("[XPASS(strict)]")
    ):
        return "passed"
    return "passed" if call.passed else "failed"


def run_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """``pytest_runtest_protocol`` for a statistical test; None leaves it to pytest."""
    if not isinstance(item, pytest.Function) or item.config.getoption("setuponly", False):
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    try:
        reports = _run_trials(item, nextitem)
        progress.trials_over(item)  # (before the outcome is written where the status was)
        for report in reports:
            run = item.stash.get(_run_key, None)
            if run is None or report is not run.logged_setup:
                ihook.pytest_runtest_logreport(report=report)
    finally:
        progress.trials_over(item)
        if _run_key in item.stash:
            del item.stash[_run_key]
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


@dataclass
class _TrialReports:
    setup: pytest.TestReport
    call: pytest.TestReport | None
    teardown: pytest.TestReport
    last: bool


def _one_trial(
    item: pytest.Function,
    nextitem: pytest.Item | None,
    is_last: Callable[[pytest.TestReport, pytest.TestReport | None], bool],
) -> _TrialReports:
    """Setup, call and teardown of one trial, as ``runtestprotocol`` does, logging nothing.

    A trial that is not the last tears down only the test's own node (its function-scoped
    fixtures); the last one tears down as far as ``nextitem`` needs.
    """
    begin_run(item)
    try:
        setup = run_phase(item, "setup")
        run = item.stash.get(_run_key, None)
        if run is not None and run.logged_setup is None:
            run.logged_setup = setup
            item.ihook.pytest_runtest_logreport(report=setup)
        call = run_phase(item, "call") if setup.passed else None
        session = item.session
        last = is_last(setup, call) or bool(session.shouldfail or session.shouldstop)
        following: Any = nextitem if last else item.parent
        if session.shouldfail or session.shouldstop:
            following = None
        teardown = run_phase(item, "teardown", following)
    finally:
        end_run(item)
    run = item.stash.get(_run_key, None)
    if run is not None:
        run.duration_s += sum(report.duration for report in (setup, call, teardown) if report)
    return _TrialReports(setup, call, teardown, last)


def _run_trials(item: pytest.Function, nextitem: pytest.Item | None) -> list[pytest.TestReport]:
    config = item.config
    replay_seed = settings.replay_trial_seed(config)
    trial_settings_ = trial_settings(item)
    if replay_seed is not None:
        trial_settings_ = dataclasses.replace(trial_settings_, trials=1)
        base_seed = None
    else:
        base_seed = _base_seed(item)
    run = item.stash[_run_key] = TrialRun(trial_settings_, base_seed)
    budget = trial_settings_.trials
    on_real = _on_real_key in item.stash
    if on_real:
        assert base_seed is not None
        early = _reference_run(item, run, nextitem, base_seed)
        if early is not None:
            return early
    outcomes: list[bool] = []
    first_setup: pytest.TestReport | None = None
    reports: _TrialReports | None = None
    extra_teardown: pytest.TestReport | None = None

    for index in range(budget):
        if replay_seed is not None:
            trial = Trial(None, replay_seed)
        else:
            assert base_seed is not None
            trial = Trial(index, base_seed if on_real else trial_seed(base_seed, index))
        run.current, run.current_metrics, run.current_faults = trial, {}, []
        properties_before = len(item.user_properties)

        def is_last(
            setup: pytest.TestReport, call: pytest.TestReport | None, index: int = index
        ) -> bool:
            outcome = trial_outcome(item, call)
            if outcome is None:
                return True  # setup failed or skipped, the body skipped, or an error
            if index + 1 >= budget:
                return True
            if trial_settings_.sequential:
                played = [*outcomes, outcome == "passed"]
                decision = stats.sequential_decision(
                    sum(played),
                    len(played),
                    trial_settings_.min_pass_rate,
                    trial_settings_.confidence,
                )
                return decision != stats.CONTINUE
            return False

        reports = _one_trial(item, nextitem, is_last)
        run.current = None
        if first_setup is None:
            first_setup = run.logged_setup or reports.setup
        if not any(
            key == SEED_PROPERTY and value == trial.seed
            for key, value in item.user_properties[properties_before:]
        ):
            item.user_properties.append((SEED_PROPERTY, trial.seed))
        call = reports.call
        outcome = trial_outcome(item, call)
        if call is not None:
            progress.trial_finished(item, index + 1, budget, trial.seed, call.outcome)
        if call is not None and outcome is None:
            break
        if call is not None and outcome is not None:
            outcomes.append(outcome == "passed")
            run.records.append(
                TrialRecord(trial, outcome, dict(run.current_metrics), tuple(run.current_faults))
            )
            if outcome == "failed":
                if not hasattr(call, "wasxfail"):
                    run.unexpected_failure = True  # (under xfail(raises=...): not one raised)
                if run.first_failure is None:
                    run.first_failure = (trial, str(call.longrepr), list(call.sections))
                if on_real:
                    run.real_failures.append(_crash_site(call))
        if reports.last:
            break
        if reports.teardown.failed:
            # a trial's teardown failed: stop, and tear down as far as the next item needs
            extra_teardown = run_phase(item, "teardown", nextitem)
            run.duration_s += extra_teardown.duration
            break

    assert reports is not None and first_setup is not None
    played_all = trial_outcome(item, reports.call) is not None
    teardown = reports.teardown
    if extra_teardown is not None and not teardown.failed:
        teardown = extra_teardown
    if not reports.setup.passed or not played_all:
        # a setup or configuration error, a skip or an xfail ends the test as it ended this trial
        verdict = _verdict_dict(item, run, _early_outcome(reports))
        logged = [reports.setup] if reports.call is None else [first_setup, reports.call]
        return _with_verdict(item, run, verdict, logged, teardown)
    run.verdict = _judge(item, run, outcomes, replay_seed)
    swarm_report.annotate(item, run.verdict)  # (drawn faults, assertions over the trials)
    return _with_verdict(
        item, run, run.verdict, [first_setup, _verdict_report(item, run)], teardown
    )


def _with_verdict(
    item: pytest.Item,
    run: TrialRun,
    verdict: dict[str, Any],
    logged: list[pytest.TestReport],
    teardown: pytest.TestReport,
) -> list[pytest.TestReport]:
    """The reports to log for a test whose trials are over: ``logged`` and ``teardown``,
    the last two carrying the verdict (and everything else the test recorded)."""
    run.verdict = verdict
    item.user_properties.append((VERDICT_PROPERTY, verdict))
    logged = [*logged, teardown]
    for report in logged[-2:]:
        report.user_properties = list(item.user_properties)
    _take_whole_duration(logged, run.duration_s)
    if run.first_failure is not None:
        teardown.sections = [
            *_first_failure_sections(run),
            *((name, content) for name, content in teardown.sections if "teardown" in name),
        ]
    return logged


def _take_whole_duration(logged: list[pytest.TestReport], duration_s: float) -> None:
    """Make the logged reports' durations add up to the trials' (JUnit's ``time`` is their
    sum): the report before the teardown takes what the others do not account for."""
    middle = logged[-2] if len(logged) > 1 else logged[0]
    others = sum(report.duration for report in logged if report is not middle)
    middle.duration = max(middle.duration, duration_s - others)
    middle.stop = middle.start + middle.duration


def _first_failure_sections(run: TrialRun) -> list[tuple[str, str]]:
    """The first failing trial's captured output, each section naming the trial."""
    assert run.first_failure is not None
    trial, _, sections = run.first_failure
    return [
        (f"{name} (first failing trial: {trial.describe(run.settings.trials)})", content)
        for name, content in sections
        if name != "edgesim"
    ]


def _reference_run(
    item: pytest.Function, run: TrialRun, nextitem: pytest.Item | None, seed: int
) -> list[pytest.TestReport] | None:
    """Run the test once on its models (the deterministic run the trials are compared with);
    when that run cannot even set up, it is the test's outcome (the reports to log)."""
    run.current = Trial(None, seed)
    reports = _one_trial(
        item, nextitem, lambda setup, call: call is None or is_configuration_error(call)
    )
    run.current = None
    item.stash[_on_real_key] = "real"
    call = reports.call
    if reports.last or call is None:
        verdict = _verdict_dict(item, run, _early_outcome(reports))
        logged = [reports.setup] if call is None else [reports.setup, call]
        return _with_verdict(item, run, verdict, logged, reports.teardown)
    if call.failed:
        run.reference = _crash_site(call)
    return None


def _early_outcome(reports: _TrialReports) -> str:
    """How a trial that ended the test early ended: error, skipped or xfailed (an
    ``xfail(run=False)`` mark, or ``pytest.xfail()`` in the body)."""
    call = reports.call
    if reports.setup.failed or (call is not None and is_configuration_error(call)):
        return "error"
    ended = reports.setup if call is None else call
    if hasattr(ended, "wasxfail"):
        return "xfailed" if ended.skipped else "xpassed"
    return "skipped"


def _judge(
    item: pytest.Item, run: TrialRun, outcomes: list[bool], replay_seed: int | None
) -> dict[str, Any]:
    trial_settings_ = run.settings
    passed, total = sum(outcomes), len(outcomes)
    if _on_real_key in item.stash:
        verdict = _verdict_dict(item, run, "passed" if passed == total else "failed")
        verdict["rule"] = "on-real"
        verdict["fails"] = passed != total
        reference = run.reference
        verdict["model_failure"] = None if reference is None else list(reference)
        verdict["same_failures"] = sum(failure == reference for failure in run.real_failures)
        verdict["real_failures"] = [list(failure) for failure in run.real_failures]
        if run.real_failures:
            verdict["replay"] = replay_command(
                item, f"--edgesim-seed={run.base_seed}", "--edgesim-on-real=1"
            )
        return verdict
    if replay_seed is not None:
        verdict = _verdict_dict(item, run, "passed" if passed == total else "failed")
        verdict["rule"] = "replay"
        verdict["fails"] = passed != total
        return verdict
    if trial_settings_.sequential:
        rate_verdict = stats.sequential_verdict(
            outcomes, trial_settings_.min_pass_rate, trial_settings_.confidence
        )
    else:
        rate_verdict = stats.fixed_verdict(
            passed, total, trial_settings_.min_pass_rate, trial_settings_.confidence
        )
    verdict = _verdict_dict(item, run, rate_verdict.outcome)
    verdict["interval"] = list(rate_verdict.interval)
    if rate_verdict.outcome == stats.REFUTED:
        verdict["fails"] = True
    elif rate_verdict.outcome == stats.UNDECIDED:
        verdict["fails"] = settings.undecided_fails(item.config)
        verdict["undecided_mode"] = settings.undecided_mode(item.config)
    return verdict


def _verdict_dict(item: pytest.Item, run: TrialRun, outcome: str) -> dict[str, Any]:
    """The verdict as plain data: the ``edgesim_verdict`` property and the JSON report's."""
    trial_settings_ = run.settings
    passed = sum(record.outcome == "passed" for record in run.records)
    total = len(run.records)
    sequential = trial_settings_.sequential
    failed = [record.trial for record in run.records if record.outcome == "failed"]
    rate, confidence = trial_settings_.min_pass_rate, trial_settings_.confidence
    if sequential:
        to_demonstrate = stats.sequential_trials_to_demonstrate(rate, confidence)
        more = stats.sequential_more_trials_to_demonstrate(passed, total, rate, confidence)
    else:
        to_demonstrate = stats.trials_to_demonstrate(rate, confidence)
        more = stats.more_trials_to_demonstrate(passed, total, rate, confidence)
    return {
        "rule": "sequential" if sequential else "fixed",
        "outcome": outcome,
        "fails": outcome in ("error", stats.REFUTED),
        "passed": passed,
        "total": total,
        "budget": trial_settings_.trials,
        "rate": passed / total if total else None,
        "confidence": trial_settings_.confidence,
        "min_pass_rate": trial_settings_.min_pass_rate,
        "interval": None,
        "interval_kind": "confidence sequence" if sequential else "wilson",
        #: all-passing trials that demonstrate the rate from scratch, and after these trials
        "trials_to_demonstrate": to_demonstrate,
        "more_trials_to_demonstrate": more,
        "base_seed": run.base_seed,
        "trials": [
            {
                "index": record.trial.index,
                "seed": record.trial.seed,
                "outcome": record.outcome,
                **({"faults": list(record.faults)} if record.faults else {}),
            }
            for record in run.records
        ],
        "fault_trials": sum(1 for record in run.records if record.faults),
        "failed_seeds": [trial.seed for trial in failed],
        "metrics": _metric_summaries(run),
        "replay": trial_replay_command(item, failed[0].seed) if failed else None,
    }


def _metric_summaries(run: TrialRun) -> dict[str, Any]:
    names = sorted({name for record in run.records for name in record.metrics})
    summaries = {}
    for name in names:
        values = [record.metrics[name] for record in run.records if name in record.metrics]
        interval = stats.mean_interval(values, run.settings.confidence)
        summaries[name] = {
            "count": interval.count,
            "mean": interval.mean,
            "stdev": interval.stdev,
            "interval": list(interval.interval) if interval.interval is not None else None,
            "values": values,
        }
    return summaries


def _verdict_report(item: pytest.Function, run: TrialRun) -> pytest.TestReport:
    """The test's one call report: passes or fails with the verdict, through the normal
    ``pytest_runtest_makereport`` so that the failure reads like any other."""
    verdict = run.verdict
    assert verdict is not None
    # the whole verdict is the failure's message, so that JUnit's <failure> holds it all
    message = "\n".join([f"{item.nodeid}: {verdict_line(verdict)}", *failure_lines(item)])

    def judge() -> None:
        if verdict["fails"]:
            pytest.fail(message, pytrace=False)

    clear_sections(item)
    call = pytest.CallInfo.from_call(judge, when="call")
    report: pytest.TestReport = item.ihook.pytest_runtest_makereport(item=item, call=call)
    report.sections = [(name, text) for name, text in report.sections if name != "edgesim"]
    xfailed = xfail_in_force(item)
    if xfailed and verdict["fails"]:
        # pytest's rule, applied to the verdict: a failing test is xfailed, unless a trial
        # failed with an exception the mark's raises= does not name
        if run.unexpected_failure and xfailed.raises is not None:
            report.outcome = "failed"
            if hasattr(report, "wasxfail"):
                del report.wasxfail
        else:
            report.outcome = "skipped"
            report.wasxfail = xfailed.reason
    if report.failed and run.first_failure is not None:
        report.sections.extend(_first_failure_sections(run))
    return report


# --- what the user reads ----------------------------------------------------------------------
def _percent(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def _rate(value: float) -> str:
    return f"{value:.3f}"


def verdict_line(verdict: dict[str, Any]) -> str:
    """One line: passed/total, rate, interval, and what the trials showed."""
    outcome = verdict["outcome"]
    confidence = _percent(verdict["confidence"])
    minimum = f"{verdict['min_pass_rate']:g}"
    if verdict["rule"] == "replay":
        seed = verdict["trials"][0]["seed"] if verdict["trials"] else "?"
        return f"replayed one trial (seed {seed}): {outcome}{swarm_report.verdict_note(verdict)}"
    if verdict["rule"] == "on-real":
        return on_real_line(verdict)
    if outcome in ("error", "skipped", "xfailed", "xpassed"):
        passed, total = verdict["passed"], verdict["total"]
        before = f" ({passed}/{total} passed before it)" if total else ""
        return f"{outcome} in trial {total + 1} of {verdict['budget']}{before}"
    passed, total = verdict["passed"], verdict["total"]
    low, high = verdict["interval"]
    counts = f"{passed}/{total} trials passed (rate {_rate(verdict['rate'])})"
    if verdict["rule"] == "sequential":
        counts = f"sequential, {total} of {verdict['budget']} trials run: " + counts
        interval = f"{confidence} confidence sequence [{_rate(low)}, {_rate(high)}]"
    else:
        interval = f"{confidence} Wilson interval [{_rate(low)}, {_rate(high)}]"
    more = verdict.get("more_trials_to_demonstrate", verdict["trials_to_demonstrate"])
    if more is None:
        how_many = f"a pass rate of {minimum} cannot be demonstrated by finitely many trials"
    else:
        how_many = (
            f"{more} more trial{'s' if more != 1 else ''}, all passing, would demonstrate it: "
            f"trials={total + more}"
        )
    if outcome == stats.DEMONSTRATED:
        what = f"demonstrated: the pass rate is at least {minimum} at {confidence} confidence"
    elif outcome == stats.REFUTED:
        what = f"refuted: the pass rate is below min_pass_rate={minimum} at {confidence} confidence"
    elif outcome == stats.NOT_REFUTED:
        what = f"not refuted, not demonstrated: min_pass_rate={minimum} ({how_many})"
    else:
        what = (
            f"UNDECIDED: the {total} trials neither demonstrate nor refute min_pass_rate="
            f"{minimum} ({how_many}); {_undecided_rule(verdict)}"
        )
    note = swarm_report.verdict_note(verdict)
    return f"{counts}, {interval}: {what}{_faults_note(verdict)}{note}"


def _undecided_rule(verdict: dict[str, Any]) -> str:
    """``the test fails: --edgesim-undecided=auto and CI is set``, and so on."""
    decides = "fails" if verdict["fails"] else "passes"
    mode = verdict.get("undecided_mode", "auto")
    why = f"--edgesim-undecided={mode}"
    if mode == "auto":
        why += " and CI is set" if verdict["fails"] else " and CI is not set"
    return f"an undecided test {decides} here: {why}"


def _faults_note(verdict: dict[str, Any]) -> str:
    """``; faults applied in 3 of 10 trials (first: t=5s restart gw)``, or nothing."""
    faulted = verdict.get("fault_trials", 0)
    if not faulted:
        return ""
    first = next(trial["faults"] for trial in verdict["trials"] if trial.get("faults"))
    return f"; faults applied in {faulted} of {verdict['total']} trials (first: {'; '.join(first)})"


def metric_lines(verdict: dict[str, Any]) -> list[str]:
    """``name: mean ± half-width (95% t interval [low, high], n trials)`` per metric."""
    lines = []
    confidence = _percent(verdict["confidence"])
    for name, summary in sorted(verdict.get("metrics", {}).items()):
        mean, count = summary["mean"], summary["count"]
        if summary["interval"] is None:
            lines.append(f"{name}: {mean:.6g} (1 trial, no interval)")
            continue
        low, high = summary["interval"]
        lines.append(
            f"{name}: {mean:.6g} ± {(high - low) / 2:.3g} ({confidence} t interval "
            f"[{low:.6g}, {high:.6g}], {count} trials)"
        )
    return lines


def _seed_list(seeds: list[int], config: pytest.Config) -> str:
    shown = ", ".join(map(str, seeds[:SEEDS_SHOWN]))
    if len(seeds) > SEEDS_SHOWN:
        where = (
            f"every seed is in the JSON report {settings.report_path(config)}"
            if settings.report_path(config) is not None
            else "--edgesim-report=PATH writes every seed to a JSON report"
        )
        shown += f", ... ({len(seeds)} in all; {where})"
    return shown


def failure_lines(item: pytest.Item) -> list[str]:
    """The ``edgesim`` section of a failing statistical test's report."""
    run = item.stash.get(_run_key, None)
    if run is None:
        return []
    verdict = run.verdict
    if verdict is None:  # a trial's setup or teardown failed
        trial = run.current
        if trial is None:
            return []
        if not scenario_loaded(item):  # (another seed would not find the file either)
            return [trial.describe(run.settings.trials)]
        return [
            trial.describe(run.settings.trials),
            f"replay: {trial_replay_command(item, trial.seed)}",
        ]
    lines = []
    if verdict["base_seed"] is not None:
        lines.append(
            f"trial seeds derive from base seed {verdict['base_seed']}: "
            + _seed_list([trial["seed"] for trial in verdict["trials"]], item.config)
        )
    if verdict["failed_seeds"]:
        lines.append(
            f"failing trials' seeds ({len(verdict['failed_seeds'])}): "
            + _seed_list(verdict["failed_seeds"], item.config)
        )
    lines += metric_lines(verdict)
    lines += swarm_report.failure_lines(verdict)
    if verdict["rule"] == "on-real":
        failures = Counter(tuple(failure) for failure in verdict["real_failures"])
        lines += [
            f"{count} trial(s) failed at {where} ({message})"
            for (where, message), count in failures.most_common()
        ]
    if verdict["replay"]:
        lines.append(f"replay the first failing trial: {verdict['replay']}")
    lines += [f"counterexample: {path} (edgesim run it)" for path in artifacts.written(item)]
    if run.first_failure is not None:
        trial, text, _ = run.first_failure
        lines += ["", f"first failing trial ({trial.describe(run.settings.trials)}):", text]
    return lines


def on_real_line(verdict: dict[str, Any]) -> str:
    """What ``--edgesim-on-real`` found: the models' run against the real trials."""
    seed = verdict["base_seed"]
    total, failed = verdict["total"], verdict["total"] - verdict["passed"]
    reference = verdict.get("model_failure")
    model = (
        "the models passed"
        if reference is None
        else f"the models failed at {reference[0]} ({reference[1]})"
    )
    head = f"on real components with seed {seed}, {failed} of {total} trials failed; {model}"
    if failed == 0:
        if reference is None:
            return head
        bound = stats.wilson_interval(0, total, DEFAULT_CONFIDENCE)[1]
        return (
            f"{head}: the real system did not fail that way in {total} trials (its rate of "
            f"such failures is below {bound:.3f} at {_percent(DEFAULT_CONFIDENCE)} confidence)"
        )
    same = verdict["same_failures"]
    if reference is None:
        return f"{head}: the real system fails where the models pass"
    if same == failed:
        return f"{head}: every failing trial failed the same way"
    return f"{head}: {same} of the {failed} failing trials failed the same way"


def _verdict_of(report: pytest.TestReport) -> dict[str, Any] | None:
    verdicts = properties(report.user_properties, VERDICT_PROPERTY)
    return verdicts[-1] if verdicts else None


def report_status(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """``pytest_report_teststatus``: a passing undecided test is counted as *undecided*."""
    if report.when != "call" or not report.passed or hasattr(report, "wasxfail"):
        return None
    verdict = _verdict_of(report)
    if verdict is not None and verdict["outcome"] == stats.UNDECIDED:
        return UNDECIDED_STATUS
    return None


def summary_lines(terminalreporter: Any) -> list[str]:
    """The statistical verdicts in the edgesim summary: one line per test, then metrics."""
    report = terminalreporter.config.stash[session_report_key]
    records = [
        record
        for nodeid, record in sorted(report.tests.items())
        if record.tier == "statistical" and isinstance(record.verdict, dict)
    ]
    if not records:
        return []
    lines = ["statistical verdicts:"]
    for record in records:
        verdict = record.verdict
        lines.append(f"  {record.nodeid}: {verdict_line(verdict)}")
        if verdict["failed_seeds"]:
            seeds = _seed_list(verdict["failed_seeds"], terminalreporter.config)
            lines.append(f"    failing trials' seeds: {seeds}")
        lines += [f"    {line}" for line in metric_lines(verdict)]
        if verdict["replay"]:
            lines.append(f"    replay: {verdict['replay']}")
    return lines
