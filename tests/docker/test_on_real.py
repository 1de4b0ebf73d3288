"""--edgesim-on-real: a deterministic test's scenario and seed, run on real components.

The test runs once on its models (the reference), then N trials on a real Mosquitto and the
gateway's container with the same seed; the verdict says how many failed and whether they
failed the same way as the models (the same assertion)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("docker_client")

TESTS = """
import pytest

@pytest.mark.edgesim(duration="3s", time_scale=3)
def test_holds_everywhere(edge_scenario):
    result = edge_scenario.run()
    assert result.metrics.node("gateway").delivered == 9  # 3 sensors, 3 s

@pytest.mark.edgesim(duration="3s", time_scale=3)
def test_wrong_everywhere(edge_scenario):
    result = edge_scenario.run()
    assert result.metrics.node("gateway").delivered == 8, "one reading too many"

@pytest.mark.edgesim(duration="3s", time_scale=3)
def test_holds_only_on_the_models(edge_scenario):
    result = edge_scenario.run()
    assert result.trace_digest is not None, "a wall-clock run has no digest"

def test_without_edge_scenario(edgesim_seed):
    pass
"""


@pytest.fixture
def on_real(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(TESTS)
    return pytester.runpytest_subprocess(
        "--edgesim-on-real=2",
        "--edgesim-seed=4",
        "--edgesim-docker=require",
        "--edgesim-report=report.json",
        "-rs",
    )


def test_the_real_trials_are_judged_against_the_models_run(on_real, pytester):
    on_real.assert_outcomes(passed=1, failed=2, skipped=1)
    on_real.stdout.fnmatch_lines(
        [
            "*::test_wrong_everywhere: on real components with seed 4, 2 of 2 trials failed; "
            "the models failed at *test_*.py:11 (AssertionError: one reading too many): every "
            "failing trial failed the same way",
            "2 trial(s) failed at *test_*.py:11 (AssertionError: one reading too many)",
            "replay the first failing trial: pytest /*::test_wrong_everywhere --edgesim-seed=4 "
            "--edgesim-on-real=1 --edgesim-docker=require --rootdir=*",
        ]
    )
    on_real.stdout.fnmatch_lines(
        [
            "*::test_holds_only_on_the_models: on real components with seed 4, 2 of 2 trials "
            "failed; the models passed: the real system fails where the models pass",
        ]
    )
    on_real.stdout.fnmatch_lines(
        ["SKIPPED*--edgesim-on-real: this test does not use edge_scenario*"]
    )
    report = json.loads((pytester.path / "report.json").read_text())
    verdicts = {test["nodeid"].rsplit("::", 1)[1]: test.get("verdict") for test in report["tests"]}
    holds = verdicts["test_holds_everywhere"]
    assert holds["rule"] == "on-real" and holds["passed"] == holds["total"] == 2
    assert [trial["seed"] for trial in holds["trials"]] == [4, 4]  # the same seed every trial
    assert verdicts["test_wrong_everywhere"]["same_failures"] == 2
