"""Progress while a user waits: trials with -v, image build steps past output capture, and
nothing under -q."""

from __future__ import annotations

import pytest

TRIALS = """
import pytest

@pytest.mark.statistical(trials=3, min_pass_rate=0.1)
@pytest.mark.edgesim("small.yaml")
def test_trials(edge_scenario, edgesim_seed):
    edge_scenario.run()
    print("the test's own output")
    assert edgesim_seed % 2
"""

BUILD = """
import pytest
from pytest_edgesim.core import progress

@pytest.fixture
def image():
    progress.phase("building edgesim/gateway:0123 from gateway on debian:bookworm-slim")
    progress.detail("a line of the build's output")
    progress.phase("Step 2/7 : RUN pip install paho-mqtt")
    return "edgesim/gateway:0123"

def test_uses_an_image(image):
    print("captured, as usual")
"""


def test_verbose_shows_a_line_per_trial(pytester: pytest.Pytester, small_scenario: str) -> None:
    pytester.makepyfile(TRIALS)
    result = pytester.runpytest("-v", "-p", "no:randomly")
    result.stdout.fnmatch_lines(
        [
            "    trial 1/3 (seed *): *",
            "    trial 2/3 (seed *): *",
            "    trial 3/3 (seed *): *",
            "*::test_trials *",
        ]
    )
    outcomes = [line.split(": ")[-1] for line in result.outlines if "    trial " in line]
    assert sorted(set(outcomes)) <= ["failed", "passed"] and len(outcomes) == 3
    assert "the test's own output" not in result.stdout.str()  # capture still holds


@pytest.mark.parametrize("verbosity", [[], ["-q"]])
def test_default_and_quiet_show_no_trial_lines(
    pytester: pytest.Pytester, small_scenario: str, verbosity: list[str]
) -> None:
    pytester.makepyfile(TRIALS)
    result = pytester.runpytest(*verbosity, "-p", "no:randomly")
    assert "trial 1/3" not in result.stdout.str()


def test_build_steps_are_shown_past_capture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BUILD)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "edgesim: building edgesim/gateway:0123 from gateway on debian:bookworm-slim",
            "edgesim: Step 2/7 : RUN pip install paho-mqtt",
        ]
    )
    output = result.stdout.str()
    assert "a line of the build's output" not in output  # details are not phases
    assert "captured, as usual" not in output


def test_quiet_shows_no_build_steps(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BUILD)
    result = pytester.runpytest("-q", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "edgesim: building" not in result.stdout.str()


def test_an_xdist_worker_writes_its_build_steps_to_stderr(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BUILD)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stderr.fnmatch_lines(
        ["[[]gw?[]] edgesim: building edgesim/gateway:0123 from gateway on debian:bookworm-slim"]
    )


def test_the_sink_is_restored_after_the_session(pytester: pytest.Pytester) -> None:
    from pytest_edgesim.core import progress

    before = progress.set_sink(None)
    progress.set_sink(before)
    pytester.makepyfile(BUILD)
    pytester.runpytest("-p", "no:randomly")
    assert progress.set_sink(before) is before


def test_on_a_terminal_a_status_line_ends_saying_how_many_trials_ran(
    pytester: pytest.Pytester, small_scenario: str
) -> None:
    pytester.makepyfile(TRIALS)
    pytester.makeconftest(
        """
        import pytest
        from pytest_edgesim.pytest_plugin import progress

        @pytest.hookimpl(trylast=True)
        def pytest_configure(config):
            progress.STATUS_AFTER_S = 0.0  # (no wait for the status line in this test)
            reporter = config.pluginmanager.getplugin("terminalreporter")
            reporter.isatty = lambda: True
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    # one line rewritten in place ("\r" parts: pytester splits them into lines), which ends
    # saying how many trials ran; the file's name then starts the line of the outcome
    result.stdout.fnmatch_lines(
        [
            "*.py::test_trials: trial 1/3",
            "*.py::test_trials: trial 2/3",
            "*.py::test_trials: trial 3/3",
            "*.py::test_trials: 3 trials run",
            "test_on_a_terminal_*.py [.F]*[[]100%[]]",
        ],
        consecutive=True,
    )
