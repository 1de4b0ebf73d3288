"""setup.py's rules: the native engine is built when cargo is there, and when it is not (or
``EDGESIM_NATIVE=0``) the building command says so in one line, the metadata hooks not at all;
``EDGESIM_NATIVE=1`` requires it; wheels are abi3, editable installs are not."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[2] / "setup.py"


@pytest.fixture
def setup_rules(monkeypatch):
    """setup.py as a module (its ``setup()`` runs only as ``__main__``, as setuptools runs it)."""
    spec = importlib.util.spec_from_file_location("edgesim_setup_under_test", SETUP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_edgesim_native_1_requires_the_native_engine(setup_rules, monkeypatch):
    """What the wheel builds in CI set: no quiet pure wheel."""
    monkeypatch.setenv("EDGESIM_NATIVE", "1")
    monkeypatch.setattr(setup_rules.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="EDGESIM_NATIVE=1 requires the native engine"):
        setup_rules.rust_extensions()
    monkeypatch.setattr(setup_rules.shutil, "which", lambda name: f"/usr/bin/{name}")
    (extension,) = setup_rules.rust_extensions()
    assert not extension.optional  # a failed build fails


@pytest.mark.parametrize(
    ("command", "limited_api"),
    [("bdist_wheel", "cp310"), ("editable_wheel", None), ("develop", None)],
)
def test_wheels_use_the_stable_abi_and_editable_installs_do_not(
    setup_rules, monkeypatch, command, limited_api
):
    """A wheel serves every CPython from 3.10 on; an editable install keeps the extension's
    interpreter-specific name (a new name would leave the old file beside it, imported first)."""
    monkeypatch.setattr(sys, "argv", ["setup.py", command])
    options = setup_rules.wheel_options()
    assert options.get("bdist_wheel", {}).get("py_limited_api") == limited_api


def test_the_stable_abi_is_that_of_the_oldest_supported_python(setup_rules):
    """An abi3 wheel built for a later Python than ``requires-python`` would leave the oldest
    supported versions without one; built for an older one, it would ask pyo3 for less."""
    pyproject = (SETUP.parent / "pyproject.toml").read_text()
    oldest = re.search(r'^requires-python = ">=(\d+)\.(\d+)"$', pyproject, re.MULTILINE)
    assert oldest is not None
    wheel_abi = setup_rules.LIMITED_API
    assert wheel_abi == "cp" + "".join(oldest.groups())
