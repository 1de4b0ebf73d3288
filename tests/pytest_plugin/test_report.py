"""What a run tells: the failure section, the terminal summary, the JSON report, xdist."""

from __future__ import annotations

import json

import pytest

SUITE = """
import pytest

@pytest.mark.edgesim("small.yaml")
def test_small(edge_scenario):
    edge_scenario.run()

@pytest.mark.edgesim("small.yaml", seed=3)
def test_small_other_seed(edge_scenario):
    edge_scenario.run("2s")
    edge_scenario.network.partition("sensor*", "broker")
    edge_scenario.run()

def test_minimal(edge_scenario):
    edge_scenario.run("3s")

@pytest.mark.edgesim(duration="2s")
def test_fails(edge_scenario):
    edge_scenario.run()
    assert False, "on purpose"

def test_seed_only(edgesim_seed):
    pass

def test_not_edgesim():
    pass
"""


def run_report(pytester: pytest.Pytester, name: str, *args: str) -> dict:
    result = pytester.runpytest_subprocess(f"--edgesim-report={name}", *args)
    result.assert_outcomes(passed=5, failed=1)
    return json.loads((pytester.path / name).read_text())


def test_failure_section_names_seed_and_scenario(
    pytester: pytest.Pytester, small_scenario: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.edgesim({small_scenario!r})
        def test_fails(edge_scenario):
            edge_scenario.run()
            assert False
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- edgesim -*",
            "seed: 11",
            "scenario: 'small' (*small.yaml)",
            "replay: pytest */test_failure_section_names_seed_and_scenario.py::test_fails "
            "--edgesim-seed=11 --rootdir=*",
        ]
    )
    result = pytester.runpytest("--edgesim-seed=5")
    result.stdout.fnmatch_lines(["seed: 5"])


def test_summary_is_quiet_unless_asked(pytester: pytest.Pytester, small_scenario: str) -> None:
    pytester.makepyfile(SUITE)
    quiet = pytester.runpytest()
    assert "= edgesim =" not in quiet.stdout.str()
    for args in (["-v"], ["--edgesim-summary"]):
        result = pytester.runpytest(*args)
        result.stdout.fnmatch_lines(
            [
                "*= edgesim =*",
                "tiers: deterministic 5 (1 failed, 4 passed)",
                "seeds: each scenario's own (0, 3, 11)",
                "slowest scenarios (wall time, top 4):",
                "  * ms  test_summary_is_quiet_unless_asked.py::test_* (seed *)",
            ]
        )
    pytester.makeini("[pytest]\nedgesim_summary = true\n")
    pytester.runpytest().stdout.fnmatch_lines(["*= edgesim =*"])


def test_json_report(pytester: pytest.Pytester, small_scenario: str) -> None:
    pytester.makepyfile(SUITE)
    report = run_report(pytester, "report.json")
    assert report["version"] == 1
    assert report["seed"] is None
    tests = {test["nodeid"].split("::")[1]: test for test in report["tests"]}
    assert list(tests) == sorted(tests)  # ordered by node id; test_not_edgesim is not listed
    assert set(tests) == {
        "test_fails",
        "test_minimal",
        "test_seed_only",
        "test_small",
        "test_small_other_seed",
    }
    small = tests["test_small"]
    assert small["tier"] == "deterministic"
    assert small["outcome"] == "passed"
    assert small["seeds"] == [11]
    assert small["verdict"] is None
    (run,) = small["runs"]
    assert set(run) == {"scenario", "seed", "trace_digest", "metrics", "flows", "profile"}
    assert run["scenario"] == "small" and run["seed"] == 11 and len(run["trace_digest"]) == 64
    assert run["metrics"]["duration_s"] == 4.0
    assert tests["test_small_other_seed"]["seeds"] == [3]
    assert tests["test_fails"]["outcome"] == "failed"
    assert tests["test_seed_only"] == {
        "nodeid": tests["test_seed_only"]["nodeid"],
        "tier": "deterministic",
        "outcome": "passed",
        "seeds": [0],
        "runs": [],
        "verdict": None,
    }


def test_xdist_parity(pytester: pytest.Pytester, small_scenario: str) -> None:
    """-n 2 gives the same outcomes, seeds and digests as a serial run."""
    pytester.makepyfile(SUITE)
    serial = run_report(pytester, "serial.json")
    parallel = run_report(pytester, "parallel.json", "-n", "2")
    assert parallel == serial


def test_xdist_workers_get_the_controllers_random_seed(
    pytester: pytest.Pytester, small_scenario: str
) -> None:
    pytester.makepyfile(SUITE.replace('"small.yaml", seed=3', '"small.yaml"'))
    report = run_report(pytester, "random.json", "-n", "2", "--edgesim-seed=random")
    seed = report["seed"]
    assert isinstance(seed, int)
    assert {s for test in report["tests"] for s in test["seeds"]} == {seed}
