"""Property-style assertions over a run and across runs: always, sometimes, reachable,
unreachable.

A test (through its run) or a node's logic states a property at the moment it holds or
not; the run keeps, per ``(kind, label)``, how often the condition held and did not and
when first, and :func:`judge` decides over one run or many (a statistical test's trials):

- ``always(condition, label)``: false once, anywhere, is a failure;
- ``sometimes(condition, label)``: a failure when it never held in any run, so a test can
  show that a fault really exercised a code path (a reconnect ran), not only that nothing
  broke;
- ``reachable(label)``: a failure when no run ever got there;
- ``unreachable(label)``: a failure when a run got there (the first run and time are named).

The records are no part of the trace: stating a property never changes a trace digest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_edgesim.core.units import TICKS_PER_SECOND

ALWAYS = "always"
SOMETIMES = "sometimes"
REACHABLE = "reachable"
UNREACHABLE = "unreachable"
ASSERTION_KINDS = (ALWAYS, SOMETIMES, REACHABLE, UNREACHABLE)


@dataclass(frozen=True, slots=True)
class AssertionRecord:
    """One property over one run: how many times it was stated, held and did not, and
    where (a node's name, or ``"test"``) and when the first counter-example was."""

    kind: str
    label: str
    held: int = 0
    failed: int = 0
    first_failure_ticks: int | None = None
    first_failure_at: str = ""

    @property
    def evaluations(self) -> int:
        return self.held + self.failed

    def to_dict(self) -> dict[str, Any]:
        first = self.first_failure_ticks
        return {
            "kind": self.kind,
            "label": self.label,
            "held": self.held,
            "failed": self.failed,
            "first_failure_s": None if first is None else first / TICKS_PER_SECOND,
            "first_failure_at": self.first_failure_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AssertionRecord:
        first = data.get("first_failure_s")
        return cls(
            data["kind"],
            data["label"],
            int(data.get("held", 0)),
            int(data.get("failed", 0)),
            None if first is None else round(first * TICKS_PER_SECOND),
            data.get("first_failure_at", ""),
        )


def _check(kind: str, label: object) -> str:
    if kind not in ASSERTION_KINDS:
        raise ValueError(f"unknown assertion {kind!r} (known: {', '.join(ASSERTION_KINDS)})")
    if not isinstance(label, str) or not label:
        raise ValueError(f"{kind}(): the label must be a non-empty string, got {label!r}")
    return label


class AssertionLog:
    """A run's assertions, by ``(kind, label)`` in the order first stated."""

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], list[Any]] = {}

    def record(self, kind: str, label: str, held: bool, time_ticks: int, where: str) -> None:
        """State property ``kind`` ``label`` at ``time_ticks``: it ``held`` or not. For
        ``reachable``/``unreachable`` a statement means the place was reached: it "holds"
        for reachable and "fails" for unreachable."""
        label = _check(kind, label)
        entry = self._records.get((kind, label))
        if entry is None:
            entry = self._records[(kind, label)] = [0, 0, None, ""]
        if kind == UNREACHABLE:
            held = False
        elif kind == REACHABLE:
            held = True
        if held:
            entry[0] += 1
        else:
            entry[1] += 1
            if entry[2] is None:
                entry[2], entry[3] = int(time_ticks), where

    def records(self) -> tuple[AssertionRecord, ...]:
        return tuple(
            AssertionRecord(kind, label, held, failed, first, where)
            for (kind, label), (held, failed, first, where) in self._records.items()
        )

    def __bool__(self) -> bool:
        return bool(self._records)


class Assertions:
    """The four statements over a log, stamped with a clock: what a run and
    ``edge_scenario`` offer a test (``where`` is ``"test"``)."""

    def _assertion_log(self) -> tuple[AssertionLog, int]:
        """The log to write to and the time now, in ticks."""
        raise NotImplementedError

    def _state(self, kind: str, condition: object, label: str) -> bool:
        log, now = self._assertion_log()
        held = bool(condition)
        log.record(kind, label, held, now, "test")
        return held

    def always(self, condition: object, label: str) -> bool:
        """State that ``condition`` holds now and every time this is stated (returns it)."""
        return self._state(ALWAYS, condition, label)

    def sometimes(self, condition: object, label: str) -> bool:
        """State that ``condition`` holds at least once over the runs (returns it)."""
        return self._state(SOMETIMES, condition, label)

    def reachable(self, label: str) -> None:
        """Mark that this place was reached; some run must reach it."""
        self._state(REACHABLE, True, label)

    def unreachable(self, label: str) -> None:
        """Mark a place that no run may reach; reaching it fails the test."""
        self._state(UNREACHABLE, False, label)


# --- judging ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunAssertions:
    """The records of one run, and how a report names that run (``trial 3, seed S``)."""

    run: str
    records: tuple[AssertionRecord, ...]


def _when(record: AssertionRecord) -> str:
    first = record.first_failure_ticks
    at = f" at t={first / TICKS_PER_SECOND:g}s" if first is not None else ""
    return f"{at} ({record.first_failure_at})" if record.first_failure_at else at


def judge(runs: Sequence[RunAssertions]) -> list[str]:
    """What the assertions of ``runs`` show wrong, one line each (empty: nothing)."""
    noun = "run" if len(runs) == 1 else "runs"
    if runs and runs[0].run.startswith("trial"):
        noun = "trial" if len(runs) == 1 else "trials"
    total = f"{len(runs)} {noun}"
    order: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], list[tuple[str, AssertionRecord]]] = {}
    for run in runs:
        for record in run.records:
            key = (record.kind, record.label)
            if key not in seen:
                order.append(key)
                seen[key] = []
            seen[key].append((run.run, record))
    problems = []
    for key in order:
        kind, label = key
        entries = seen[key]
        held = sum(record.held for _, record in entries)
        failing = [(name, record) for name, record in entries if record.failed]
        if kind in (ALWAYS, UNREACHABLE) and failing:
            name, first = failing[0]
            verb = "was false" if kind == ALWAYS else "was reached"
            problems.append(
                f"{kind}({label!r}) {verb} in {len(failing)} of {total} "
                f"(first: {name}{_when(first)})"
            )
        elif kind in (SOMETIMES, REACHABLE) and held == 0:
            verb = "never held" if kind == SOMETIMES else "was never reached"
            problems.append(f"{kind}({label!r}) {verb} in {total}")
    return problems


def summary(runs: Sequence[RunAssertions]) -> list[dict[str, Any]]:
    """Per property: its kind, label, and in how many runs it held and failed (JSON data)."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        for record in run.records:
            row = table.setdefault(
                (record.kind, record.label),
                {"kind": record.kind, "label": record.label, "runs_held": 0, "runs_failed": 0},
            )
            row["runs_held"] += record.held > 0
            row["runs_failed"] += record.failed > 0
    return list(table.values())
