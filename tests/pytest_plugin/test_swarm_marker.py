"""Swarm testing and assertions over runs in the plugin: marker, report, replay, xdist."""

from __future__ import annotations

import json

import pytest

SWARMED = """
import pytest

@pytest.mark.statistical(trials=12, faults={"swarm": {"probability": 0.5, "max_count": 1}})
def test_swarmed(edge_scenario):
    result = edge_scenario.run()
    # fails whenever the gateway was restarted or crashed: the table must show it
    kinds = result.swarm_profile.kinds
    assert "gateway_restart" not in kinds and "gateway_crash" not in kinds
"""


def report_of(pytester: pytest.Pytester, path: str) -> dict:
    return json.loads((pytester.path / path).read_text())


def verdict_of(pytester: pytest.Pytester, path: str) -> dict:
    (test,) = report_of(pytester, path)["tests"]
    return test["verdict"]


def test_each_trial_draws_its_profile_and_the_report_has_pass_rates_by_kind(pytester):
    pytester.makepyfile(SWARMED)
    result = pytester.runpytest("-v", "--edgesim-report=report.json")
    result.assert_outcomes(failed=1)
    verdict = verdict_of(pytester, "report.json")
    trials = verdict["trials"]
    assert all("swarm" in trial and "swarm_kinds" in trial for trial in trials)
    assert len({tuple(trial["swarm"]) for trial in trials}) > 6  # the seeds drew different mixes
    rows = {row["kind"]: row for row in verdict["swarm_by_kind"]}
    for kind in ("gateway_restart", "gateway_crash"):
        assert rows[kind]["passed"] == 0 < rows[kind]["trials"]
    failed = [trial for trial in trials if trial["outcome"] == "failed"]
    assert failed and all(
        {"gateway_restart", "gateway_crash"} & set(trial["swarm_kinds"]) for trial in failed
    )
    for row in rows.values():
        assert set(row) == {"kind", "trials", "passed", "rate", "interval", "alone", "alone_passed"}
    # every run entry says what it drew
    (test,) = report_of(pytester, "report.json")["tests"]
    assert all("swarm" in run for run in test["runs"])
    result.stdout.fnmatch_lines(
        [
            "*the first failing trial (seed *) drew: *gateway_*",
            "swarm and assertions: *::test_swarmed",
            "  pass rates by fault kind (95% Wilson intervals):",
            "    fault kind * trials on  passed  rate  interval      alone: passed",
            "    gateway_restart *",
            "    trial 1 (seed *) *: *",
        ]
    )


def test_the_replay_of_a_failing_trial_draws_the_same_profile(pytester):
    pytester.makepyfile(SWARMED)
    pytester.runpytest("--edgesim-report=first.json")
    verdict = verdict_of(pytester, "first.json")
    failed = next(trial for trial in verdict["trials"] if trial["outcome"] == "failed")
    assert f"--edgesim-trial-seed={verdict['failed_seeds'][0]} " in verdict["replay"] + " "

    replay = pytester.runpytest(
        f"--edgesim-trial-seed={failed['seed']}", "--edgesim-report=replay.json"
    )
    replay.assert_outcomes(failed=1)
    (replayed,) = verdict_of(pytester, "replay.json")["trials"]
    assert replayed["swarm"] == failed["swarm"]


def test_swarm_under_xdist_reports_what_a_serial_run_reports(pytester):
    pytester.makepyfile(SWARMED)
    pytester.runpytest("--edgesim-report=serial.json")
    pytester.runpytest("-n", "2", "--edgesim-report=parallel.json")
    assert report_of(pytester, "parallel.json") == report_of(pytester, "serial.json")


def test_a_scenario_swarm_section_swarms_a_statistical_test(pytester):
    pytester.makefile(
        ".yaml",
        swarmed="""
        edgesim: 1
        duration: 20s
        devices: [{name: s, topic: t/s}]
        gateways: [{name: gw, subscribe: t/#, forward: {topic: cloud/t}}]
        swarm:
          kinds: [gateway_restart, link_latency]
          probability: 1.0
        """,
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=3)
        @pytest.mark.edgesim(scenario="swarmed.yaml")
        def test_it(edge_scenario):
            result = edge_scenario.run()
            assert set(result.swarm_profile.kinds) == {"gateway_restart", "link_latency"}
        """
    )
    result = pytester.runpytest("--edgesim-report=report.json")
    result.assert_outcomes(passed=1)
    rows = verdict_of(pytester, "report.json")["swarm_by_kind"]
    assert [(row["kind"], row["trials"], row["passed"]) for row in rows] == [
        ("gateway_restart", 3, 3),
        ("link_latency", 3, 3),
    ]


def test_an_unknown_swarm_kind_names_the_file_line_and_field(pytester):
    pytester.makefile(
        ".yaml",
        swarmed="""
        edgesim: 1
        gateways: [{name: gw, subscribe: t/#}]
        swarm:
          kinds: [gateway_reboot]
        """,
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(scenario="swarmed.yaml")
        def test_it(edge_scenario):
            edge_scenario.run()
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "*swarmed.yaml:4: swarm.kinds.gateway_reboot: unknown swarm kind 'gateway_reboot' "
            "(did you mean 'gateway_restart'?)*"
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ("chaos", "statistical(faults='chaos'): expected 'swarm' or {'swarm': {...}}*"),
        ({"swarm": {"probability": 3}}, "statistical(faults=...): swarm.probability*"),
    ],
)
def test_a_bad_faults_argument_is_a_clear_error(pytester, faults, message):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.statistical(trials=2, faults={faults!r})
        def test_it(edge_scenario):
            edge_scenario.run()
        """
    )
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*{message}"])


# --- assertions over runs ---------------------------------------------------------------------
ASSERTING = """
import pytest

@pytest.mark.statistical(trials=10, min_pass_rate=0.5)
def test_never_reconnects(edge_scenario):
    edge_scenario.run("5s")
    edge_scenario.sometimes(False, "reconnected")

@pytest.mark.statistical(trials=10, min_pass_rate=0.5)
def test_always_once_false(edge_scenario, edgesim_seed):
    edge_scenario.run("5s")
    edge_scenario.always(edgesim_seed % 5 != 0 or edge_scenario.now_s != 5, "seed not 0 mod 5")
    edge_scenario.always(True, "fine")

@pytest.mark.statistical(trials=10, min_pass_rate=0.5)
def test_unreachable_reached(edge_scenario, edgesim_seed):
    edge_scenario.run("3s")
    if edgesim_seed % 2:
        edge_scenario.unreachable("odd seed")

@pytest.mark.statistical(trials=10, min_pass_rate=0.5)
def test_sometimes_held(edge_scenario, edgesim_seed):
    edge_scenario.run("1s")
    edge_scenario.sometimes(edgesim_seed % 3 == 0, "seed divisible by 3")
    edge_scenario.reachable("body ran")

@pytest.mark.deterministic
def test_deterministic_never_held(edge_scenario):
    edge_scenario.run("1s")
    edge_scenario.sometimes(False, "a one-off")
"""


def test_assertions_are_judged_across_trials(pytester):
    from pytest_edgesim.pytest_plugin.trials import trial_seed

    seeds = [trial_seed(0, index) for index in range(10)]
    assert any(seed % 5 == 0 for seed in seeds) and any(seed % 3 == 0 for seed in seeds)
    first_odd = next(index for index, seed in enumerate(seeds) if seed % 2)
    pytester.makepyfile(ASSERTING)
    result = pytester.runpytest("-v", "--edgesim-report=report.json", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*::test_never_reconnects: 10/10 trials passed*; "
            "sometimes('reconnected') never held in 10 trials",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*::test_always_once_false: 10/10 trials passed*; "
            "always('seed not 0 mod 5') was false in * of 10 trials "
            "(first: trial *, seed * at t=5s (test))"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*unreachable('odd seed') was reached in * of 10 trials "
            f"(first: trial {first_odd + 1}, seed {seeds[first_odd]} at t=3s (test))"
        ]
    )
    result.stdout.fnmatch_lines(
        ["*test_deterministic_never_held: sometimes('a one-off') never held in 1 run*"]
    )
    tests = {
        test["nodeid"].split("::")[1]: test for test in report_of(pytester, "report.json")["tests"]
    }
    held = tests["test_sometimes_held"]["verdict"]
    assert held["assertion_problems"] == []
    rows = {row["label"]: row for row in held["assertions"]}
    assert rows["seed divisible by 3"]["runs_held"] == sum(seed % 3 == 0 for seed in seeds)
    assert rows["body ran"] == {
        "kind": "reachable",
        "label": "body ran",
        "runs_held": 10,
        "runs_failed": 0,
    }
    assert all("assertions" in run for run in tests["test_sometimes_held"]["runs"])


def test_assertions_are_judged_alike_under_xdist(pytester):
    pytester.makepyfile(ASSERTING)
    pytester.runpytest("--edgesim-report=serial.json", "-p", "no:randomly")
    result = pytester.runpytest("-n", "2", "--edgesim-report=parallel.json", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=4)
    assert report_of(pytester, "parallel.json") == report_of(pytester, "serial.json")


def test_a_failing_deterministic_run_shows_the_profile_its_seed_drew(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(overrides={"swarm": {"probability": 1.0}}, seed=5)
        def test_it(edge_scenario):
            result = edge_scenario.run()
            assert not result.swarm_profile.faults
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    from pytest_edgesim.core.edge_scenario import minimal_scenario
    from pytest_edgesim.core.simulation import simulate

    swarmed = minimal_scenario().with_overrides({"swarm": {"probability": 1.0}})
    profile = simulate(swarmed, seed=5).swarm_profile
    assert profile is not None
    result.stdout.fnmatch_lines([f"swarm profile (seed 5): {profile.describe()}"])
