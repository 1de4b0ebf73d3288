"""The opt-in compiled build (``EDGESIM_COMPILE=1``, docs/architecture.md) builds from a
clean copy of the source the way a user builds it, imports as compiled modules and gives
the same traces as the pure package this suite runs on, with results that pickle and copy.

It needs what a user's compiled build needs: a C compiler, and PyPI for the isolated build
environment (mypy). CI has both; it is not skipped when they are missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from pytest_edgesim import simulate

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["basic.yaml", "lossy.yaml", "partition.yaml", "thousand-sensors.yaml"]

_DIGESTS = """
import copy, json, pickle, sys
import pytest_edgesim.core.engine, pytest_edgesim.core.network
from pytest_edgesim import simulate
modules = [pytest_edgesim.core.engine.__file__, pytest_edgesim.core.network.__file__]
results = {name: simulate(f"{sys.argv[1]}/{name}", until="20s") for name in sys.argv[2:]}
digests = {name: result.trace_digest for name, result in results.items()}
# results cross processes (multiprocessing, xdist) and are copied: compiled classes too
copied = [pickle.loads(pickle.dumps(result)) == result == copy.deepcopy(result)
          for result in results.values()]
print(json.dumps({"modules": modules, "digests": digests, "copied": copied}))
"""


def _copy_project(target: Path, *left_out: str) -> Path:
    """The project as a user's clean checkout has it (no build output, caches or .git),
    without the ``left_out`` names."""
    shutil.copytree(
        ROOT,
        target,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
            "target",  # the native engine's cargo output
            "_native*.so",  # and the extension an editable install built in place
            *left_out,
        ),
    )
    return target


def test_the_compiled_wheel_imports_compiled_and_gives_the_same_digests(tmp_path: Path) -> None:
    source = _copy_project(tmp_path / "source")
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(dist)],
        cwd=source,
        env={**os.environ, "EDGESIM_COMPILE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, f"the compiled build failed:\n{built.stdout}\n{built.stderr}"
    (wheel,) = dist.glob("pytest_edgesim-*.whl")
    assert "none-any" not in wheel.name, f"{wheel.name} is not a platform (compiled) wheel"

    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(installed)
    ran = subprocess.run(
        [sys.executable, "-c", _DIGESTS, str(ROOT / "scenarios"), *SCENARIOS],
        cwd=tmp_path,  # not the checkout: its source package must not shadow the wheel's
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    for module in report["modules"]:
        assert module.startswith(str(installed)) and module.endswith(".so"), module
    pure = {
        name: simulate(ROOT / "scenarios" / name, until="20s").trace_digest for name in SCENARIOS
    }
    assert report["digests"] == pure
    assert report["copied"] == [True] * len(SCENARIOS), "a result did not survive pickle/copy"

    # The core's own tests, against the compiled package: from a directory that holds the
    # tests and the scenarios but no source package to shadow the wheel's.
    suite = _copy_project(tmp_path / "suite", "pytest_edgesim")
    tested = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "tests/core",
            "-x",
        ],
        cwd=suite,
        env={**os.environ, "PYTHONPATH": str(installed), "PYTEST_ADDOPTS": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert " passed" in tested.stdout.splitlines()[-1]
