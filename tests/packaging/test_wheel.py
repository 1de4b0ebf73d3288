"""The wheel a user installs, built from a clean copy of the source the way a user builds it:
with a Rust toolchain, one abi3 wheel holding the native engine, which runs and gives the
pure engine's digests; without one, a pure wheel that runs on the pure engine.

It builds with pip and build isolation, as a user does: it needs PyPI (setuptools,
setuptools-rust) and, for the native engine, crates.io. Where the native engine is expected
(cargo on the PATH, or ``EDGESIM_REQUIRE_NATIVE=1``) a wheel without it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pytest_edgesim import simulate

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["basic.yaml", "lossy.yaml", "partition.yaml"]

_RUN = """
import json, sys
import pytest_edgesim.core.native as native
from pytest_edgesim import simulate
digests = {name: simulate(f"{sys.argv[1]}/{name}", until="20s").trace_digest
           for name in sys.argv[2:]}
print(json.dumps({"module": native.__file__, "engine": native.engine_summary(),
                  "digests": digests}))
"""


def _native_expected() -> bool:
    if os.environ.get("EDGESIM_REQUIRE_NATIVE") == "1":
        return True
    return shutil.which("cargo") is not None and os.environ.get("EDGESIM_NATIVE") != "0"


def _copy_project(target: Path) -> Path:
    """The project as a clean checkout has it (no build output, caches or .git)."""
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
        ),
    )
    return target


def test_the_wheel_installs_the_engine_this_machine_can_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _copy_project(tmp_path / "source")
    dist = tmp_path / "dist"
    # (the checkout's cargo output holds the compiled crates: only the engine is rebuilt)
    environment = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "native" / "target")}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(dist)],
        cwd=source,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, f"the wheel build failed:\n{built.stdout}\n{built.stderr}"
    (wheel,) = dist.glob("pytest_edgesim-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        extensions = [name for name in archive.namelist() if "/_native" in name]
        installed = tmp_path / "site"
        archive.extractall(installed)
    native = _native_expected()
    if native:
        assert "-cp310-abi3-" in wheel.name, wheel.name
        assert extensions == ["pytest_edgesim/core/_native.abi3.so"]
    else:
        assert wheel.name.endswith("-py3-none-any.whl") and extensions == []

    ran = subprocess.run(
        [sys.executable, "-c", _RUN, str(ROOT / "scenarios"), *SCENARIOS],
        cwd=tmp_path,  # not the checkout: its source package must not shadow the wheel's
        env={**os.environ, "PYTHONPATH": str(installed), "EDGESIM_ENGINE": "auto"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["module"].startswith(str(installed)), report["module"]
    if native:
        assert report["engine"].startswith("native "), report["engine"]
    else:
        assert report["engine"] == "pure (the native engine is not built)"
    monkeypatch.setenv("EDGESIM_ENGINE", "pure")  # the reference
    pure = {
        name: simulate(ROOT / "scenarios" / name, until="20s").trace_digest for name in SCENARIOS
    }
    assert report["digests"] == pure
