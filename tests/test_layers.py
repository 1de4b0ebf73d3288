"""The package's folders are its layers, and these tests hold them to it (docs/architecture.md).

- Every module imports on its own, as the first import of a fresh process.
- No module imports, even lazily or for type hints only, a module that imports it back (a
  cycle through other modules counts too).
- Each folder imports only the folders below it: ``core`` < ``lockstep`` < ``gateway`` <
  ``live`` < ``docker`` < ``pytest_plugin`` < ``cli``; ``errors`` and ``_moved`` are for
  everyone, ``strategies`` sits on the core. The core imports neither pytest, Docker nor
  paho; the plugin reaches Docker through ``docker/session.py`` only; nothing imports the CLI.

The rules are read from the source (every ``import`` statement, wherever it stands), and a
copy of the package with a planted violation shows that each rule can fail.
"""

from __future__ import annotations

import ast
import pkgutil
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_edgesim

PACKAGE = Path(pytest_edgesim.__file__).parent
MODULES = sorted(
    module.name
    for module in pkgutil.walk_packages(pytest_edgesim.__path__, "pytest_edgesim.")
    if "._containers" not in module.name and not module.name.endswith("__main__")
)

#: the folder (or root module) a module belongs to -> its rank; a module may import only
#: modules of its own folder or of a lower rank
RANKS = {
    "root": 6,  # the public names of __init__ come from every layer but the CLI
    "errors": 0,
    "_moved": 0,
    "core": 1,
    "strategies": 2,
    "reporting": 2,  # the charts and the HTML page, on the core (no pytest)
    "lockstep": 2,
    "gateway": 3,
    "live": 4,
    "docker": 5,
    "pytest_plugin": 6,
    "cli": 7,
}
#: third-party packages a folder must not import
FORBIDDEN = {
    "core": {"pytest", "_pytest", "docker", "paho", "hypothesis", "xdist"},
    "lockstep": {"pytest", "_pytest", "docker", "paho", "hypothesis"},
    "reporting": {"pytest", "_pytest", "docker", "paho", "hypothesis", "xdist"},
    "gateway": {"pytest", "_pytest", "docker", "hypothesis"},
    "live": {"pytest", "_pytest", "docker", "hypothesis"},
}
#: the one module of the Docker folder the plugin may import
PLUGIN_DOOR_TO_DOCKER = "pytest_edgesim.docker.session"


def module_files(package: Path) -> dict[str, Path]:
    """``pytest_edgesim.x.y`` -> its file, for every module of the package at ``package``."""
    found = {}
    for path in package.rglob("*.py"):
        if "_containers" in path.parts:
            continue
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """``(imported name, line)`` for every import in ``path``: package modules by their module
    (``from P import submodule`` names the submodule), anything else by its top-level name."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = submodules if all(n in modules for n in submodules) else [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "pytest_edgesim":
                yield name.split(".")[0], node.lineno
                continue
            while name not in modules and "." in name:
                name = name.rpartition(".")[0]
            yield name, node.lineno


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "root"


def layer_violations(package: Path) -> list[str]:
    """Every import that breaks a layer rule, as ``file:line: what``."""
    modules = module_files(package)
    problems = []
    for module, path in sorted(modules.items()):
        layer = layer_of(module)
        where = f"{path.relative_to(package.parent)}"
        for name, line in imports(path, modules):
            if not name.startswith("pytest_edgesim"):
                if name in FORBIDDEN.get(layer, ()):
                    problems.append(f"{where}:{line}: {layer} imports {name}")
                continue
            target = layer_of(name)
            if target == "root" or target == layer:
                continue
            if RANKS.get(target, 99) > RANKS.get(layer, -1):
                problems.append(f"{where}:{line}: {layer} imports {name}, a layer above it")
            if layer == "pytest_plugin" and target == "docker" and name != PLUGIN_DOOR_TO_DOCKER:
                problems.append(
                    f"{where}:{line}: the plugin imports {name}, not {PLUGIN_DOOR_TO_DOCKER}"
                )
    return problems


def import_cycles(package: Path) -> list[list[str]]:
    """The groups of modules that import each other, directly or round a cycle."""
    modules = module_files(package)
    graph = {
        module: {name for name, _ in imports(path, modules) if name in modules and name != module}
        for module, path in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_the_package_has_modules_to_check() -> None:
    assert "pytest_edgesim.lockstep.host" in MODULES and len(MODULES) > 50


@pytest.mark.parametrize("module", MODULES)
def test_a_module_imports_first(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert import_cycles(PACKAGE) == []


def test_every_folder_imports_only_the_layers_below_it() -> None:
    assert layer_violations(PACKAGE) == []


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "pytest_edgesim"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("_containers", "__pycache__"))
    return copy


@pytest.mark.parametrize(
    ("module", "planted", "expected"),
    [
        ("core/engine.py", "import pytest", "core imports pytest"),
        ("core/network.py", "import docker", "core imports docker"),
        ("core/node.py", "from pytest_edgesim.docker import labels", "a layer above it"),
        ("gateway/logic.py", "import pytest_edgesim.live.run", "a layer above it"),
        ("lockstep/sdk.py", "import paho.mqtt.client", "lockstep imports paho"),
        (
            "pytest_plugin/hooks.py",
            "from pytest_edgesim.docker import engine",
            "not pytest_edgesim.docker.session",
        ),
        ("docker/engine.py", "from pytest_edgesim.cli import app", "a layer above it"),
    ],
)
def test_a_planted_layer_violation_is_found(
    package_copy: Path, module: str, planted: str, expected: str
) -> None:
    path = package_copy / module
    path.write_text(path.read_text() + f"\n\ndef planted():\n    {planted}\n")
    problems = layer_violations(package_copy)
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith(f"pytest_edgesim/{module}:")


def test_a_planted_import_cycle_is_found(package_copy: Path) -> None:
    path = package_copy / "core" / "units.py"
    path.write_text(path.read_text() + "\n\nif False:\n    from pytest_edgesim.core import trace\n")
    trace = package_copy / "core" / "trace.py"
    trace.write_text(
        trace.read_text() + "\n\nif False:\n    from pytest_edgesim.core import units\n"
    )
    assert ["pytest_edgesim.core.trace", "pytest_edgesim.core.units"] in import_cycles(package_copy)
