"""The statistical tier: trials, verdicts, sequential stopping, metrics, replay, xdist.

Test bodies are deterministic: they fail on the parity of the trial seed (fixed by the base
seed, 0 for the built-in scenario) or on a trial counter, so every outcome here is fixed.
"""

from __future__ import annotations

import json
import re

import pytest

from pytest_edgesim.core import stats
from pytest_edgesim.pytest_plugin.trials import trial_seed

#: trial seeds under base seed 0 that are odd, among the first 40: the "half" body fails there
ODD_TRIALS_OF_40 = sum(trial_seed(0, index) % 2 for index in range(40))


def verdict_of(pytester: pytest.Pytester, path: str, name: str) -> dict:
    report = json.loads((pytester.path / path).read_text())
    (test,) = [test for test in report["tests"] if test["nodeid"].endswith(f"::{name}")]
    return test["verdict"]


def test_all_trials_pass_and_half_failing_fails(pytester: pytest.Pytester) -> None:
    assert 12 <= ODD_TRIALS_OF_40 <= 28  # "about half": the fixture below relies on it
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=20)
        def test_always(edgesim_seed):
            pass

        @pytest.mark.statistical(trials=40)
        def test_half(edgesim_seed):
            assert edgesim_seed % 2 == 0, "odd seed"
        """
    )
    result = pytester.runpytest("--edgesim-report=report.json", "-v")
    result.assert_outcomes(passed=1, failed=1)
    passed = 40 - ODD_TRIALS_OF_40
    low, high = stats.wilson_interval(passed, 40)
    result.stdout.fnmatch_lines(
        [
            f"*::test_half: {passed}/40 trials passed (rate {passed / 40:.3f}), 95% Wilson "
            f"interval [[]{low:.3f}, {high:.3f}]: refuted: the pass rate is below "
            "min_pass_rate=0.95 at 95% confidence",
            f"failing trials' seeds ({ODD_TRIALS_OF_40}): *",
            "replay the first failing trial: pytest *::test_half --edgesim-trial-seed=*",
            "first failing trial (trial * of 40, seed *):",
            "*AssertionError: odd seed*",
        ]
    )
    # the summary (-v): one line per statistical test
    result.stdout.fnmatch_lines(
        [
            "statistical verdicts:",
            "  *::test_always: 20/20 trials passed (rate 1.000), 95% Wilson interval "
            "[[]0.839, 1.000]: not refuted, not demonstrated: min_pass_rate=0.95 (53 more "
            "trials, all passing, would demonstrate it: trials=73)",
        ]
    )
    always = verdict_of(pytester, "report.json", "test_always")
    assert always["outcome"] == "not refuted" and not always["fails"]
    assert [trial["index"] for trial in always["trials"]] == list(range(20))
    seeds = [trial["seed"] for trial in always["trials"]]
    assert seeds == [trial_seed(0, index) for index in range(20)]
    assert len(set(seeds)) == 20
    half = verdict_of(pytester, "report.json", "test_half")
    assert half["outcome"] == "refuted" and half["fails"]
    odd = [trial_seed(0, index) for index in range(40) if trial_seed(0, index) % 2]
    assert half["failed_seeds"] == odd


def test_enough_passing_trials_demonstrate_the_rate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=35, min_pass_rate=0.9)
        def test_demonstrated():
            pass
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    assert stats.trials_to_demonstrate(0.9) == 35
    result.stdout.fnmatch_lines(
        ["*35/35 trials passed*: demonstrated: the pass rate is at least 0.9 at 95% confidence"]
    )


def test_min_pass_rate_one_fails_on_a_single_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        calls = []

        @pytest.mark.statistical(trials=10, min_pass_rate=1.0)
        def test_one_failure():
            calls.append(1)
            assert len(calls) != 7

        @pytest.mark.statistical(trials=10, min_pass_rate=1.0)
        def test_no_failure():
            pass
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_one_failure: 9/10 trials passed*: refuted: the pass rate is below "
            "min_pass_rate=1 at 95% confidence",
            "*::test_no_failure: 10/10 trials passed*not refuted, not demonstrated: "
            "min_pass_rate=1 (a pass rate of 1 cannot be demonstrated by finitely many trials)",
        ]
    )


def test_sequential_refutes_early(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=40, sequential=True)
        def test_half(edgesim_seed):
            assert edgesim_seed % 2 == 0
        """
    )
    result = pytester.runpytest("--edgesim-report=report.json")
    result.assert_outcomes(failed=1)
    verdict = verdict_of(pytester, "report.json", "test_half")
    assert verdict["outcome"] == "refuted" and verdict["rule"] == "sequential"
    assert verdict["total"] < 40 and verdict["budget"] == 40
    # the fixed-N rule on all 40 trials refutes too
    assert stats.fixed_verdict(40 - ODD_TRIALS_OF_40, 40, 0.95).outcome == "refuted"
    result.stdout.fnmatch_lines(
        [
            f"*::test_half: sequential, {verdict['total']} of 40 trials run: "
            f"{verdict['passed']}/{verdict['total']} trials passed*95% confidence sequence*"
            "refuted*"
        ]
    )


UNDECIDED = """
import pytest

@pytest.mark.statistical(trials=10, sequential=True)
def test_too_few_trials():
    pass
"""


@pytest.mark.parametrize(
    ("args", "ci", "fails"),
    [
        (["--edgesim-undecided=pass"], None, False),
        (["--edgesim-undecided=fail"], None, True),
        ([], None, False),
        ([], "true", True),
        (["--edgesim-undecided=pass"], "true", False),
    ],
)
def test_undecided_is_its_own_outcome(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    ci: str | None,
    fails: bool,
) -> None:
    """10 all-passing trials neither demonstrate 0.95 (81 would) nor refute it."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(UNDECIDED)
    result = pytester.runpytest("-v", *args)
    line = (
        "*::test_too_few_trials: sequential, 10 of 10 trials run: 10/10 trials passed*: "
        "UNDECIDED: the 10 trials neither demonstrate nor refute min_pass_rate=0.95 "
        "(71 more trials, all passing, would demonstrate it: trials=81); "
        f"an undecided test {'fails' if fails else 'passes'} here: --edgesim-undecided=*"
    )
    result.stdout.fnmatch_lines([line])
    if fails:
        result.assert_outcomes(failed=1)
        assert result.ret == pytest.ExitCode.TESTS_FAILED
    else:
        assert result.parseoutcomes() == {"undecided": 1}
        result.stdout.fnmatch_lines(["*::test_too_few_trials UNDECIDED*"])
        result.stdout.fnmatch_lines(["tiers: statistical 1 (1 undecided)"])
        assert result.ret == pytest.ExitCode.OK


def test_each_trial_has_fresh_function_fixtures(
    pytester: pytest.Pytester, small_scenario: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        fresh_objects, module_setups, scenarios = [], [], []

        @pytest.fixture(scope="module")
        def shared():
            module_setups.append(1)
            return object()

        @pytest.fixture
        def fresh():
            value = {{"uses": 0, "closed": False}}
            fresh_objects.append(value)
            yield value
            value["closed"] = True

        @pytest.mark.statistical(trials=5)
        @pytest.mark.edgesim({small_scenario!r})
        def test_trials(fresh, shared, edge_scenario, edgesim_seed):
            fresh["uses"] += 1
            assert fresh["uses"] == 1
            assert not edge_scenario.runs
            assert edge_scenario.seed == edgesim_seed
            edge_scenario.run("1s")
            scenarios.append(edge_scenario)

        def test_afterwards():
            assert len(fresh_objects) == 5
            assert all(value["closed"] for value in fresh_objects)
            assert len(module_setups) == 1
            assert len(set(map(id, scenarios))) == 5
            assert len({{scenario.seed for scenario in scenarios}}) == 5
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_trial_seeds_follow_the_base_seed(pytester: pytest.Pytester, small_scenario: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.statistical(trials=4)
        @pytest.mark.edgesim({small_scenario!r})
        def test_scenario_seed(edge_scenario):
            edge_scenario.run()

        @pytest.mark.statistical(trials=4)
        @pytest.mark.edgesim({small_scenario!r}, seed=5)
        def test_marker_seed(edge_scenario):
            edge_scenario.run()
        """
    )
    pytester.runpytest("--edgesim-report=first.json").assert_outcomes(passed=2)
    pytester.runpytest("--edgesim-report=second.json").assert_outcomes(passed=2)
    assert (pytester.path / "first.json").read_text() == (pytester.path / "second.json").read_text()
    scenario = verdict_of(pytester, "first.json", "test_scenario_seed")
    assert scenario["base_seed"] == 11  # small.yaml's seed
    assert [trial["seed"] for trial in scenario["trials"]] == [trial_seed(11, i) for i in range(4)]
    marker = verdict_of(pytester, "first.json", "test_marker_seed")
    assert [trial["seed"] for trial in marker["trials"]] == [trial_seed(5, i) for i in range(4)]
    report = json.loads((pytester.path / "first.json").read_text())
    runs = report["tests"][0]["runs"]
    assert [run["seed"] for run in runs] == [trial["seed"] for trial in marker["trials"]]

    pytester.runpytest("--edgesim-report=session.json", "--edgesim-seed=3").assert_outcomes(
        passed=2
    )
    for name in ("test_scenario_seed", "test_marker_seed"):
        verdict = verdict_of(pytester, "session.json", name)
        assert verdict["base_seed"] == (5 if name == "test_marker_seed" else 3)


def test_the_replay_command_reproduces_one_trial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=12)
        def test_half(edgesim_seed):
            print(f"running with seed {edgesim_seed}")
            assert edgesim_seed % 2 == 0
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    (command,) = [
        line.split(": ", 1)[1]
        for line in result.outlines
        if line.startswith("replay the first failing trial: ")
    ]
    pattern = r"pytest \S+::test_half --edgesim-trial-seed=(\d+) --rootdir=\S+"
    seed = int(re.fullmatch(pattern, command)[1])
    first_odd = next(trial_seed(0, i) for i in range(12) if trial_seed(0, i) % 2)
    assert seed == first_odd

    replay = pytester.runpytest(
        "test_the_replay_command_reproduces_one_trial.py::test_half",
        f"--edgesim-trial-seed={seed}",
        "--edgesim-report=replay.json",
    )
    replay.assert_outcomes(failed=1)
    replay.stdout.fnmatch_lines(
        [f"*replayed one trial (seed {seed}): failed", f"running with seed {seed}"]
    )
    verdict = verdict_of(pytester, "replay.json", "test_half")
    assert verdict["rule"] == "replay" and verdict["total"] == 1

    even = next(trial_seed(0, i) for i in range(12) if not trial_seed(0, i) % 2)
    pytester.runpytest(f"--edgesim-trial-seed={even}").assert_outcomes(passed=1)


def test_per_trial_metrics_get_a_t_interval(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        values = iter([1.0, 2.0, 3.0, 4.0, 5.0])

        @pytest.mark.statistical(trials=5)
        def test_metric(edge_scenario):
            edge_scenario.record("latency_ms", next(values))
        """
    )
    result = pytester.runpytest("--edgesim-summary", "--edgesim-report=report.json")
    result.assert_outcomes(passed=1)
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445: half width 1.963
    result.stdout.fnmatch_lines(
        ["    latency_ms: 3 ± 1.96 (95% t interval [[]1.03676, 4.96324], 5 trials)"]
    )
    metric = verdict_of(pytester, "report.json", "test_metric")["metrics"]["latency_ms"]
    assert metric["values"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert metric["interval"] == pytest.approx([1.036757, 4.963243], abs=1e-6)


def test_setup_errors_and_skips_end_the_trials(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        setups = []

        @pytest.fixture
        def breaks_third_time():
            setups.append(1)
            if len(setups) == 3:
                raise RuntimeError("third setup breaks")

        @pytest.mark.statistical(trials=10)
        def test_setup_error(breaks_third_time, edgesim_seed):
            pass

        @pytest.mark.statistical(trials=10)
        def test_skips():
            pytest.skip("not today")
        """
    )
    result = pytester.runpytest("--edgesim-report=report.json")
    result.assert_outcomes(errors=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*RuntimeError: third setup breaks",
            "trial 3 of 10, seed *",
            "replay: pytest *::test_setup_error --edgesim-trial-seed=*",
        ]
    )
    verdict = verdict_of(pytester, "report.json", "test_setup_error")
    assert verdict["outcome"] == "error" and verdict["total"] == 2


def test_edgesim_trials_overrides_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=40)
        def test_trials():
            pass
        """
    )
    result = pytester.runpytest("--edgesim-trials=3", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*::test_trials: 3/3 trials passed*"])


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ("trials=0", "statistical(trials=0): expected an integer >= 1"),
        ("confidence=2", "statistical(confidence=2): expected a number between 0 and 1*"),
        ("min_pass_rate=-1", "statistical(min_pass_rate=-1): expected a number above 0*"),
        ("trails=5", "statistical(): unknown argument trails=5; it takes trials=, confidence=*"),
        ("sequential='yes'", "statistical(sequential='yes'): expected True or False"),
        ("30", "statistical() takes keyword arguments only*"),
    ],
)
def test_bad_marker_arguments_are_one_collection_error(
    pytester: pytest.Pytester, arguments: str, problem: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.statistical({arguments})
        def test_bad():
            pass

        def test_fine():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*::test_bad: invalid edgesim markers:", f"  - {problem}", "*1 error*"]
    )


def test_xdist_gives_the_same_report(pytester: pytest.Pytester, small_scenario: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.statistical(trials=6)
        @pytest.mark.edgesim({small_scenario!r})
        def test_metric(edge_scenario):
            result = edge_scenario.run()
            edge_scenario.record("delivered", result.metrics.node("cloud").delivered)

        @pytest.mark.statistical(trials=20)
        def test_half(edgesim_seed):
            assert edgesim_seed % 2 == 0

        @pytest.mark.statistical(trials=20, sequential=True)
        def test_half_sequential(edgesim_seed):
            assert edgesim_seed % 2 == 0

        @pytest.mark.statistical(trials=5, sequential=True)
        def test_undecided():
            pass
        """
    )
    serial = pytester.runpytest("--edgesim-report=serial.json", "--edgesim-undecided=pass")
    parallel = pytester.runpytest_subprocess(
        "-n", "2", "--edgesim-report=parallel.json", "--edgesim-undecided=pass", "--edgesim-summary"
    )
    for result in (serial, parallel):
        assert result.parseoutcomes() == {"passed": 1, "failed": 2, "undecided": 1}
    parallel.stdout.fnmatch_lines(
        ["statistical verdicts:", "*::test_half: */20 trials passed*refuted*", "    delivered: *"]
    )
    assert (pytester.path / "serial.json").read_text() == (
        pytester.path / "parallel.json"
    ).read_text()
    verdict = verdict_of(pytester, "parallel.json", "test_half_sequential")
    assert verdict["outcome"] == "refuted" and verdict["total"] < 20


def test_a_teardown_error_stops_the_trials(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        teardowns = []

        @pytest.fixture
        def breaks_on_teardown():
            yield
            teardowns.append(1)
            raise RuntimeError("teardown breaks")

        @pytest.mark.statistical(trials=5)
        def test_teardown(breaks_on_teardown):
            pass

        def test_afterwards():
            assert teardowns == [1]
        """
    )
    result = pytester.runpytest("--edgesim-report=report.json")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_teardown*", "*teardown breaks*"])
    assert verdict_of(pytester, "report.json", "test_teardown")["total"] == 1


@pytest.mark.parametrize("value", ["abc", "-3"])
def test_a_bad_trial_seed_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(f"--edgesim-trial-seed={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edgesim-trial-seed: expected a trial seed (an integer >= 0)*"])


def test_an_xfail_meets_the_verdict_not_a_trial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.xfail(reason="known to fail")
        @pytest.mark.statistical(trials=5)
        def test_known_failure():
            assert False
        """
    )
    result = pytester.runpytest("--edgesim-report=report.json")
    result.assert_outcomes(xfailed=1)
    verdict = verdict_of(pytester, "report.json", "test_known_failure")
    assert verdict["outcome"] == "refuted" and verdict["total"] == 5  # every trial ran


CONFIGURATION_ERRORS = """
import pytest
from pytest_edgesim import Scenario

def bad_scenario():
    with open("calls.txt", "a") as calls:
        calls.write("call\\n")
    Scenario.from_dict({"edgesim": 1, "devices": [{"name": "s", "topic": "t", "qos": 7}]})

@pytest.mark.statistical(trials=10)
def test_statistical(edgesim_seed):
    bad_scenario()

@pytest.mark.edgesim
def test_deterministic(edge_scenario):
    bad_scenario()
"""


@pytest.mark.parametrize("workers", [None, 2])
def test_a_configuration_error_is_an_error_at_once_not_a_verdict(
    pytester: pytest.Pytester, workers: int | None
) -> None:
    pytester.makepyfile(CONFIGURATION_ERRORS)
    arguments = ["--edgesim-report=report.json", "--edgesim-summary"]
    if workers is None:
        result = pytester.runpytest(*arguments)
    else:
        result = pytester.runpytest_subprocess("-n", str(workers), *arguments)
    result.assert_outcomes(errors=2)
    for name in ("test_statistical", "test_deterministic"):  # in either order under xdist
        result.stdout.fnmatch_lines(
            [
                f"*ERROR at call of {name}*",
                f"*::{name}: *devices?0?.qos: must be one of 0 or 1, got 7",
            ]
        )
    output = result.stdout.str()
    for needless in ("Traceback", "refuted", "replay", "Scenario.from_dict", "seed:"):
        assert needless not in output
    assert (pytester.path / "calls.txt").read_text().count("call") == 2  # one trial only
    verdict = verdict_of(pytester, "report.json", "test_statistical")
    assert verdict["outcome"] == "error" and verdict["total"] == 0
    report = json.loads((pytester.path / "report.json").read_text())
    assert {test["outcome"] for test in report["tests"]} == {"error"}  # as the terminal says
    assert "failed" not in next(line for line in result.stdout.lines if "tiers:" in line)


def test_a_configuration_error_keeps_the_falsifying_example_hypothesis_found(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from hypothesis import given, settings, strategies as st
        from pytest_edgesim import ScenarioError

        @settings(database=None, derandomize=True)
        @given(st.integers(0, 100))
        def test_property(n):
            if n > 10:
                raise ScenarioError(f"bad scenario built from n")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad scenario built from n*", "*test_property(*", "*n=11,*"])
