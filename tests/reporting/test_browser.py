"""The HTML report in a real browser: headless Chromium loads the page from a file (no
network), and the charts are there, with their titles and legends, and drawn.

Chromium is a requirement of the test suite, as mosquitto is (``.ci/run`` installs both): a
missing browser fails these tests, with the command that installs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from pytest_edgesim import Scenario, Simulation
from pytest_edgesim.reporting.page import run_page, session_page

SCENARIOS = Path(__file__).parents[2] / "scenarios"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER_TIMEOUT_S = 120


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "the HTML report's browser tests need Chromium: `apt-get install chromium` "
        f"(looked for {', '.join(BROWSERS)} on PATH; see .ci/run)"
    )


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            # nothing may be fetched: any request would fail
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_S,
        check=True,
    )


def _session() -> dict:
    """A session of three tests: a partitioned deterministic run with a fault, a statistical
    test with a failing trial, and the same test under two parameters."""
    scenario = Scenario.from_yaml(SCENARIOS / "partition.yaml")
    with Simulation(scenario) as simulation:
        simulation.run("10s")
        simulation.restart("edge-gw")
        partitioned = simulation.run().to_dict()
    trials = []
    runs = []
    for index in range(8):
        seed = 100 + index
        result = Simulation(Scenario.from_yaml(SCENARIOS / "lossy.yaml"), seed).run("20s")
        runs.append(result.to_dict())
        trials.append(
            {"index": index, "seed": seed, "outcome": "failed" if index == 2 else "passed"}
        )
    verdict = {
        "rule": "fixed",
        "outcome": "not refuted",
        "passed": 7,
        "total": 8,
        "budget": 8,
        "rate": 7 / 8,
        "confidence": 0.95,
        "min_pass_rate": 0.8,
        "interval": [0.529, 0.978],
        "interval_kind": "wilson",
        "trials": trials,
        "replay": "pytest 'tests/test_x.py::test_lossy' --edgesim-trial-seed=102",
    }
    tests = [
        {
            "nodeid": "tests/test_x.py::test_partition",
            "tier": "deterministic",
            "outcome": "passed",
            "seeds": [3],
            "runs": [partitioned],
            "verdict": None,
        },
        {
            "nodeid": "tests/test_x.py::test_lossy",
            "tier": "statistical",
            "outcome": "passed",
            "seeds": [trial["seed"] for trial in trials],
            "runs": runs,
            "verdict": verdict,
        },
    ]
    for latency in ("5ms", "50ms"):
        scenario = Scenario.from_yaml(SCENARIOS / "basic.yaml")
        with Simulation(scenario) as simulation:
            simulation.network.set_link("*", "*", latency=latency)
            run = simulation.run("20s").to_dict()
        tests.append(
            {
                "nodeid": f"tests/test_x.py::test_gateways[{latency}]",
                "tier": "deterministic",
                "outcome": "passed",
                "seeds": [42],
                "runs": [run],
                "verdict": None,
            }
        )
    return {"version": 1, "seed": None, "tests": tests}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(session_page(_session()), encoding="utf-8")
    return path


def test_the_browser_builds_every_chart(page: Path) -> None:
    dom = _chromium("--dump-dom", page.as_uri()).stdout
    figures = re.findall(r'<figure class="chart" data-chart="([a-z-]+)"><svg\b', dom)
    assert Counter(figures) == {
        "pass-rate": 1,
        "timeline": 4,
        "latency": 4,
        "latency-comparison": 1,
    }
    for text in (
        "Pass rate as trials accrue",
        "pass rate so far",
        "95% interval (Wilson)",
        "required pass rate (0.8)",
        "failing trial",
        "Messages over time (first failing trial: trial 3, seed 102)",
        "published",
        "delivered",
        "dropped",
        "partition",
        "fault",
        "restart edge-gw",
        "Latency distribution per flow (all 8 runs together)",
        "each run, all topics",
        "latency (ms, log scale)",
        "virtual time (s; 1 s slices)",
        "messages per second",
        "Latency, all topics: tests/test_x.py::test_gateways",
        "5ms (n=",
        "50ms (n=",
        "--edgesim-trial-seed=102",
    ):
        assert text in dom, text
    # the summary table comes first, one row per test
    assert dom.index('id="summary"') < dom.index("<figure")
    # several SVGs in one page: no id is used twice
    ids = Counter(re.findall(r'\bid="([^"]+)"', dom))
    assert [name for name, count in ids.items() if count > 1] == []


def _ink(png: Path) -> tuple[float, int]:
    """The share of pixels that are not the page's background, and the distinct colours."""
    import matplotlib.image
    import numpy

    pixels = (matplotlib.image.imread(png)[..., :3] * 255).astype(int)
    flat = pixels.reshape(-1, 3)
    colours, counts = numpy.unique(flat, axis=0, return_counts=True)
    background = counts.max()
    return 1.0 - background / len(flat), len(colours)


def test_the_page_is_drawn(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    _chromium("--window-size=1200,2400", f"--screenshot={shot}", page.as_uri())
    ink, colours = _ink(shot)
    assert ink > 0.2, "the page is (nearly) blank"
    assert colours > 50  # lines, fills, text: not one flat colour


def test_one_run_page_is_drawn(tmp_path: Path) -> None:
    result = Simulation(Scenario.from_yaml(SCENARIOS / "partition.yaml")).run()
    page = tmp_path / "run.html"
    page.write_text(run_page(result.to_dict(), "edgesim run scenarios/partition.yaml"))
    dom = _chromium("--dump-dom", page.as_uri()).stdout
    assert re.findall(r'data-chart="([a-z-]+)"><svg\b', dom) == ["timeline", "latency"]
    assert "Messages over time: partition, seed 3" in dom
    shot = tmp_path / "run.png"
    _chromium("--window-size=1200,1400", f"--screenshot={shot}", page.as_uri())
    ink, _ = _ink(shot)
    assert ink > 0.2
