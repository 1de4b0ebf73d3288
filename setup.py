"""The native engine's build, and the opt-in mypyc build of the pure core; everything else is
in pyproject.toml.

The native engine (``native/``, a Rust crate built with setuptools-rust into
``pytest_edgesim.core._native``) is built by every install, editable or not, when ``cargo``
is on the PATH; without it (or with ``EDGESIM_NATIVE=0``) the install says so in one line
and the package runs on its pure-Python engine, which gives the same results (see
docs/engine.md). A failed native build does not fail the install either (``optional``): the
pure engine is the reference, the native one only faster.

``EDGESIM_COMPILE=1 pip install .`` or ``EDGESIM_COMPILE=1 python -m build --wheel``
compiles the modules in ``COMPILED`` with mypyc; the wheel still carries every ``.py``
file (the Docker image contexts copy the package source), and a compiled module is
preferred over its source on import. Without the variable, and for every editable install,
the package is pure Python. When compilation was asked for and fails, the build fails: a
silent pure-Python fallback would hide exactly what the user wanted.
"""

from __future__ import annotations

import os
import shutil
import sys

from setuptools import Extension, setup

# The deterministic core's hot path. Modules that only set up a run, talk to Docker or
# read files gain nothing and stay interpreted.
COMPILED = [
    "pytest_edgesim/core/engine.py",
    "pytest_edgesim/core/network.py",
    "pytest_edgesim/core/packet.py",
    "pytest_edgesim/core/metrics/sketch.py",
    "pytest_edgesim/core/trace.py",
    "pytest_edgesim/core/rng.py",
    "pytest_edgesim/core/topics.py",
    "pytest_edgesim/core/aggregation.py",
    "pytest_edgesim/core/metrics/recorder.py",
    "pytest_edgesim/core/metrics/delivery.py",
    "pytest_edgesim/core/node.py",
    "pytest_edgesim/core/models/sensor.py",
    "pytest_edgesim/core/models/broker.py",
    "pytest_edgesim/core/models/cloud.py",
    "pytest_edgesim/gateway/model.py",
    "pytest_edgesim/core/models/session.py",
    "pytest_edgesim/core/models/values.py",  # the samplers every reading calls
    "pytest_edgesim/core/models/delays.py",
    "pytest_edgesim/lockstep/host.py",
    "pytest_edgesim/gateway/logic.py",
]

# The setuptools commands that build extension modules. The PEP 517 hooks also run this file
# for metadata (``egg_info``, ``dist_info``), before mypy is even installed, and the PEP 660
# hook runs ``editable_wheel``: an editable install never compiles.
BUILD_COMMANDS = {"bdist_wheel", "build", "build_ext", "install"}


def ext_modules() -> list[Extension]:
    if os.environ.get("EDGESIM_COMPILE", "") != "1":
        return []
    if "editable_wheel" in sys.argv or "develop" in sys.argv:
        print("EDGESIM_COMPILE=1 ignored: an editable install stays pure Python", file=sys.stderr)
        return []
    if not BUILD_COMMANDS.intersection(sys.argv):
        return []
    from mypyc.build import mypycify  # only the compiled build needs mypy installed

    # group_name gives the shared runtime library a readable name (pytest_edgesim__mypyc)
    # instead of a hash; the type check uses the [tool.mypy] section of pyproject.toml.
    return mypycify(COMPILED, opt_level="3", group_name="pytest_edgesim")


NATIVE_ENV = "EDGESIM_NATIVE"


def rust_extensions() -> list[object]:
    """The native engine, unless there is no Rust toolchain (or ``EDGESIM_NATIVE=0``); the
    reason is said once, by the command that builds (not by the metadata hooks)."""
    building = bool(BUILD_COMMANDS.union({"editable_wheel", "develop"}).intersection(sys.argv))
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
    setup(ext_modules=ext_modules(), rust_extensions=rust_extensions())
