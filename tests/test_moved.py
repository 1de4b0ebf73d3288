"""0.1's module paths keep working for one release, with a DeprecationWarning naming the new one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_edgesim._moved import MOVED


def run_python(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "always::DeprecationWarning", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_is_the_new_module_with_a_warning(old: str) -> None:
    new = MOVED[old]
    done = run_python(
        "-c",
        f"import importlib, pytest_edgesim.{new} as new; "
        f"old = importlib.import_module('pytest_edgesim.{old}'); print(old is new)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert f"pytest_edgesim.{old} moved to pytest_edgesim.{new}" in done.stderr


def test_a_name_from_an_old_path_is_the_same_object() -> None:
    with pytest.warns(DeprecationWarning, match="pytest_edgesim.node moved"):
        from pytest_edgesim.node import Node as OldNode  # type: ignore[import-not-found]
    from pytest_edgesim import Node

    assert OldNode is Node


def test_the_old_container_entry_point_still_runs_as_a_program() -> None:
    """``python -m pytest_edgesim.gateway_main`` (a user's Dockerfile may name it) runs the
    gateway's entry point: with no configuration it says so and exits 2."""
    done = run_python("-m", "pytest_edgesim.gateway_main")
    assert done.returncode == 2, done.stderr
    assert "EDGESIM_GATEWAY_CONFIG is not set" in done.stderr


def test_a_name_that_never_existed_is_still_an_import_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        import pytest_edgesim.no_such_module  # type: ignore[import-not-found]  # noqa: F401
