"""The native engine's build; everything else is in pyproject.toml.

The native engine (``native/``, a Rust crate built with setuptools-rust into
``pytest_edgesim.core._native``) is built by every install, editable or not, when ``cargo``
is on the PATH; without it (or with ``EDGESIM_NATIVE=0``) the install says so in one line
and the package runs on its pure-Python engine, which gives the same results (see
docs/engine.md). A failed native build does not fail the install either (``optional``): the
pure engine is the reference, the native one only faster.
"""

from __future__ import annotations

import os
import shutil
import sys

from setuptools import setup

# The setuptools commands that build extension modules. The PEP 517 hooks also run this file
# for metadata (``egg_info``, ``dist_info``): those build nothing and say nothing.
BUILD_COMMANDS = {"bdist_wheel", "build", "build_ext", "install", "editable_wheel", "develop"}

NATIVE_ENV = "EDGESIM_NATIVE"


def rust_extensions() -> list[object]:
    """The native engine, unless there is no Rust toolchain (or ``EDGESIM_NATIVE=0``); the
    reason is said once, by the command that builds (not by the metadata hooks)."""
    building = bool(BUILD_COMMANDS.intersection(sys.argv))
    if os.environ.get(NATIVE_ENV, "") == "0":
        if building:
            print(
                f"pytest-edgesim: {NATIVE_ENV}=0: the native engine is not built", file=sys.stderr
            )
        return []
    if shutil.which("cargo") is None:
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
            optional=True,
            debug=False,
        )
    ]


if __name__ == "__main__":  # (how setuptools runs it; a test imports it to read the rules)
    setup(rust_extensions=rust_extensions())
