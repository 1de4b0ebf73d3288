"""A trial ends as pass, fail or error, and only passes and failures make the verdict.

An error of the test (a :class:`~pytest_edgesim.errors.UsageError`, a Hypothesis health
check, a set-up that never becomes ready) ends the test as an ERROR with the first error's
traceback; ``xfail`` meets the verdict of every trial, not trial 1.
"""

from __future__ import annotations

import importlib
import json

import pytest

from pytest_edgesim import SimulationError, UsageError
from pytest_edgesim.errors import FaultError, FaultUsageError

USAGE_ERRORS = """
import math
import pytest

@pytest.mark.statistical(trials=10)
def test_loss(edge_scenario):
    edge_scenario.network.set_link("gateway", "cloud", loss=1.5)

@pytest.mark.statistical(trials=10)
def test_partition(edge_scenario):
    edge_scenario.network.partition("nosuch", "broker")

@pytest.mark.statistical(trials=10)
def test_record(edge_scenario):
    edge_scenario.record("latency_ms", math.nan)

@pytest.mark.statistical(trials=10)
def test_fault(edge_scenario):
    edge_scenario.restart("nosuch")

@pytest.mark.statistical(trials=10)
def test_run_back(edge_scenario):
    edge_scenario.run("2s")
    edge_scenario.run("1s")

PLAYED = {"trials": 0}

@pytest.mark.statistical(trials=10, sequential=True)
def test_later_trial(edge_scenario):
    PLAYED["trials"] += 1
    if PLAYED["trials"] == 3:
        edge_scenario.network.set_link("gateway", "cloud", loss=-1)

def test_deterministic(edge_scenario):
    edge_scenario.network.set_link("gateway", "cloud", loss=1.5)
"""

NAMES = [
    "test_loss",
    "test_partition",
    "test_record",
    "test_fault",
    "test_run_back",
    "test_later_trial",
    "test_deterministic",
]


@pytest.mark.parametrize("workers", [None, 2], ids=["serial", "xdist"])
def test_usage_errors_are_errors_with_their_traceback_not_refutations(
    pytester: pytest.Pytester, workers: int | None
) -> None:
    pytester.makepyfile(test_usage=USAGE_ERRORS)
    arguments = ["--edgesim-report=report.json", "--edgesim-summary"]
    if workers is None:
        result = pytester.runpytest(*arguments)
    else:
        result = pytester.runpytest_subprocess("-n", str(workers), *arguments)
    result.assert_outcomes(errors=len(NAMES))
    output = result.stdout.str()
    assert "refuted" not in output and "trials passed" not in output
    result.stdout.fnmatch_lines(
        [
            "*ERROR at call of test_loss*",
            '>*edge_scenario.network.set_link("gateway", "cloud", loss=1.5)',  # the test's line
            "E*UsageError: loss must be between 0 and 1, got 1.5",
            "",
            "test_usage.py:6: UsageError",  # and no frame of edgesim's own after it
        ]
    )
    assert "pytest_edgesim/core" not in output
    for message in (
        "'nosuch' matches no node*",
        "record('latency_ms', nan): expected a finite number",
        "cannot restart 'nosuch': no such node*",
        "cannot run until '1s'*",
    ):
        result.stdout.fnmatch_lines([f"E*UsageError: {message}"])
    report = json.loads((pytester.path / "report.json").read_text())
    outcomes = {test["nodeid"].rsplit("::", 1)[1]: test for test in report["tests"]}
    assert {name: outcomes[name]["outcome"] for name in NAMES} == dict.fromkeys(NAMES, "error")
    later = outcomes["test_later_trial"]["verdict"]
    # trials before the error passed; the error is no trial and the test ends at it
    assert later["outcome"] == "error" and later["passed"] == later["total"] == 2
    assert outcomes["test_loss"]["verdict"]["total"] == 0


def test_a_usage_error_is_a_simulation_error_and_a_value_error() -> None:
    """(What these calls raised before, so code catching those still does.)"""
    assert issubclass(UsageError, SimulationError) and issubclass(UsageError, ValueError)
    assert issubclass(FaultUsageError, FaultError) and issubclass(FaultUsageError, UsageError)


def test_a_hypothesis_health_check_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from hypothesis import given, strategies as st

        @given(st.integers())
        def test_property(edge_scenario, n):
            pass

        @pytest.mark.statistical(trials=5)
        @given(st.integers())
        def test_statistical_property(edge_scenario, n):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*FailedHealthCheck*function-scoped fixture 'edge_scenario'*"])
    assert "refuted" not in result.stdout.str()


def test_a_set_up_that_never_becomes_ready_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_edgesim.errors import SetupError

        @pytest.mark.statistical(trials=5)
        def test_gateway(edgesim_seed):
            raise SetupError("gateway 'gw' never became ready within 30s")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*gateway 'gw' never became ready within 30s"])
    assert "refuted" not in result.stdout.str()


XFAIL_ON_TRIALS = """
import pytest

TRIALS = {"played": 0}

@pytest.mark.xfail(reason="flaky")
@pytest.mark.statistical(trials=20)
def test_passes_first_then_fails():
    TRIALS["played"] += 1
    assert TRIALS["played"] == 1

@pytest.mark.xfail(reason="flaky", strict=True)
@pytest.mark.statistical(trials=20)
def test_strict_passes_19_of_20():
    TRIALS["played"] += 1
    assert TRIALS["played"] != 25

@pytest.mark.xfail(reason="flaky", strict=True)
@pytest.mark.statistical(trials=20)
def test_strict_fails_every_trial():
    assert False
"""


def test_xfail_meets_the_verdict_of_every_trial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(XFAIL_ON_TRIALS)
    result = pytester.runpytest("-rxXf", "--edgesim-report=report.json")
    result.assert_outcomes(xfailed=2, failed=1)
    result.stdout.fnmatch_lines(["[[]XPASS(strict)[]] flaky"])
    result.stdout.fnmatch_lines(
        [
            "XFAIL *::test_passes_first_then_fails - flaky",
            "XFAIL *::test_strict_fails_every_trial - flaky",
            "FAILED *::test_strict_passes_19_of_20",
        ]
    )
    assert "in trial 1 of 20" not in result.stdout.str()
    report = json.loads((pytester.path / "report.json").read_text())
    verdicts = {test["nodeid"].rsplit("::", 1)[1]: test["verdict"] for test in report["tests"]}
    assert verdicts["test_passes_first_then_fails"]["passed"] == 1
    assert verdicts["test_passes_first_then_fails"]["total"] == 20
    assert verdicts["test_strict_passes_19_of_20"]["passed"] == 19


def test_after_a_failure_the_verdict_gives_the_trials_still_needed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        PLAYED = {"trials": 0}

        @pytest.mark.statistical(trials=20)
        def test_one_failure():
            PLAYED["trials"] += 1
            assert PLAYED["trials"] != 4
        """
    )
    result = pytester.runpytest("-v", "--edgesim-report=report.json")
    result.assert_outcomes(passed=1)
    from pytest_edgesim.core import stats

    more = stats.more_trials_to_demonstrate(19, 20, 0.95)
    assert more is not None and 20 + more > stats.trials_to_demonstrate(0.95)  # not 73
    result.stdout.fnmatch_lines(
        [
            "*: 19/20 trials passed*: not refuted, not demonstrated: min_pass_rate=0.95 "
            f"({more} more trials, all passing, would demonstrate it: trials={20 + more})"
        ]
    )
    verdict = json.loads((pytester.path / "report.json").read_text())["tests"][0]["verdict"]
    assert verdict["more_trials_to_demonstrate"] == more


def test_docker_off_stops_docker_gateway_before_any_container(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``--edgesim-docker=off`` the fixture skips, even with an engine that answers."""
    # (the module as sys.modules has it now: pytester's runs may have imported it afresh)
    session = importlib.import_module("pytest_edgesim.docker.session")

    def no_container(*args: object, **kwargs: object) -> None:
        raise AssertionError("a container was started under --edgesim-docker=off")

    monkeypatch.setattr(session, "docker_available", lambda: (True, "a fake engine"))
    monkeypatch.setattr(session, "gateway_launcher", no_container)
    monkeypatch.setattr(session, "connect", no_container)
    pytester.makeconftest(
        """
        import pytest

        from pytest_edgesim.pytest_plugin.docker_fixtures import MqttBroker

        @pytest.fixture(scope="session")
        def mqtt_broker():  # (no broker needed: nothing may connect to it)
            return MqttBroker("external", "127.0.0.1", 1)
        """
    )
    pytester.makepyfile(
        """
        def test_gateway(docker_gateway):
            docker_gateway({"name": "gw", "subscribe": "s/#", "implementation": "docker"})
        """
    )
    result = pytester.runpytest("--edgesim-docker=off", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*docker_gateway: Docker items are off (--edgesim-docker=off)"])


def test_an_explicit_external_broker_that_is_down_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_one(mqtt_broker):
            pass

        def test_two(mqtt_broker):
            pass
        """
    )
    # port 1 on the loopback: nothing listens there, the connection is refused at once
    result = pytester.runpytest("--edgesim-broker=external=127.0.0.1:1")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*external broker 127.0.0.1:1 (--edgesim-broker): no CONNACK*"])


def test_a_falsifying_scenario_is_shown_as_a_file_edgesim_run_takes(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(
        """
        from hypothesis import Phase, given, settings
        from pytest_edgesim.strategies import small_scenarios

        @settings(database=None, max_examples=20, derandomize=True,
                  phases=[Phase.generate, Phase.shrink])
        @given(small_scenarios(sensor_groups=(1, 2), gateways=(1, 1), partitions=False))
        def test_one_group(scenario):
            assert len(scenario.devices) < 2
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    lines = result.stdout.lines
    header = next(
        index
        for index, line in enumerate(lines)
        if "edgesim: falsifying scenario 'generated' (YAML: save it and run edgesim run FILE)"
        in line
    )
    end = next(index for index in range(header + 1, len(lines)) if lines[index].startswith("="))
    text = "\n".join(lines[header + 1 : end]) + "\n"
    assert not any(line.startswith("E ") for line in lines[header + 1 : end])
    assert "\nE   " not in "\n".join(line for line in lines if "edgesim: 1" in line)
    # copied as it is, the text is a scenario file edgesim run accepts
    path = pytester.path / "counterexample.yaml"
    path.write_text(text)
    from pytest_edgesim import Scenario
    from pytest_edgesim.cli.app import EXIT_OK, main

    capsys.readouterr()
    assert main(["run", str(path)]) == EXIT_OK
    assert len(Scenario.from_yaml(path).devices) == 2  # the shrunk example


@pytest.mark.parametrize("report", [None, "report.json"])
def test_the_seed_list_points_to_every_seed_only_where_it_is(
    pytester: pytest.Pytester, report: str | None
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=12, min_pass_rate=1.0)
        def test_fails_every_trial():
            assert False
        """
    )
    arguments = [] if report is None else [f"--edgesim-report={report}"]
    result = pytester.runpytest(*arguments)
    result.assert_outcomes(failed=1)
    if report is None:
        result.stdout.fnmatch_lines(
            [
                "trial seeds derive from *, ... (12 in all; --edgesim-report=PATH writes every "
                "seed to a JSON report)"
            ]
        )
        assert "every seed is in the JSON report" not in result.stdout.str()
    else:
        result.stdout.fnmatch_lines(
            [
                "trial seeds derive from *, ... (12 in all; every seed is in the JSON report "
                f"*{report})"
            ]
        )


def test_a_health_check_of_a_test_edgesim_has_nothing_to_do_with_stays_a_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from hypothesis import given, strategies as st

        @pytest.fixture
        def plain():
            return 1

        @given(st.integers())
        def test_plain_property(plain, n):
            pass
        """
    )
    pytester.runpytest().assert_outcomes(failed=1)  # as pytest and Hypothesis have it


def test_a_broker_that_never_becomes_ready_is_an_error_not_a_failed_trial(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live run asks for the session's broker inside the trial: one that never answers
    is a set-up error, as a gateway that never becomes ready is."""
    # (the module as sys.modules has it now: pytester's runs may have imported it afresh)
    session = importlib.import_module("pytest_edgesim.docker.session")
    from pytest_edgesim.pytest_plugin import docker_fixtures

    def never_ready(config: object) -> None:
        raise session.ReadinessError("the broker did not answer within 30 s", [])

    monkeypatch.setattr(docker_fixtures, "_start_broker", never_ready)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=5)
        def test_live(request, edgesim_seed):
            request.getfixturevalue("mqtt_broker")  # as a live run does
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the session's broker did not start: the broker did not answer*"])
    assert "refuted" not in result.stdout.str()
