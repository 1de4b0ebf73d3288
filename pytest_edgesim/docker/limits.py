"""The resources an edgesim container may use: memory, CPU and processes, limited by default.

A gateway under test that leaks memory or forks without end must fail its own test, not
take the CI machine (or a shared engine) down with it. Every container edgesim creates gets
these limits; the environment changes them, ``none`` lifting one:

- ``EDGESIM_CONTAINER_MEMORY``: ``512m`` (a number of bytes with ``k``, ``m`` or ``g``);
- ``EDGESIM_CONTAINER_CPUS``: ``1`` (CPUs, a decimal number such as ``0.5``);
- ``EDGESIM_CONTAINER_PIDS``: ``256`` (processes and threads).
"""

from __future__ import annotations

import os
import re
from typing import Any

from pytest_edgesim.errors import EdgesimError

MEMORY_ENV = "EDGESIM_CONTAINER_MEMORY"
CPUS_ENV = "EDGESIM_CONTAINER_CPUS"
PIDS_ENV = "EDGESIM_CONTAINER_PIDS"
DEFAULTS = {MEMORY_ENV: "512m", CPUS_ENV: "1", PIDS_ENV: "256"}

_MEMORY = re.compile(r"(\d+)([kmg]?)b?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class LimitError(EdgesimError):
    """A container limit in the environment that does not mean anything."""


def container_limits() -> dict[str, Any]:
    """The keyword arguments of ``containers.create`` that limit a container's resources."""
    limits: dict[str, Any] = {}
    memory = _setting(MEMORY_ENV)
    if memory is not None:
        match = _MEMORY.fullmatch(memory)
        if match is None or int(match[1]) == 0:
            raise LimitError(f"{MEMORY_ENV}={memory!r}: expected bytes such as 512m, 2g or none")
        limits["mem_limit"] = int(match[1]) * _UNITS[match[2].lower()]
    cpus = _setting(CPUS_ENV)
    if cpus is not None:
        try:
            nano_cpus = round(float(cpus) * 1e9)
        except ValueError:
            nano_cpus = 0
        if nano_cpus <= 0:
            raise LimitError(
                f"{CPUS_ENV}={cpus!r}: expected a number of CPUs such as 1, 0.5 or none"
            )
        limits["nano_cpus"] = nano_cpus
    pids = _setting(PIDS_ENV)
    if pids is not None:
        if not pids.isdigit() or int(pids) < 1:
            raise LimitError(f"{PIDS_ENV}={pids!r}: expected a number of processes >= 1 or none")
        limits["pids_limit"] = int(pids)
    return limits


def _setting(name: str) -> str | None:
    value = os.environ.get(name, DEFAULTS[name]).strip()
    return None if value.lower() == "none" else value
