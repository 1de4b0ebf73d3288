"""``--edgesim-html PATH``: the session as one self-contained HTML page with charts.

The page is drawn where the session's reports arrive (a serial run, or the xdist
controller) from the same record as the JSON report
(:class:`~pytest_edgesim.pytest_plugin.session_report.SessionReport`): what each test did
travels there on its reports, each scenario run with its compact profile (timeline and
latency histograms). matplotlib is the ``[html]`` extra; asking for the page without it
stops the run at start-up with the command that installs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_edgesim.pytest_plugin import settings
from pytest_edgesim.pytest_plugin.session_report import session_report_key

PLUGIN_NAME = "edgesim-html"


def configure(config: pytest.Config) -> None:
    """Register the page's writer when ``--edgesim-html`` asks for it (controller only)."""
    path = settings.html_path(config)
    if path is None:
        return
    from pytest_edgesim.reporting.charts import ChartsUnavailable, require_matplotlib

    try:
        require_matplotlib(settings.SETTINGS["html"][0])
    except ChartsUnavailable as error:
        raise pytest.UsageError(str(error)) from None
    if path.is_dir():
        raise pytest.UsageError(f"--edgesim-html {path}: is a directory, not a file")
    config.pluginmanager.register(HtmlReport(path), PLUGIN_NAME)


def session_data(config: pytest.Config) -> dict[str, Any]:
    """The session as the page reads it: the JSON report's data, and the baseline
    comparison when the session made one (a ``comparison`` key or attribute)."""
    report = config.stash[session_report_key]
    data = report.to_dict()
    comparison = data.get("comparison", getattr(report, "comparison", None))
    if comparison is not None:
        data["comparison"] = comparison
    return data


class HtmlReport:
    """Writes the page at the end of the session and says where in the summary."""

    def __init__(self, path: Path):
        self.path = path
        self.problem: str | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from pytest_edgesim.reporting.page import session_page

        try:
            text = session_page(session_data(session.config), title="edgesim report")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(text, encoding="utf-8")
        except OSError as error:
            self.problem = f"cannot write {self.path}: {error.strerror}"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.problem is not None:
            terminalreporter.write_line(f"edgesim: HTML report: {self.problem}", red=True)
        elif terminalreporter.verbosity >= -1:
            terminalreporter.write_line(f"edgesim: HTML report written to {self.path}")
