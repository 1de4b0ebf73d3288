"""``--edgesim-html``: the session's page, written where the reports arrive (serial or the
xdist controller), the same either way; a clear error without matplotlib."""

from __future__ import annotations

import re

# Imported here, once: pytester's in-process runs forget the modules a run imported, and
# matplotlib cannot be imported a second time in one process.
import matplotlib.backends.backend_svg
import matplotlib.figure
import matplotlib.ticker  # noqa: F401
import pytest

import pytest_edgesim.reporting.page  # noqa: F401

SUITE = """
import pytest

@pytest.mark.edgesim("small.yaml")
def test_small(edge_scenario):
    edge_scenario.run("2s")
    edge_scenario.network.partition("gw", "cloud")
    edge_scenario.run("3s")
    edge_scenario.network.heal()
    edge_scenario.run()

@pytest.mark.statistical(trials=6, min_pass_rate=0.5)
@pytest.mark.edgesim("small.yaml")
def test_trials(edge_scenario, edgesim_seed):
    edge_scenario.run()
    assert edgesim_seed % 3, "fails for one seed in three"

@pytest.mark.parametrize("latency", ["1ms", "30ms"])
@pytest.mark.edgesim("small.yaml")
def test_latency(edge_scenario, latency):
    edge_scenario.network.set_link("*", "*", latency=latency)
    edge_scenario.run()

def test_not_edgesim():
    pass
"""


def _charts(page: str) -> list[str]:
    return re.findall(r'<figure class="chart" data-chart="([a-z-]+)"><svg', page)


def test_the_page_has_every_test_and_its_charts(
    pytester: pytest.Pytester, small_scenario: str
) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--edgesim-html=out/report.html", "-p", "no:randomly")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["edgesim: HTML report written to *out*report.html"])
    page = (pytester.path / "out" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    # the summary table first, with one row per edgesim test (not the plain test)
    summary = page[page.index('id="summary"') : page.index('id="comparison"')]
    assert summary.count("<tr>") == 1 + 4
    assert "test_not_edgesim" not in page
    assert "No baseline was compared" in page
    charts = _charts(page)
    # test_trials: pass rate, timeline, latency; each deterministic test: timeline, latency;
    # and the two latencies compared
    assert charts.count("pass-rate") == 1
    assert charts.count("timeline") == 4
    assert charts.count("latency") == 4
    assert charts.count("latency-comparison") == 1
    assert "Pass rate as trials accrue" in page
    assert "Messages over time (first failing trial: trial" in page
    assert "each run, all topics" in page  # the trials' own lines
    assert "partition" in page
    assert "--edgesim-trial-seed=" in page  # the replay of the first failing trial
    assert "--edgesim-seed=11" in page  # a deterministic test's replay


def test_nothing_is_fetched_to_view_it(pytester: pytest.Pytester, small_scenario: str) -> None:
    pytester.makepyfile(SUITE)
    pytester.runpytest("--edgesim-html=report.html", "-p", "no:randomly")
    page = (pytester.path / "report.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)
    assert not re.search(r"url\((?!#)", page)  # (the SVGs' clip paths are url(#id))
    assert "@import" not in page


def test_xdist_controller_writes_the_same_page(
    pytester: pytest.Pytester, small_scenario: str
) -> None:
    pytester.makepyfile(SUITE)
    pytester.runpytest_subprocess("--edgesim-html=serial.html", "-p", "no:randomly")
    result = pytester.runpytest_subprocess(
        "--edgesim-html=parallel.html", "-p", "no:randomly", "-n", "2"
    )
    result.assert_outcomes(passed=5)
    serial = (pytester.path / "serial.html").read_text()
    parallel = (pytester.path / "parallel.html").read_text()
    assert len(_charts(parallel)) == 10
    assert parallel == serial


def test_the_baseline_comparison_is_shown(pytester: pytest.Pytester, small_scenario: str) -> None:
    """--edgesim-compare's comparison has its section, regressions first."""
    pytester.makepyfile(SUITE)
    pytester.runpytest("--edgesim-save=before", "-p", "no:randomly")
    pytester.makepyfile(SUITE.replace("latency=latency", 'latency="80ms"'))  # slower now
    pytester.runpytest(
        "--edgesim-compare=before",
        "--edgesim-compare-fail=p95_ms:10%",
        "--edgesim-html=report.html",
        "-p",
        "no:randomly",
    )
    page = (pytester.path / "report.html").read_text()
    section = page[page.index('id="comparison"') : page.index('id="parameters"')]
    assert "Baseline <strong>before</strong>" in section
    assert "fails on: p95_ms:10%." in section
    assert "<th>metric [flow]</th>" in section
    assert "No baseline was compared" not in page
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td>", section)
    assert rows and all(nodeid.startswith("test_the_baseline") for nodeid, _ in rows)
    # the regressions (test_latency's, at 80 ms now) come first, marked
    first = section.index("<tr><td>")
    assert "test_latency[" in section[first : first + 300]
    assert '<span class="badge failed">regressed</span>' in section[first : first + 600]


def test_without_matplotlib_the_run_stops_with_the_install_command(
    pytester: pytest.Pytester, small_scenario: str
) -> None:
    pytester.makepyfile(SUITE)
    pytester.makeconftest("import sys\nsys.modules['matplotlib'] = None\n")
    result = pytester.runpytest_subprocess("--edgesim-html=report.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --edgesim-html draws its charts with matplotlib, which is not installed: "
            "pip install 'pytest-edgesim[html]'"
        ]
    )
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / "report.html").exists()


def test_a_directory_is_refused(pytester: pytest.Pytester, small_scenario: str) -> None:
    pytester.makepyfile(SUITE)
    pytester.mkdir("out")
    result = pytester.runpytest("--edgesim-html=out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --edgesim-html *out: is a directory, not a file"])


def test_the_ini_key_works_too(pytester: pytest.Pytester, small_scenario: str) -> None:
    pytester.makepyfile(SUITE)
    pytester.makeini("[pytest]\nedgesim_html = reports/page.html\n")
    pytester.runpytest("-q", "-p", "no:randomly")
    assert (pytester.path / "reports" / "page.html").is_file()
