"""Restarts, crashes and disconnects through ``edge_scenario``: the API, replay, errors, and
verdicts that say which faults their trials underwent."""

from __future__ import annotations

import json

import pytest


def test_the_fault_api_on_edge_scenario_replays(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.deterministic(replay_check=True)
        def test_faults(edge_scenario):
            edge_scenario.run("2s")
            edge_scenario.restart("gateway")
            edge_scenario.run("3s")
            edge_scenario.kill("gateway")
            edge_scenario.run("4s")
            edge_scenario.start("gateway")
            edge_scenario.pause("gateway")
            edge_scenario.run("5s")
            edge_scenario.resume("gateway")
            edge_scenario.disconnect("gateway", duration="1s")
            edge_scenario.stop("broker")
            edge_scenario.at("7s", "start", "broker")
            result = edge_scenario.run()
            assert [fault.action for fault in result.faults] == [
                "restart", "kill", "start", "pause", "resume", "disconnect", "stop",
                "reconnect", "start",
            ]
            assert result.nodes["gateway"]["restarts"] == 2
            assert result.metrics.node("gateway").dropped["node_down"] > 0
            assert edge_scenario.faults == result.faults
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_an_impossible_fault_is_an_error_of_the_test_with_a_clear_message(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_start_a_running_gateway(edge_scenario):
            edge_scenario.run("1s")
            edge_scenario.start("gateway")

        def test_an_unknown_node(edge_scenario):
            edge_scenario.kill("gatewy")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)  # the test asks for what cannot be: a UsageError
    result.stdout.fnmatch_lines(
        [
            "*FaultUsageError: cannot start 'gateway': it is running (start a node that was "
            "stopped or killed)",
            "*FaultUsageError: cannot kill 'gatewy': no such node (nodes: broker, cloud, gateway, "
            "sensor-0, sensor-1, sensor-2)",
        ]
    )


def test_a_failing_verdict_names_the_faults_its_trials_underwent(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=4)
        def test_nothing_lost_across_a_restart(edge_scenario):
            edge_scenario.run("3s")
            edge_scenario.restart("gateway")
            result = edge_scenario.run()
            assert result.metrics.node("gateway").dropped["node_down"] == 0
        """
    )
    report = pytester.path / "report.json"
    result = pytester.runpytest(f"--edgesim-report={report}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*0/4 trials passed*refuted*; faults applied in 4 of 4 trials "
            "(first: t=3s restart gateway (lost 9 held message(s)))*",
        ]
    )
    data = json.loads(report.read_text())
    (test,) = data["tests"]
    assert test["verdict"]["fault_trials"] == 4
    assert test["verdict"]["trials"][0]["faults"] == [
        "t=3s restart gateway (lost 9 held message(s))"
    ]


def test_a_clean_verdict_says_nothing_about_faults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=4)
        def test_clean(edge_scenario):
            edge_scenario.run()
            assert False
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    assert "faults applied" not in result.stdout.str()
