"""pytest's outcome semantics, tier by tier: a deterministic, a statistical and a sequential
edgesim test end as a plain pytest test with the same body and marks does, serially and
under xdist (pass, fail, error, xfail strict and not, skip, skipif, ``pytest.skip()``).

A statistical test's body is its trials, so "passes" means every trial passes and "fails"
that every trial fails; the marks meet the verdict. Kept small: every edgesim test is a few
trials of an empty body.
"""

from __future__ import annotations

import re

import pytest

#: row -> (marks, fixtures, body); a fixture ``broken`` fails at setup
ROWS = {
    "pass": ("", "", "pass"),
    "fail": ("", "", "assert False"),
    "error_setup": ("", "broken", "pass"),
    "error_usage": ("", "", "raise UsageError('set_link(loss=1.5)')"),
    "xfail_failing": ("@pytest.mark.xfail(reason='known')", "", "assert False"),
    "xfail_passing": ("@pytest.mark.xfail(reason='known')", "", "pass"),
    "xfail_strict_failing": ("@pytest.mark.xfail(reason='known', strict=True)", "", "assert False"),
    "xfail_strict_passing": ("@pytest.mark.xfail(reason='known', strict=True)", "", "pass"),
    "xfail_raises_other": ("@pytest.mark.xfail(raises=KeyError)", "", "raise ValueError"),
    "xfail_not_run": ("@pytest.mark.xfail(run=False)", "", "assert False"),
    "skip": ("@pytest.mark.skip(reason='not today')", "", "assert False"),
    "skipif": ("@pytest.mark.skipif(True, reason='not here')", "", "assert False"),
    "skip_in_body": ("", "", "pytest.skip('not today')"),
}
TIERS = {
    "plain": "",
    "deterministic": "@pytest.mark.deterministic",
    "statistical": "@pytest.mark.statistical(trials=3)",
    # 12 all-passing trials demonstrate 0.5, 12 all-failing ones refute it
    "sequential": "@pytest.mark.statistical(trials=12, min_pass_rate=0.5, sequential=True)",
}
#: what pytest makes of the plain test (checked too: the matrix compares with pytest itself)
PLAIN = {
    "pass": "PASSED",
    "fail": "FAILED",
    "error_setup": "ERROR",
    "error_usage": "ERROR",
    "xfail_failing": "XFAIL",
    "xfail_passing": "XPASS",
    "xfail_strict_failing": "XFAIL",
    "xfail_strict_passing": "FAILED",
    "xfail_raises_other": "FAILED",
    "xfail_not_run": "XFAIL",
    "skip": "SKIPPED",
    "skipif": "SKIPPED",
    "skip_in_body": "SKIPPED",
}


def _matrix_file() -> str:
    parts = [
        "import pytest",
        "from pytest_edgesim import UsageError",
        "",
        "@pytest.fixture",
        "def broken():",
        "    raise RuntimeError('the fixture is broken')",
        "",
    ]
    for row, (marks, fixtures, body) in ROWS.items():
        for tier, tier_mark in TIERS.items():
            arguments = ", ".join(name for name in (fixtures, "edgesim_seed") if name)
            if tier == "plain":
                arguments = fixtures
            parts += [line for line in (marks, tier_mark) if line]
            parts += [f"def test_{row}__{tier}({arguments}):", f"    {body}", ""]
    return "\n".join(parts)


_OUTCOME_LINE = re.compile(
    r"(?:(?P<id1>\S+::test_\w+) (?P<o1>[A-Z]+)|(?P<o2>[A-Z]+) (?P<id2>\S+::test_\w+))"
)


def _outcomes(lines: list[str]) -> dict[str, str]:
    """``test name -> PASSED/FAILED/...`` from ``-v`` lines (serial or xdist's form)."""
    found: dict[str, str] = {}
    for line in lines:
        match = _OUTCOME_LINE.search(line)
        if match is None:
            continue
        nodeid = match.group("id1") or match.group("id2")
        outcome = match.group("o1") or match.group("o2")
        if outcome in ("PASSED", "FAILED", "ERROR", "XFAIL", "XPASS", "SKIPPED", "UNDECIDED"):
            found.setdefault(nodeid.rsplit("::", 1)[1], outcome)
    return found


@pytest.mark.parametrize("workers", [None, 2], ids=["serial", "xdist"])
def test_every_tier_ends_as_pytest_ends_the_plain_test(
    pytester: pytest.Pytester, workers: int | None
) -> None:
    pytester.makepyfile(test_matrix=_matrix_file())
    arguments = ["-v", "-p", "no:cacheprovider", "--edgesim-undecided=fail"]
    if workers is None:
        result = pytester.runpytest(*arguments)
    else:
        result = pytester.runpytest_subprocess("-n", str(workers), *arguments)
    outcomes = _outcomes(result.stdout.lines)
    expected = {f"test_{row}__{tier}": PLAIN[row] for row in ROWS for tier in TIERS}
    assert outcomes == expected
