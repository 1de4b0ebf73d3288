"""deterministic(replay_check=True): the same actions twice, the first divergence named."""

from __future__ import annotations

import pytest


def test_replay_check_passes_for_the_models(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.deterministic(replay_check=True)
        def test_steered(edge_scenario):
            edge_scenario.run("3s")
            edge_scenario.network.partition("sensor*", "broker")
            edge_scenario.network.set_link("gateway", "cloud", latency_ms=30, jitter_ms=5)
            edge_scenario.run("5s")
            edge_scenario.network.heal("sensor*", "broker")
            edge_scenario.inject("sensors/extra", 1.0)
            edge_scenario.run()
            assert edge_scenario.result.trace is not None  # replay_check keeps the trace
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_replay_check_catches_a_nondeterministic_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import random
        import pytest
        from pytest_edgesim.gateway import model as gateway

        @pytest.fixture
        def wall_clock_random_gateway(monkeypatch):
            # a processing delay drawn from the global random module: not reproducible
            def sampler(spec, stream):
                return lambda: random.randint(1, 50_000)

            monkeypatch.setattr(gateway, "make_delay_sampler", sampler)

        @pytest.mark.deterministic(replay_check=True)
        def test_flaky_model(wall_clock_random_gateway, edge_scenario):
            edge_scenario.run("10s")

        def test_without_replay_check_it_passes(wall_clock_random_gateway, edge_scenario):
            edge_scenario.run("10s")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_flaky_model: replay check failed: scenario 'edgesim-minimal' with seed 0 "
            "ran twice with the same actions and the runs differ",
            "the runs first differ at event #* (events #0 to #* agree):",
            "  first run: t=*s at *: *",
            "  replay:    t=*s at *: *",
            "digests: first run ????????????????*",
            "         replay    ????????????????*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_failing_deterministic_test_prints_the_command_that_tries_it_on_real_components(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_fails(edge_scenario):
            edge_scenario.run("2s")
            assert False, "found by the models"

        def test_plain_fails(edgesim_seed):
            assert False
        """
    )
    result = pytester.runpytest("--edgesim-seed=9")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "on real components: pytest /*::test_fails --edgesim-seed=9 --edgesim-on-real=20 "
            "--rootdir=* (the same scenario and seed on Mosquitto and the gateways' containers; "
            "says whether they fail the same way)",
        ]
    )
    assert "::test_plain_fails --edgesim-seed=9 --edgesim-on-real" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["replay: pytest /*::test_plain_fails --edgesim-seed=9 --rootdir=*"]
    )
