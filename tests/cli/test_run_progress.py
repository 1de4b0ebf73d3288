"""``edgesim run`` says what makes it wait on stderr (image build steps), and nothing with
``--quiet``; the table and digest on stdout do not change."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgesim.cli import app
from pytest_edgesim.core import progress

BASIC = str(Path(__file__).parents[2] / "scenarios" / "basic.yaml")


@pytest.fixture
def a_build_while_the_run_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Report a build's steps where a gateway image would be built: while the topology is."""
    from pytest_edgesim.core import simulation

    real = simulation.Topology

    def topology(*args: object, **kwargs: object) -> object:
        progress.phase("building edgesim/gateway:0123 from gateway on debian:bookworm-slim")
        progress.detail("#5 [2/4] RUN pip install ...")
        progress.phase("Step 2/7 : RUN pip install paho-mqtt")
        return real(*args, **kwargs)

    monkeypatch.setattr(simulation, "Topology", topology)


@pytest.mark.usefixtures("a_build_while_the_run_is_built")
def test_build_steps_are_lines_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["run", BASIC]) == app.EXIT_OK
    captured = capsys.readouterr()
    assert captured.err == (
        "edgesim: building edgesim/gateway:0123 from gateway on debian:bookworm-slim\n"
        "edgesim: Step 2/7 : RUN pip install paho-mqtt\n"
    )
    assert "trace digest:" in captured.out and "edgesim:" not in captured.out


@pytest.mark.usefixtures("a_build_while_the_run_is_built")
@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_quiet_says_nothing(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    assert app.main(["run", BASIC, flag]) == app.EXIT_OK
    assert capsys.readouterr().err == ""


def test_the_sink_is_put_back_after_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    before = progress.set_sink(None)
    progress.set_sink(before)
    app.main(["run", BASIC])
    assert progress.set_sink(before) is before


def test_no_progress_bar_off_a_terminal_or_when_quiet() -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

    assert app._Progress(Terminal(), 10).enabled  # type: ignore[arg-type]
    assert not app._Progress(Terminal(), 10, shown=False).enabled  # type: ignore[arg-type]
