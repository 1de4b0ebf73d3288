"""``edgesim run`` on a scenario with a ``swarm:`` section says what the seed drew."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_edgesim import Scenario, simulate
from pytest_edgesim.cli.app import EXIT_OK, main

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "swarm-gateway.yaml"


def test_run_prints_the_swarm_profile_of_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SCENARIO), "--seed", "4"]) == EXIT_OK
    out = capsys.readouterr().out
    profile = simulate(Scenario.from_yaml(SCENARIO), seed=4).swarm_profile
    assert profile is not None
    assert f"swarm profile (seed 4): {profile.describe()}\n" in out
