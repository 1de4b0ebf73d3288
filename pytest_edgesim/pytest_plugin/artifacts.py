"""``--edgesim-artifacts DIR``: a failing test's scenario, written as a file ``edgesim run``
accepts as is.

The counterexample of a failing test is the scenario its failing run used, with that run's
seed written into it: for a Hypothesis test, the scenario arguments of the falsifying example
(any :class:`~pytest_edgesim.core.scenario.Scenario` among the test function's arguments,
with its ``seed`` argument if it has one); otherwise the scenario of each ``edge_scenario``
the failing run used (the first failing trial of a statistical test). One file per test,
named after the node id; the failure's ``edgesim`` section names it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgesim.pytest_plugin import settings
from pytest_edgesim.pytest_plugin.items import item_record, scenario_loaded

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario import Scenario

NAME_LIMIT = 120
_written_key = pytest.StashKey[list[Path]]()


def written(item: pytest.Item) -> list[Path]:
    """The counterexample files written for ``item`` (none unless it failed)."""
    return item.stash.get(_written_key, [])


def file_stem(nodeid: str) -> str:
    """A file name for ``nodeid``: its characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("_.") or "test"
    return stem[-NAME_LIMIT:]


def _test_code(item: pytest.Item) -> Any:
    """The code object of the test's own body (Hypothesis wraps it)."""
    function = getattr(item, "obj", None)
    handle = getattr(function, "hypothesis", None)
    inner = getattr(handle, "inner_test", function)
    return getattr(inner, "__code__", None)


def _from_arguments(item: pytest.Item, tb: TracebackType | None) -> list[tuple[Scenario, int]]:
    """The scenarios among the test function's arguments in the failing call's traceback."""
    from pytest_edgesim.core.scenario import Scenario

    code = _test_code(item)
    while tb is not None:
        frame = tb.tb_frame
        if code is not None and frame.f_code is code:
            values = frame.f_locals
            names = frame.f_code.co_varnames[: frame.f_code.co_argcount]
            seed = values.get("seed")
            found = []
            for name in names:
                scenario = values.get(name)
                if isinstance(scenario, Scenario):
                    run_seed = seed if isinstance(seed, int) else scenario.seed
                    found.append((scenario, int(run_seed)))
            return found
        tb = tb.tb_next
    return []


def _from_fixtures(item: pytest.Item) -> list[tuple[Scenario, int]]:
    """The scenario and seed of each ``edge_scenario`` that ran in this call."""
    return [(edge.scenario, int(edge.seed)) for edge in item_record(item).live if edge.runs]


def save_counterexamples(item: pytest.Item, call: pytest.CallInfo[None], where: str) -> None:
    """Write the failing call's scenarios to the artifacts directory, once per test
    (``where``: which run failed, for the file's header)."""
    directory = settings.artifacts_dir(item.config)
    if directory is None or written(item) or call.excinfo is None:
        return
    if not scenario_loaded(item):
        return
    found = _from_arguments(item, call.excinfo.tb) or _from_fixtures(item)
    if not found:
        return
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    stem = file_stem(item.nodeid)
    for number, (scenario, seed) in enumerate(found, start=1):
        path = directory / (f"{stem}.yaml" if number == 1 else f"{stem}-{number}.yaml")
        path.write_text(_file_text(item.nodeid, scenario, seed, where, path), encoding="utf-8")
        paths.append(path)
    item.stash[_written_key] = paths


def _file_text(nodeid: str, scenario: Scenario, seed: int, where: str, path: Path) -> str:
    if scenario.seed != seed:
        scenario = scenario.with_overrides({"seed": seed})
    header = [
        f"# counterexample of {nodeid} ({where}, seed {seed})",
        f"# run it: edgesim run {shlex.quote(str(path))}",
        "# (what the test did between runs, such as partitions or link changes, is not in it)",
    ]
    if scenario.source:
        header.append(f"# from {scenario.source}")
    return "\n".join(header) + "\n" + scenario.to_yaml()
