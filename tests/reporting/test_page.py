"""The charts' numbers and the page's parts, from plain data (no browser, no pytest run)."""

from __future__ import annotations

import pytest

from pytest_edgesim.core import stats
from pytest_edgesim.reporting import charts, page


def _verdict(outcomes: list[str], **extra: object) -> dict:
    return {
        "confidence": 0.9,
        "min_pass_rate": 0.8,
        "interval_kind": "wilson",
        "trials": [{"index": i, "seed": i, "outcome": o} for i, o in enumerate(outcomes)],
        **extra,
    }


def test_the_pass_rate_band_is_the_wilson_interval_after_each_trial() -> None:
    points = charts.pass_rate_points(_verdict(["passed", "failed", "passed", "passed"]))
    assert [point[:2] for point in points] == [(1, 1.0), (2, 0.5), (3, 2 / 3), (4, 0.75)]
    assert points[-1][2:] == stats.wilson_interval(3, 4, 0.9)


def test_a_sequential_test_gets_its_confidence_sequence() -> None:
    verdict = _verdict(["passed"] * 5, interval_kind="confidence sequence")
    (*_, last) = charts.pass_rate_points(verdict)
    assert last[2:] == stats.confidence_sequence(5, 5, 0.9, stats.mixture_prior(0.8))


def test_the_cdf_of_a_histogram() -> None:
    xs, ys = charts.cdf_points([[10, 1], [0, 3]])
    # from the lowest bin's lower edge, the share at or below each occupied bin's upper edge
    assert xs == pytest.approx([1.0, 10**0.1, 10**1.1])
    assert ys == [0.0, 0.75, 1.0]
    assert charts.cdf_points([]) == ([], [])
    assert charts.quantile_ms([[0, 3], [10, 1]], 0.5) == pytest.approx(10**0.1)
    assert charts.merge_histograms([[[0, 1]], [[0, 2], [3, 1]]]) == [[0, 3], [3, 1]]


def test_parameters_of_one_test_are_compared() -> None:
    run = {"profile": {"latency_histograms": {"all topics": [[5, 2]]}}}
    tests = [
        {"nodeid": "t.py::test_a[python_model]", "runs": [run]},
        {"nodeid": "t.py::test_a[docker:mqtt]", "runs": [run, run]},
        {"nodeid": "t.py::test_b[x]", "runs": [run]},  # alone: nothing to compare with
        {"nodeid": "t.py::test_c", "runs": [run]},
    ]
    assert page.parameter_groups(tests) == {
        "t.py::test_a": {"python_model": [[5, 2]], "docker:mqtt": [[5, 4]]}
    }


@pytest.mark.parametrize(
    ("comparison", "shown"),
    [
        ([{"metric": "p95_ms", "change": "+12%"}], ["<th>metric</th>", "+12%"]),
        ({"rows": [{"metric": "delivered"}], "baseline": "main"}, ["delivered", "main"]),
        ({"baseline": "nightly", "fails": True}, ["nightly", "True"]),
        ("compared with main: no change", ["compared with main: no change"]),
        (
            {
                "baseline": "main",
                "file": "/x/main.json",
                "thresholds": ["p95_ms:10%"],
                "rows": [
                    {
                        "nodeid": "t::a",
                        "metric": "p95_ms",
                        "flow": "cloud",
                        "baseline": 10.0,
                        "current": 10.0,
                        "change": 0.0,
                        "change_ratio": 0.0,
                        "worse": False,
                        "regressed": False,
                    },
                    {
                        "nodeid": "t::b",
                        "metric": "p95_ms",
                        "flow": "cloud",
                        "baseline": 10.0,
                        "current": 12.5,
                        "change": 2.5,
                        "change_ratio": 0.25,
                        "worse": True,
                        "regressed": True,
                    },
                ],
                "regressions": 1,
                "new": ["t::c"],
                "missing": [],
            },
            [
                "fails on: p95_ms:10%",
                "<td>t::b</td><td>p95_ms [cloud]</td>",
                "+2.5 (+25.0%)",
                "regressed",
                "Not in the baseline: t::c",
            ],
        ),
    ],
)
def test_a_comparison_of_any_shape_is_shown(comparison: object, shown: list[str]) -> None:
    section = page.comparison_section(comparison)
    assert section.startswith('<section class="block" id="comparison">')
    for text in shown:
        assert text in section


def test_text_is_escaped() -> None:
    html = page.session_page(
        {
            "tests": [
                {
                    "nodeid": "t.py::test[<b>&]",
                    "tier": "deterministic",
                    "outcome": "passed",
                    "seeds": [1],
                    "runs": [],
                    "verdict": None,
                }
            ]
        }
    )
    assert "<b>&" not in html and "&lt;b&gt;&amp;" in html
    assert "No scenario run was recorded for this test." in html


def test_replay_commands() -> None:
    assert page.replay_command({"replay": "pytest x --edgesim-trial-seed=3"}) == (
        "pytest x --edgesim-trial-seed=3"
    )
    deterministic = {"nodeid": "t.py::test a", "tier": "deterministic", "seeds": [7]}
    assert page.replay_command(deterministic) == "pytest 't.py::test a' --edgesim-seed=7"
    assert page.replay_command({**deterministic, "seeds": [7, 8]}) is None
