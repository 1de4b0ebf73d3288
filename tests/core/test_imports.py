"""Every module of the package imports on its own, as the first import of a fresh process
(an import cycle shows only when the modules are imported in an unlucky order)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import pytest_edgesim

MODULES = sorted(
    module.name
    for module in pkgutil.walk_packages(pytest_edgesim.__path__, "pytest_edgesim.")
    if "._containers" not in module.name and not module.name.endswith("__main__")
)


def test_the_package_has_modules_to_check():
    assert "pytest_edgesim.lockstep.node" in MODULES and len(MODULES) > 50


@pytest.mark.parametrize("module", MODULES)
def test_a_module_imports_first(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
