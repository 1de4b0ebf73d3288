"""The native engine's build; everything else is in pyproject.toml.

The native engine (``native/``, a Rust crate built with setuptools-rust into
``pytest_edgesim.core._native``) is built by every install, editable or not, when ``cargo``
is on the PATH; without it (or with ``EDGESIM_NATIVE=0``) the install says so in one line
and the package runs on its pure-Python engine, which gives the same results (see
docs/engine.md). A failed native build does not fail the install either (``optional``): the
pure engine is the reference, the native one only faster. ``EDGESIM_NATIVE=1`` turns both
fallbacks into errors (the wheel builds in CI set it).

A wheel (``pip wheel .``, ``python -m build``, cibuildwheel) is an abi3 wheel: one per
platform for every CPython from 3.10 on (see ``wheel_options``).
"""

from __future__ import annotations

import os
import shutil
import sys

from setuptools import setup

# The setuptools commands that build extension modules. The PEP 517 hooks also run this file
# for metadata (``egg_info``, ``dist_info``): those build nothing and say nothing.
EDITABLE_COMMANDS = {"editable_wheel", "develop"}
BUILD_COMMANDS = {"bdist_wheel", "build", "build_ext", "install"} | EDITABLE_COMMANDS
#: The oldest Python the package supports: a wheel's native engine uses CPython's stable ABI
#: from this version on (abi3), so one wheel per platform serves it and every later version.
LIMITED_API = "cp310"

NATIVE_ENV = "EDGESIM_NATIVE"


def rust_extensions() -> list[object]:
    """The native engine, unless there is no Rust toolchain (or ``EDGESIM_NATIVE=0``); the
    reason is said once, by the command that builds (not by the metadata hooks).

    ``EDGESIM_NATIVE=1`` requires it: no cargo, or a failed build, fails the build instead of
    leaving the pure engine (what a wheel build in CI wants: a wheel without the engine is
    not the wheel it meant to publish).
    """
    building = bool(BUILD_COMMANDS.intersection(sys.argv))
    setting = os.environ.get(NATIVE_ENV, "")
    if setting == "0":
        if building:
            print(
                f"pytest-edgesim: {NATIVE_ENV}=0: the native engine is not built", file=sys.stderr
            )
        return []
    if shutil.which("cargo") is None:
        if setting == "1":
            raise SystemExit(
                f"pytest-edgesim: {NATIVE_ENV}=1 requires the native engine, but there is no "
                "Rust toolchain (cargo) on the PATH"
            )
        if building:
            print(
                "pytest-edgesim: no Rust toolchain (cargo) on the PATH: installing without the "
                "native engine; the pure-Python engine runs every scenario (docs/engine.md)",
                file=sys.stderr,
            )
        return []
    from setuptools_rust import Binding, RustExtension

    # debug=False: an editable install would otherwise build an unoptimised engine
    return [
        RustExtension(
            "pytest_edgesim.core._native",
            path="native/Cargo.toml",
            binding=Binding.PyO3,
            optional=setting != "1",
            debug=False,
        )
    ]


def wheel_options() -> dict[str, dict[str, str]]:
    """A wheel is tagged ``cp310-abi3`` and its engine built against the stable ABI (setuptools-rust
    reads the tag: pyo3's ``abi3-py310`` feature, ``_native.abi3.so``). An editable install
    builds for the interpreter it runs on (``_native.cpython-3XY-....so``), as it always did: a
    new name would leave the old file beside it, which Python would go on importing."""
    if EDITABLE_COMMANDS.intersection(sys.argv):
        return {}
    return {"bdist_wheel": {"py_limited_api": LIMITED_API}}


if __name__ == "__main__":  # (how setuptools runs it; a test imports it to read the rules)
    setup(rust_extensions=rust_extensions(), options=wheel_options())
