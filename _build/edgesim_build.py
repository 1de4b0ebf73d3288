"""The in-tree PEP 517 backend: setuptools, plus mypy only when a compiled build is asked for.

``EDGESIM_COMPILE=1`` turns on the opt-in mypyc build (see setup.py). Only then does a
wheel build need mypy, so only then is it added to the build requirements: a plain
``pip install .`` downloads nothing more than setuptools. Editable builds never compile (a
compiled module next to its source would hide every later edit of that source), so they
never ask for mypy either.
"""

from __future__ import annotations

import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every hook we do not override)

#: The mypyc that the compiled build was tested with; the generated C depends on it.
MYPYC_REQUIREMENT = "mypy[mypyc]==2.4.1"
#: The type checker runs with the project's own configuration, whose plugin is pydantic's.
PYDANTIC_REQUIREMENT = "pydantic>=2.5,<3"
COMPILE_ENV = "EDGESIM_COMPILE"


def compile_requested() -> bool:
    return os.environ.get(COMPILE_ENV, "") == "1"


def get_requires_for_build_wheel(config_settings=None):  # type: ignore[no-untyped-def]
    requires = list(_setuptools.get_requires_for_build_wheel(config_settings))
    if compile_requested():
        requires += [MYPYC_REQUIREMENT, PYDANTIC_REQUIREMENT]
    return requires


def get_requires_for_build_editable(config_settings=None):  # type: ignore[no-untyped-def]
    # (stated, not inherited: whatever EDGESIM_COMPILE says, an editable build is pure)
    return list(_setuptools.get_requires_for_build_editable(config_settings))
