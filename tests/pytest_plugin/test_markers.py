"""Markers: registration, argument checks at collection, tiers and tier selection."""

from __future__ import annotations

import pytest

TIERS = """
import pytest

def test_unrelated():
    pass

def test_unmarked(edge_coordinator):
    pass

@pytest.mark.deterministic
def test_deterministic():
    pass

@pytest.mark.statistical(trials=3)
def test_statistical():
    pass
"""


def test_markers_work_under_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(duration="2s")
        @pytest.mark.deterministic(replay_check=False)
        def test_marked():
            pass
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.edgesim(scenario=None, gateway=None, **overrides):*",
            "@pytest.mark.deterministic(replay_check=False):*",
            "@pytest.mark.statistical(trials=N, confidence=0.95, min_pass_rate=*",
        ]
    )


@pytest.mark.parametrize(
    ("markers", "fixture", "problem"),
    [
        ('edgesim(sceanrio="a.yaml")', "edge_scenario", "*unknown argument sceanrio='a.yaml'*"),
        ("edgesim(scenario=3)", "edge_scenario", "*edgesim(scenario=3): expected the path*"),
        ('edgesim("a.yaml", "b.yaml")', "edge_scenario", "*only positional argument, got 2*"),
        ('edgesim(seed="x")', "edge_scenario", "*edgesim(seed='x'): expected an integer*"),
        ('edgesim(duration="soon")', "edge_scenario", "*edgesim(duration='soon'): must be*"),
        ('edgesim(overrides=["a"])', "edge_scenario", "*overrides=?'a'?): expected a dict*"),
        ('edgesim(gateway="rust")', "edge_scenario", "*unknown implementation 'rust'*"),
        ("edgesim(gateway=[])", "edge_scenario", "*edgesim(gateway=[]): expected one of*"),
        ('edgesim(gateway="docker")', "edgesim_seed", "*does not use*"),
        ("deterministic(replay_check=1)", "edge_scenario", "*replay_check=1): expected True*"),
        ("deterministic(repaly_check=True)", "edge_scenario", "*unknown argument repaly_check*"),
        ("deterministic(True)", "edge_scenario", "*keyword arguments only*"),
    ],
)
def test_bad_marker_arguments_are_collection_errors(
    pytester: pytest.Pytester, markers: str, fixture: str, problem: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{markers}
        def test_bad({fixture}):
            pass

        def test_fine():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR collecting*", "*::test_bad: invalid edgesim markers:", problem]
    )
    assert "Traceback" not in result.stdout.str()


def test_both_tier_markers_are_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.deterministic

        @pytest.mark.statistical(trials=5)
        def test_both():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*::test_both: invalid edgesim markers:", "*marked both deterministic and statistical*"]
    )


@pytest.mark.parametrize(
    ("args", "selected", "deselected"),
    [
        ([], 4, 0),
        (["--edgesim-tier=all"], 4, 0),
        (["--edgesim-tier=deterministic"], 3, 1),
        (["--edgesim-tier=statistical"], 2, 2),
        (["-m", "deterministic"], 2, 2),
        (["-m", "statistical"], 1, 3),
    ],
)
def test_tier_selection(
    pytester: pytest.Pytester, args: list[str], selected: int, deselected: int
) -> None:
    """--edgesim-tier leaves non-edgesim tests alone; unmarked edgesim tests are deterministic."""
    pytester.makepyfile(TIERS)
    result = pytester.runpytest("--collect-only", "-q", *args)
    result.stdout.fnmatch_lines(
        [
            f"{selected}/4 tests collected ({deselected} deselected)*"
            if deselected
            else f"{selected} tests collected*"
        ]
    )


def test_ini_tier(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nedgesim_tier = statistical\n")
    pytester.makepyfile(TIERS)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_unrelated", "*test_statistical", "2/4 tests collected*"])
