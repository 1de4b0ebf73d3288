"""``edgesim run --plot``: the run's charts as a page, or as a folder of a page and SVGs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from pytest_edgesim.cli.app import EXIT_OK, EXIT_USAGE, main

PARTITION = str(Path(__file__).parents[2] / "scenarios" / "partition.yaml")


def test_a_folder_gets_the_page_and_one_svg_per_chart(capsys, tmp_path: Path) -> None:
    target = tmp_path / "plots" / "partition"
    assert main(["run", PARTITION, "--seed", "5", "--plot", str(target)]) == EXIT_OK
    out = capsys.readouterr().out
    assert sorted(path.name for path in target.iterdir()) == [
        "latency.svg",
        "report.html",
        "timeline.svg",
    ]
    assert f"charts written to {target / 'timeline.svg'}" in out
    timeline = (target / "timeline.svg").read_text()
    assert timeline.startswith('<?xml version="1.0" encoding="utf-8"?>\n<svg')
    assert "Messages over time: partition, seed 5" in timeline
    assert "partition" in timeline and "messages per second" in timeline
    page = (target / "report.html").read_text()
    assert re.findall(r'data-chart="([a-z-]+)"><svg', page) == ["timeline", "latency"]
    assert "edgesim run " in page and "--seed 5" in page
    digest = re.search(r"trace digest: ([0-9a-f]{64})", out)
    assert digest is not None and digest[1] in page


def test_an_html_file_gets_the_page_alone(capsys, tmp_path: Path) -> None:
    target = tmp_path / "run.html"
    assert main(["run", PARTITION, "--plot", str(target)]) == EXIT_OK
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run.html"]
    assert "Latency distribution per flow: partition" in target.read_text()


def test_the_same_run_draws_the_same_charts(capsys, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert main(["run", PARTITION, "--plot", str(tmp_path / name)]) == EXIT_OK
    for chart in ("timeline.svg", "latency.svg", "report.html"):
        assert (tmp_path / "a" / chart).read_bytes() == (tmp_path / "b" / chart).read_bytes()


def test_a_file_that_is_not_html_is_refused_before_the_run(capsys, tmp_path: Path) -> None:
    target = tmp_path / "plot.png"
    target.write_text("")
    assert main(["run", PARTITION, "--plot", str(target)]) == EXIT_USAGE
    err = capsys.readouterr()
    assert "--plot" in err.err and "not a folder" in err.err
    assert "trace digest" not in err.out


def test_without_matplotlib_it_says_how_to_install_it(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["run", PARTITION, "--plot", str(tmp_path / "x")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == (
        "edgesim: --plot draws its charts with matplotlib, which is not installed: "
        "pip install 'pytest-edgesim[html]'\n"
    )
    assert not (tmp_path / "x").exists()
