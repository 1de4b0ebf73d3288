"""What edgesim knows about one test while it runs, and the scenario it asks for.

Per-test state lives in the item's stash (:func:`item_record`); :func:`item_scenario` loads
the scenario the test's ``edgesim`` marker names, once per test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_edgesim.pytest_plugin import settings
from pytest_edgesim.pytest_plugin.markers import SHORTHAND_OVERRIDES

if TYPE_CHECKING:
    from pytest_edgesim.core.edge_scenario import EdgeScenario
    from pytest_edgesim.core.scenario import Scenario


# --- per-item state -----------------------------------------------------------------------
@dataclass
class ItemRecord:
    """What edgesim knows about one test while it runs (kept in the item's stash)."""

    seeds: list[int] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    live: list[EdgeScenario] = field(default_factory=list)
    scenario: tuple[Scenario, int | None] | None = None
    #: the marker's scenario could not be loaded (missing or invalid): nothing to replay
    scenario_failed: bool = False


_item_record_key = pytest.StashKey[ItemRecord]()


def item_record(item: pytest.Item) -> ItemRecord:
    record = item.stash.get(_item_record_key, None)
    if record is None:
        record = item.stash[_item_record_key] = ItemRecord()
    return record


# --- loading the scenario -----------------------------------------------------------------
def fail_item(item: pytest.Item, message: str) -> NoReturn:
    """End ``item`` with ``message`` alone (no traceback), naming the test."""
    pytest.fail(f"{item.nodeid}: {message}", pytrace=False)


def scenario_loaded(item: pytest.Item) -> bool:
    """False when the test's scenario file was missing or invalid (a replay command or a
    counterexample would be of no use)."""
    return not item_record(item).scenario_failed


def _find_scenario_file(item: pytest.Item, path: str | Path) -> Path:
    given = Path(path)
    places = [given] if given.is_absolute() else [item.path.parent / given]
    directory = settings.scenario_dir(item.config)
    if directory is not None and not given.is_absolute():
        places.append(directory / given)
    for place in places:
        if place.is_file():
            return place
    item_record(item).scenario_failed = True
    looked = "\n".join(f"  {place}" for place in places)
    hint = (
        ""
        if directory is not None or given.is_absolute()
        else "\n  (no scenario directory: set --edgesim-scenario-dir or the ini key "
        "edgesim_scenario_dir to look there too)"
    )
    fail_item(item, f"scenario file {str(path)!r} not found; looked in:\n{looked}{hint}")


def _marker_overrides(item: pytest.Item) -> tuple[str | Path | None, dict[str, Any]]:
    marker = item.get_closest_marker("edgesim")
    if marker is None:
        return None, {}
    path = marker.args[0] if marker.args else marker.kwargs.get("scenario")
    overrides = dict(marker.kwargs.get("overrides") or {})
    overrides.update(
        {key: marker.kwargs[key] for key in SHORTHAND_OVERRIDES if key in marker.kwargs}
    )
    return path, overrides


def item_scenario(item: pytest.Item) -> tuple[Scenario, int | None]:
    """The scenario the test's marker names, with its overrides, and the marker's seed."""
    record = item_record(item)
    if record.scenario is not None:
        return record.scenario
    from pytest_edgesim.core.edge_scenario import minimal_scenario
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.errors import ScenarioError

    path, overrides = _marker_overrides(item)
    problem: ScenarioError | None = None
    try:
        if path is None:
            scenario = minimal_scenario()
        else:
            scenario = Scenario.from_yaml(_find_scenario_file(item, path))
        if overrides:
            scenario = scenario.with_overrides(overrides)
    except ScenarioError as error:
        problem = error  # (failed outside the handler: the report shows the problem once)
    if problem is not None:
        record.scenario_failed = True
        where = "the built-in minimal scenario" if path is None else f"scenario {str(path)!r}"
        given = f" (with the marker's overrides {overrides!r})" if overrides else ""
        fail_item(item, f"{where}{given} is invalid:\n{problem}")
    record.scenario = (scenario, overrides.get("seed"))
    return record.scenario
