"""Whether a process of this host still runs: what reaping decides ownership by."""

from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a process we may not signal counts; a
    zombie, dead but not yet waited for, as a SIGKILLed xdist worker can be, does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` is a zombie (Linux: its state in /proc; elsewhere, never known)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "pid (command) state ...": the command may hold spaces and parentheses
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "Z"


def command_line(pid: int) -> list[str] | None:
    """The arguments process ``pid`` was started with (Linux), or None when unknown."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
