"""What CI gets from a run: replay commands that work from anywhere, counterexample files,
JUnit XML, crashed xdist workers' tests, and baselines."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SCENARIO_DIR_SUITE = """
import pytest

@pytest.mark.parametrize("label", ["a b's"])
@pytest.mark.edgesim("small.yaml")
def test_deterministic(edge_scenario, label):
    edge_scenario.run()
    assert False, "on purpose"

@pytest.mark.statistical(trials=6)
@pytest.mark.edgesim("small.yaml")
def test_statistical(edge_scenario, edgesim_seed):
    edge_scenario.run()
    print(f"trial with seed {edgesim_seed}")
    assert edgesim_seed % 2 == 0
"""


def _command(result: pytest.RunResult, prefix: str) -> str:
    (command,) = [line[len(prefix) :] for line in result.outlines if line.startswith(prefix)]
    return command


def _run_elsewhere(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a printed ``pytest ...`` command, as a user would paste it, from ``cwd``."""
    arguments = shlex.split(command)
    assert arguments[0] == "pytest"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *arguments[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def _edgesim(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_edgesim.cli", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def scenario_dir_suite(pytester: pytest.Pytester, small_scenario_text: str) -> Path:
    """The suite above, its scenario in ``scenarios/`` (found through the scenario dir)."""
    pytester.makepyfile(SCENARIO_DIR_SUITE)
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "small.yaml").write_text(small_scenario_text)
    elsewhere = pytester.path / "elsewhere"
    elsewhere.mkdir()
    return elsewhere


# --- replay commands --------------------------------------------------------------------------
def test_replay_commands_reproduce_from_another_directory(
    pytester: pytest.Pytester, scenario_dir_suite: Path
) -> None:
    result = pytester.runpytest("--edgesim-scenario-dir=scenarios")
    result.assert_outcomes(failed=2)
    deterministic = _command(result, "replay: ")
    statistical = _command(result, "replay the first failing trial: ")
    scenario_dir = f"--edgesim-scenario-dir={pytester.path / 'scenarios'}"
    for command in (deterministic, statistical):
        arguments = shlex.split(command)
        assert arguments[1].startswith(str(pytester.path) + "/")  # an absolute node id
        assert scenario_dir in arguments
        assert arguments[-1] == f"--rootdir={pytester.path}"
    # one form for both tiers: only the seed option differs
    assert shlex.split(deterministic)[2].startswith("--edgesim-seed=")
    assert shlex.split(statistical)[2].startswith("--edgesim-trial-seed=")
    assert shlex.split(deterministic)[1].endswith("::test_deterministic[a b's]")

    again = _run_elsewhere(deterministic, scenario_dir_suite)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "1 failed" in again.stdout and "on purpose" in again.stdout
    assert "seed: 11" in again.stdout

    trial_seed = shlex.split(statistical)[2].split("=")[1]
    again = _run_elsewhere(statistical, scenario_dir_suite)
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"replayed one trial (seed {trial_seed}): failed" in again.stdout
    assert f"trial with seed {trial_seed}" in again.stdout


def test_replay_commands_repeat_settings_from_an_ini_file_given_with_c(
    pytester: pytest.Pytester, scenario_dir_suite: Path
) -> None:
    (pytester.path / "ci.ini").write_text("[pytest]\nedgesim_scenario_dir = scenarios\n")
    result = pytester.runpytest("-c", "ci.ini", "--edgesim-docker=off")
    result.assert_outcomes(failed=2)
    command = _command(result, "replay: ")
    arguments = shlex.split(command)
    assert f"--edgesim-scenario-dir={pytester.path / 'scenarios'}" in arguments
    assert f"--config-file={pytester.path / 'ci.ini'}" in arguments
    assert "--edgesim-docker=off" in arguments
    assert not any(argument.startswith("--rootdir") for argument in arguments)  # (the ini's)
    again = _run_elsewhere(command, scenario_dir_suite)
    assert again.returncode == 1 and "1 failed" in again.stdout, again.stdout + again.stderr


def test_no_replay_command_for_a_missing_scenario_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim("nosuch.yaml")
        def test_deterministic(edge_scenario):
            edge_scenario.run()

        @pytest.mark.statistical(trials=3)
        @pytest.mark.edgesim("nosuch.yaml")
        def test_statistical(edge_scenario):
            edge_scenario.run()
        """
    )
    result = pytester.runpytest("--edgesim-artifacts=artifacts")
    result.assert_outcomes(errors=2)
    output = result.stdout.str()
    assert output.count("scenario file 'nosuch.yaml' not found") == 2
    for needless in ("replay:", "--edgesim-seed", "--edgesim-trial-seed", "--edgesim-on-real"):
        assert needless not in output
    assert not (pytester.path / "artifacts").exists()


# --- counterexample files ---------------------------------------------------------------------
def test_a_failing_trials_scenario_is_written_and_edgesim_runs_it(
    pytester: pytest.Pytester, scenario_dir_suite: Path
) -> None:
    result = pytester.runpytest(
        "--edgesim-scenario-dir=scenarios", "--edgesim-artifacts=out", "--edgesim-report=r.json"
    )
    result.assert_outcomes(failed=2)
    report = json.loads((pytester.path / "r.json").read_text())
    tests = {test["nodeid"].split("::")[1]: test for test in report["tests"]}
    verdict = tests["test_statistical"]["verdict"]
    failed_seed = verdict["failed_seeds"][0]
    (path,) = (pytester.path / "out").glob("*test_statistical*.yaml")
    result.stdout.fnmatch_lines([f"counterexample: {path} (edgesim run it)"])
    text = path.read_text()
    assert f"seed {failed_seed})" in text.splitlines()[0]
    assert f"trial {1 + [t['seed'] for t in verdict['trials']].index(failed_seed)} of 6" in text

    run = _edgesim("run", str(path), "--json", str(pytester.path / "run.json"))
    assert run.returncode == 0, run.stdout + run.stderr
    digest = json.loads((pytester.path / "run.json").read_text())["trace_digest"]
    (failing_run,) = [r for r in tests["test_statistical"]["runs"] if r["seed"] == failed_seed]
    assert digest == failing_run["trace_digest"]  # the same run, from the file alone

    (path,) = (pytester.path / "out").glob("*test_deterministic*.yaml")
    assert _edgesim("run", str(path)).returncode == 0


def test_a_hypothesis_counterexample_is_written_and_edgesim_runs_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from hypothesis import given, settings
        from pytest_edgesim import simulate
        from pytest_edgesim.strategies import seeds, small_scenarios

        @settings(max_examples=20, derandomize=True, database=None)
        @given(scenario=small_scenarios(partitions=False), seed=seeds())
        def test_few_sensors(scenario, seed):
            result = simulate(scenario, seed=seed)
            assert len(scenario.devices) < 2
        """
    )
    result = pytester.runpytest("--edgesim-artifacts=out")
    result.assert_outcomes(failed=1)
    (path,) = (pytester.path / "out").glob("*.yaml")
    assert "test_few_sensors" in path.name
    text = path.read_text()
    assert text.startswith("# counterexample of test_a_hypothesis_counterexample")
    run = _edgesim("run", str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    from pytest_edgesim.core.scenario import Scenario

    assert len(Scenario.from_yaml(path).devices) == 2  # the shrunk example


# --- JUnit XML ---------------------------------------------------------------------------------
JUNIT_SUITE = """
import time
import pytest

@pytest.mark.statistical(trials=6)
@pytest.mark.edgesim("big.yaml")
def test_odd_seeds_fail(edge_scenario, edgesim_seed):
    edge_scenario.run()
    time.sleep(0.05)
    print(f"output of the trial with seed {edgesim_seed}")
    assert edgesim_seed % 2 == 0, f"odd seed {edgesim_seed}"

@pytest.mark.statistical(trials=4)
@pytest.mark.edgesim("big.yaml")
def test_passes(edge_scenario, record_property):
    record_property("mine", "kept")
    edge_scenario.run()
"""


def _junit(pytester: pytest.Pytester, sensors: int, small_scenario_text: str) -> Path:
    pytester.makefile(".yaml", big=small_scenario_text.replace("count: 2", f"count: {sensors}"))
    pytester.makepyfile(test_junit=JUNIT_SUITE)
    name = f"junit-{sensors}.xml"
    result = pytester.runpytest(f"--junitxml={name}", "-o", "junit_logging=all")
    result.assert_outcomes(passed=1, failed=1)
    return pytester.path / name


def test_junit_holds_a_compact_summary_and_the_failing_trial(
    pytester: pytest.Pytester, small_scenario_text: str
) -> None:
    path = _junit(pytester, 2, small_scenario_text)
    cases = {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}
    failing, passing = cases["test_odd_seeds_fail"], cases["test_passes"]

    properties = {p.get("name"): p.get("value") for p in failing.iter("property")}
    assert list(properties) == ["edgesim"]
    summary = properties["edgesim"]
    assert summary.startswith("statistical; refuted; ")
    assert "/6 trials passed" in summary and "95% wilson interval [" in summary
    assert "base seed 11" in summary and "first failing trial seed " in summary
    first_failing = int(summary.rsplit("first failing trial seed ", 1)[1].split(";")[0])

    failure = failing.find("failure")
    assert failure is not None
    assert "refuted" in failure.get("message", "")
    text = failure.text or ""
    for part in ("/6 trials passed", "failing trials' seeds", "replay the first failing trial"):
        assert part in text
    assert f"odd seed {first_failing}" in text  # the first failing trial's traceback
    system_out = "".join(out.text or "" for out in failing.iter("system-out"))
    assert f"output of the trial with seed {first_failing}" in system_out
    assert system_out.count("output of the trial with seed") == 1  # not the last trial's
    assert float(failing.get("time", "0")) >= 6 * 0.05  # every trial, not the verdict alone

    properties = {p.get("name"): p.get("value") for p in passing.iter("property")}
    assert properties["mine"] == "kept"
    assert properties["edgesim"].startswith("statistical; ")


def test_junit_does_not_grow_with_the_scenario(
    pytester: pytest.Pytester, small_scenario_text: str
) -> None:
    small = _junit(pytester, 2, small_scenario_text).stat().st_size
    large = _junit(pytester, 200, small_scenario_text).stat().st_size
    assert abs(large - small) < 200, (small, large)  # (paths and seeds; no per-run metrics)


# --- crashed xdist workers --------------------------------------------------------------------
def test_a_crashed_workers_tests_are_failures_in_the_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        import signal
        import pytest

        def test_deterministic_crash(edge_scenario):
            edge_scenario.run("1s")
            os.kill(os.getpid(), signal.SIGKILL)

        @pytest.mark.statistical(trials=5)
        def test_statistical_crash(edge_scenario):
            edge_scenario.run("1s")
            os.kill(os.getpid(), signal.SIGKILL)  # in its first trial

        def test_fine(edge_scenario):
            edge_scenario.run("1s")
        """
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "--edgesim-report=report.json", "--junitxml=junit.xml"
    )
    result.assert_outcomes(passed=1, failed=2)
    report = json.loads((pytester.path / "report.json").read_text())
    tests = {test["nodeid"].split("::")[1]: test for test in report["tests"]}
    assert set(tests) == {"test_deterministic_crash", "test_statistical_crash", "test_fine"}
    for name in ("test_deterministic_crash", "test_statistical_crash"):
        assert tests[name]["outcome"] == "failed"
        assert f"died while running {tests[name]['nodeid']}" in tests[name]["crash"]
    assert tests["test_statistical_crash"]["tier"] == "statistical"
    assert "crash" not in tests["test_fine"]
    cases = {
        c.get("name"): c for c in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    }
    for name in ("test_deterministic_crash", "test_statistical_crash"):
        failure = cases[name].find("failure")
        assert failure is not None, ET.tostring(cases[name])
        assert "died while running" in failure.get("message", "")
    assert cases["test_fine"].find("failure") is None
    properties = [p.get("name") for p in cases["test_fine"].iter("property")]
    assert properties == ["edgesim"]  # (from a worker too: the record stays on the controller)


# --- baselines ---------------------------------------------------------------------------------
BASELINE_SUITE = """
import pathlib
import pytest

LATENCY = pathlib.Path(__file__).with_name("latency.txt").read_text().strip()

@pytest.mark.edgesim("small.yaml", overrides={"network.default.latency": LATENCY})
def test_deterministic(edge_scenario):
    edge_scenario.run()

@pytest.mark.statistical(trials=4)
@pytest.mark.edgesim("small.yaml", overrides={"network.default.latency": LATENCY})
def test_statistical(edge_scenario):
    edge_scenario.run()
"""


def _baseline_session(pytester: pytest.Pytester, latency: str, *args: str) -> pytest.RunResult:
    (pytester.path / "latency.txt").write_text(latency)
    return pytester.runpytest(*args)


def test_a_baseline_is_saved_and_a_regression_fails_the_session(
    pytester: pytest.Pytester, small_scenario: str
) -> None:
    pytester.makepyfile(BASELINE_SUITE)
    saved = _baseline_session(pytester, "2ms", "--edgesim-save=main")
    saved.assert_outcomes(passed=2)
    path = pytester.path / ".edgesim" / "baselines" / "main.json"
    saved.stdout.fnmatch_lines([f"edgesim: saved baseline main to {path}"])
    baseline = json.loads(path.read_text())
    assert baseline["version"] == 1 and baseline["name"] == "main"
    tests = {nodeid.split("::")[1]: entry for nodeid, entry in baseline["tests"].items()}
    statistical = tests["test_statistical"]
    assert statistical["trials"] == 4 and statistical["runs"] == 4
    assert statistical["pass_rate"] == 1.0
    assert set(statistical["flows"]) == {"cloud", "gw"}
    assert set(statistical["flows"]["cloud"]) == {"delivery_ratio", "p50_ms", "p95_ms", "p99_ms"}
    assert tests["test_deterministic"]["trials"] == 1

    same = _baseline_session(
        pytester, "2ms", "--edgesim-compare=main", "--edgesim-compare-fail=p95_ms:10%"
    )
    assert same.ret == 0
    same.stdout.fnmatch_lines(
        [
            "*= edgesim: baseline comparison =*",
            "baseline main (*)*",
            "18 unchanged values not shown (-v)",
        ]
    )
    assert "REGRESSION" not in same.stdout.str()

    slower = _baseline_session(
        pytester,
        "5ms",
        "--edgesim-compare=main",
        "--edgesim-compare-fail=p95_ms:10%",
        "--edgesim-compare-fail=delivery_ratio:0.5",
        "--edgesim-report=report.json",
    )
    slower.assert_outcomes(passed=2)
    assert slower.ret == pytest.ExitCode.TESTS_FAILED
    slower.stdout.fnmatch_lines(
        [
            "*= edgesim: baseline comparison (* regressions) =*",
            "test * metric * baseline * now * change",
            "*::test_deterministic * p95_ms [[]gw] * 4.00 * 10.00 * +6.00 (+150.0%)  REGRESSED",
            "REGRESSION *::test_deterministic: p95_ms of flow gw 4.00 -> 10.00 (+6.00, +150.0%), "
            "beyond p95_ms:10%",
            "4 regression(s) beyond --edgesim-compare-fail: the session fails",
        ]
    )
    comparison = json.loads((pytester.path / "report.json").read_text())["comparison"]
    assert comparison["baseline"] == "main" and comparison["file"] == str(path)
    assert comparison["thresholds"] == ["p95_ms:10%", "delivery_ratio:0.5"]
    rows = [row for row in comparison["rows"] if row["metric"] == "p95_ms"]
    assert rows and all(row["regressed"] and row["current"] > row["baseline"] for row in rows)
    assert comparison["regressions"] == sum(row["regressed"] for row in comparison["rows"])
    assert not any(row["regressed"] for row in comparison["rows"] if row["metric"] != "p95_ms")


def test_baselines_are_the_same_under_xdist(pytester: pytest.Pytester, small_scenario: str) -> None:
    pytester.makepyfile(BASELINE_SUITE)
    (pytester.path / "latency.txt").write_text("2ms")
    pytester.runpytest_subprocess("--edgesim-save=serial").assert_outcomes(passed=2)
    pytester.runpytest_subprocess("-n", "2", "--edgesim-save=xdist").assert_outcomes(passed=2)
    directory = pytester.path / ".edgesim" / "baselines"
    serial = json.loads((directory / "serial.json").read_text())
    xdist = json.loads((directory / "xdist.json").read_text())
    assert serial["tests"] == xdist["tests"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--edgesim-compare=nosuch"], "*--edgesim-compare nosuch: no baseline */nosuch.json*"),
        (["--edgesim-compare-fail=p95_ms:10%"], "*--edgesim-compare-fail needs --edgesim-compare*"),
        (["--edgesim-save=../x"], "*--edgesim-save: expected a baseline name*"),
    ],
)
def test_baseline_options_are_checked(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_bad_threshold_is_named(pytester: pytest.Pytester) -> None:
    directory = pytester.path / "baselines"
    directory.mkdir()
    (directory / "b.json").write_text(json.dumps({"version": 1, "tests": {}}))
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(
        "--edgesim-baseline-dir=baselines", "--edgesim-compare=b", "--edgesim-compare-fail=p97:1"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edgesim-compare-fail: expected METRIC:AMOUNT*'p97:1'*"])


def test_thresholds_and_the_comparisons_shape() -> None:
    from pytest_edgesim.pytest_plugin.baselines import Threshold, compare
    from pytest_edgesim.pytest_plugin.session_report import RecordedTest, SessionReport

    assert Threshold("p95_ms", 10, relative=True).exceeded(20.0, 2.5)
    assert not Threshold("p95_ms", 10, relative=True).exceeded(20.0, 2.0)
    assert Threshold("p95_ms", 0, relative=True).exceeded(0.0, 0.1)  # from 0, any is beyond
    assert Threshold("delivery_ratio", 0.01, relative=False).exceeded(0.9, 0.02)
    assert not Threshold("delivery_ratio", 0.01, relative=False).exceeded(0.9, 0.005)

    def run(ratio: float, p95: float) -> dict:
        flow = {"delivery_ratio": ratio, "p50_ms": 1.0, "p95_ms": p95, "p99_ms": None}
        return {"flows": {"cloud": flow}}

    report = SessionReport(None)
    report.tests["t::a"] = RecordedTest("t::a", "deterministic", "passed", runs=[run(0.9, 30)])
    report.tests["t::new"] = RecordedTest("t::new", "deterministic", "passed")
    saved = {
        "tests": {
            "t::a": {"pass_rate": 1.0, "flows": {"cloud": {"delivery_ratio": 1.0, "p95_ms": 20}}},
            "t::gone": {"pass_rate": 1.0, "flows": {}},
        }
    }
    rules = [Threshold("delivery_ratio", 5, relative=True), Threshold("p95_ms", 20, False)]
    comparison = compare(report, saved, "b", Path("b.json"), rules)
    assert comparison["new"] == ["t::new"] and comparison["missing"] == ["t::gone"]
    rows = {(row["metric"], row["flow"]): row for row in comparison["rows"]}
    assert set(rows) == {("pass_rate", None), ("delivery_ratio", "cloud"), ("p95_ms", "cloud")}
    ratio = rows[("delivery_ratio", "cloud")]
    assert ratio["worse"] and ratio["regressed"] and ratio["thresholds"] == ["delivery_ratio:5%"]
    assert ratio["change"] == pytest.approx(-0.1) and ratio["change_ratio"] == pytest.approx(-0.1)
    latency = rows[("p95_ms", "cloud")]
    assert latency["worse"] and not latency["regressed"]  # +10 ms, within 20 ms
    assert comparison["regressions"] == 1
