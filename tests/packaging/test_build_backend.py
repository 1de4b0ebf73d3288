"""The in-tree build backend (_build/edgesim_build.py) asks for mypy only for the opt-in
compiled build: a plain ``pip install .`` must not download a compiler it does not use."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[2] / "_build" / "edgesim_build.py"


@pytest.fixture
def backend(monkeypatch):
    monkeypatch.delenv("EDGESIM_COMPILE", raising=False)
    spec = importlib.util.spec_from_file_location("edgesim_build_under_test", BACKEND)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    # setuptools' own hook runs setup.py (it would write egg-info into the tree): only
    # what the backend adds to its answer is under test here
    monkeypatch.setattr(module._setuptools, "get_requires_for_build_wheel", lambda _=None: [])
    return module


def mypy_requirements(requires: list[str]) -> list[str]:
    return [item for item in requires if item.startswith("mypy")]


def test_a_plain_wheel_build_needs_no_mypy(backend):
    assert mypy_requirements(backend.get_requires_for_build_wheel()) == []


@pytest.mark.parametrize("value", ["0", "", "yes"])
def test_only_edgesim_compile_1_asks_for_mypy(backend, monkeypatch, value):
    monkeypatch.setenv("EDGESIM_COMPILE", value)
    assert mypy_requirements(backend.get_requires_for_build_wheel()) == []


def test_the_compiled_build_asks_for_the_pinned_mypyc(backend, monkeypatch):
    monkeypatch.setenv("EDGESIM_COMPILE", "1")
    assert mypy_requirements(backend.get_requires_for_build_wheel()) == [backend.MYPYC_REQUIREMENT]


def test_an_editable_build_never_asks_for_mypy(backend, monkeypatch):
    """Editable installs stay pure Python (a compiled module would hide source edits)."""
    monkeypatch.setenv("EDGESIM_COMPILE", "1")
    monkeypatch.setattr(backend._setuptools, "get_requires_for_build_editable", lambda _=None: [])
    assert mypy_requirements(backend.get_requires_for_build_editable()) == []


@pytest.fixture
def setup_rules(monkeypatch):
    """setup.py as a module (its ``setup()`` runs only as ``__main__``, as setuptools runs it)."""
    spec = importlib.util.spec_from_file_location(
        "edgesim_setup_under_test", BACKEND.parents[1] / "setup.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("command", ["editable_wheel", "develop"])
def test_setup_compiles_nothing_for_an_editable_install(setup_rules, monkeypatch, command):
    monkeypatch.setenv("EDGESIM_COMPILE", "1")
    monkeypatch.setattr(sys, "argv", ["setup.py", command])
    assert setup_rules.ext_modules() == []


@pytest.mark.parametrize("command", ["bdist_wheel", "build_ext"])
def test_setup_compiles_nothing_unless_asked(setup_rules, monkeypatch, command):
    monkeypatch.delenv("EDGESIM_COMPILE", raising=False)
    monkeypatch.setattr(sys, "argv", ["setup.py", command])
    assert setup_rules.ext_modules() == []


def test_setup_compiles_nothing_while_only_reading_metadata(setup_rules, monkeypatch):
    monkeypatch.setenv("EDGESIM_COMPILE", "1")
    monkeypatch.setattr(sys, "argv", ["setup.py", "dist_info"])
    assert setup_rules.ext_modules() == []


def test_setup_builds_the_native_engine_when_cargo_is_there(setup_rules, monkeypatch):
    monkeypatch.delenv("EDGESIM_NATIVE", raising=False)
    monkeypatch.setattr(setup_rules.shutil, "which", lambda name: f"/usr/bin/{name}")
    (extension,) = setup_rules.rust_extensions()
    assert extension.name == "pytest_edgesim.core._native"
    assert extension.optional  # a failed native build leaves the pure engine, not no install
    assert extension.debug is False  # editable installs too get an optimised engine


@pytest.mark.parametrize("why", ["no cargo", "EDGESIM_NATIVE=0"])
def test_setup_says_in_one_line_when_it_builds_no_native_engine(
    setup_rules, monkeypatch, capsys, why
):
    if why == "no cargo":
        monkeypatch.delenv("EDGESIM_NATIVE", raising=False)
        monkeypatch.setattr(setup_rules.shutil, "which", lambda name: None)
    else:
        monkeypatch.setenv("EDGESIM_NATIVE", "0")
    monkeypatch.setattr(sys, "argv", ["setup.py", "dist_info"])  # reading metadata: quiet
    assert setup_rules.rust_extensions() == []
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys, "argv", ["setup.py", "editable_wheel"])
    assert setup_rules.rust_extensions() == []
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("pytest-edgesim: ") and "native engine" in line
