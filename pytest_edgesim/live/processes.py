"""Whether a process still runs, and who a process is: what reaping decides ownership by.

A pid alone names a process only on one machine, in one pid namespace, until it is reused;
an :class:`Owner` (boot id, pid namespace, pid, start time) names one process anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Machine:
    """Where pids mean something: the kernel's boot (``/proc/sys/kernel/random/boot_id``,
    new at every boot, different on every machine) and the pid namespace (the inode of
    ``/proc/self/ns/pid``, different in every container). Two processes of one machine
    can tell whether each other runs only when both are equal."""

    boot_id: str
    pid_namespace: str

    def __str__(self) -> str:
        return f"{self.boot_id}/{self.pid_namespace}"


@dataclass(frozen=True)
class Owner:
    """A process that cannot be mistaken for another: its machine, its pid, and the time it
    started (clock ticks after boot, so a pid reused by a later process differs)."""

    machine: Machine
    pid: int
    start_ticks: int

    def __str__(self) -> str:
        return f"{self.machine}/{self.pid}/{self.start_ticks}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner :meth:`__str__` wrote, or None for anything else."""
        parts = text.split("/")
        if len(parts) != 4 or not all(parts[:2]):
            return None
        try:
            return cls(Machine(parts[0], parts[1]), int(parts[2]), int(parts[3]))
        except ValueError:
            return None


_UNKNOWN = "unknown"


def this_machine() -> Machine:
    """This process's :class:`Machine` (``unknown`` parts where /proc does not say, as on
    macOS: then no other machine's owner is ever taken for one of ours)."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip() or _UNKNOWN
    except OSError:
        boot_id = _UNKNOWN
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = _UNKNOWN
    return Machine(boot_id, namespace)


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot (Linux), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of stat(5); fields[0] is field 3 (the state)
    except (IndexError, ValueError):
        return None


def this_owner() -> Owner:
    """This process as an :class:`Owner`."""
    pid = os.getpid()
    return Owner(this_machine(), pid, start_ticks(pid) or 0)


def owner_alive(owner: Owner, here: Machine | None = None) -> bool | None:
    """Whether ``owner`` still runs: True or False when it is of this machine and pid
    namespace (its pid runs, not a zombie, and started when it did), None when it is not
    (nothing here can tell; a lease must)."""
    here = here or this_machine()
    if owner.machine != here or _UNKNOWN in (here.boot_id, here.pid_namespace):
        return None
    if not pid_alive(owner.pid):
        return False
    started = start_ticks(owner.pid)
    return started is None or owner.start_ticks in (0, started)
