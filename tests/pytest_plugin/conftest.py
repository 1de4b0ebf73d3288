"""The plugin is tested the way pytest tests plugins: ``pytester`` runs small test files."""

from __future__ import annotations

# Imported once here so that pytester's in-process runs, which forget the modules imported
# during each run, do not import (and assertion-rewrite) them again every time.
import hypothesis  # noqa: F401
import pytest

import pytest_edgesim.core.scenario
import pytest_edgesim.core.simulation  # noqa: F401

SMALL_SCENARIO = """\
edgesim: 1
name: small
seed: 11
duration: 4s
devices:
  - name: sensor
    count: 2
    topic: sensors/{name}
    publish: {period: 500ms}
gateways:
  - name: gw
    subscribe: sensors/#
    aggregate: {count: 4}
network:
  default: {latency: 2ms}
"""


@pytest.fixture
def small_scenario_text() -> str:
    """The small scenario's YAML (a fixture, not an import: ``conftest`` names several
    modules in this suite, and which one ``import conftest`` finds depends on the order)."""
    return SMALL_SCENARIO


@pytest.fixture
def small_scenario(pytester: pytest.Pytester) -> str:
    """Writes ``small.yaml`` beside the test files; returns its file name."""
    pytester.makefile(".yaml", small=SMALL_SCENARIO)
    return "small.yaml"


@pytest.fixture(autouse=True)
def _not_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The small test files run as on a developer's terminal, also when this suite runs in
    CI: with ``CI`` set, pytest prints whole summary lines and an undecided sequential test
    fails (``--edgesim-undecided=auto``). A test about CI sets ``CI`` itself."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
