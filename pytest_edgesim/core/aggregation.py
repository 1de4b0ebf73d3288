"""Gateway aggregation: the pure logic, shared by the Python model and the gateway container.

Readings are grouped (all together, per topic or per device) and summarised with the
requested functions. A group is emitted when it reaches ``count`` readings, and every group
with readings is emitted at the end of each tumbling ``window`` ([k*W, (k+1)*W)). This module
knows nothing about the simulator, MQTT or clocks: callers pass times in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

FUNCTIONS = ("mean", "min", "max", "count", "sum", "last")
#: the reason a gateway gives when it drops a reading that carries no number
NOT_A_NUMBER = "not_a_number"


#: the field of an object payload that holds a reading's number, unless a gateway says otherwise
VALUE_FIELD = "value"


def is_value_field(value: object) -> TypeGuard[str]:
    """Whether ``value`` can name a reading's field: a name, or a dotted path of names."""
    return isinstance(value, str) and all(value.split("."))


def reading_value(payload: Any, value_field: str = VALUE_FIELD) -> int | float | None:
    """The number a reading carries, or ``None`` when it carries none.

    A reading is a number (an int or a float; not a bool), text or bytes that hold one
    (``"21.5"``, ``b"21.5"``, as real MQTT payloads are), or an object with a numeric field
    ``value_field`` (``{"value": 21.5, "origin": ...}``; a dotted path such as
    ``"sensor.temp"`` reads nested objects). The number must be finite. Ints stay ints (an
    aggregate of ints prints them as ints).
    """
    if isinstance(payload, Mapping):
        for key in value_field.split("."):
            payload = payload.get(key) if isinstance(payload, Mapping) else None
    if isinstance(payload, bool):
        return None
    if isinstance(payload, int):
        try:
            float(payload)  # (an int too large for a float cannot be summed with the others)
        except OverflowError:
            return None
        return payload
    if isinstance(payload, (bytes, bytearray)):
        try:
            payload = payload.decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(payload, str):
        try:
            payload = float(payload.strip())
        except ValueError:
            return None
    if isinstance(payload, float) and math.isfinite(payload):
        return payload
    return None


@dataclass(slots=True)
class _Group:
    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    last: float = 0.0
    first_at: int = 0
    sources: dict[str, list[list[int]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Aggregate:
    """One emitted summary: its group key, the values of the functions, when it covers.

    ``sources`` is its lineage: for each origin, the runs ``[first_seq, last_seq]`` of the
    readings it summarises, in the order they were taken (one run per origin while its
    readings come in order; never more runs than readings). It is not in :meth:`payload`
    nor in :meth:`canonical`: a trace does not change with it.
    """

    group: str
    values: dict[str, float | int] = field(hash=False)
    count: int
    first_at: int
    emitted_at: int
    sources: dict[str, list[list[int]]] = field(default_factory=dict, hash=False, compare=False)

    def payload(self, group_by: str) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.values)
        if group_by != "none":
            out["group"] = self.group
        return out

    def canonical(self) -> str:
        """A stable text form for traces: ``group count=10 mean=20.5 ...`` (floats as %.12g)."""
        parts = [f"{key}={_format(value)}" for key, value in self.values.items()]
        return " ".join([self.group, *parts]) if self.group else " ".join(parts)


def _format(value: float | int) -> str:
    return str(value) if isinstance(value, int) else "%.12g" % value


def _extend(lineage: dict[str, list[list[int]]], origin: str, first: int, last: int) -> None:
    """Add the run ``first..last`` of ``origin`` to ``lineage`` (joined to the last run when
    it follows on)."""
    runs = lineage.get(origin)
    if runs is None:
        lineage[origin] = [[first, last]]
    elif runs[-1][1] + 1 == first:
        runs[-1][1] = last
    else:
        runs.append([first, last])


class Aggregator:
    """Groups readings and emits :class:`Aggregate` values by count and/or window."""

    def __init__(
        self,
        *,
        count: int | None,
        window: int | None,
        functions: Sequence[str] = ("mean", "min", "max", "count"),
        group_by: str = "none",
        value_field: str = VALUE_FIELD,
    ):
        if count is None and window is None:
            raise ValueError("an aggregator needs a count, a window, or both")
        unknown = [f for f in functions if f not in FUNCTIONS]
        if unknown:
            raise ValueError(f"unknown aggregate functions {unknown} (known: {FUNCTIONS})")
        self.count = count
        self.window = window
        self.functions = tuple(functions)
        self.group_by = group_by
        self.value_field = value_field
        self._groups: dict[str, _Group] = {}

    @classmethod
    def from_config(cls, aggregate: Mapping[str, Any] | None) -> Aggregator | None:
        """The aggregator a gateway's JSON configuration asks for (its ``aggregate`` object,
        see :func:`pytest_edgesim.gateway.config.config_from_spec`), or None without one."""
        if not aggregate:
            return None
        return cls(
            count=aggregate.get("count"),
            window=aggregate.get("window_us"),
            functions=aggregate.get("functions", ["mean", "min", "max", "count"]),
            group_by=aggregate.get("group_by", "none"),
            value_field=aggregate.get("value_field", VALUE_FIELD),
        )

    def value_of(self, payload: Any) -> int | float | None:
        """The number ``payload`` carries for this aggregator (:func:`reading_value`)."""
        return reading_value(payload, self.value_field)

    def group_key(self, topic: str, origin: str) -> str:
        if self.group_by == "topic":
            return topic
        if self.group_by == "device":
            return origin
        return ""

    def add(
        self,
        now: int,
        topic: str,
        origin: str,
        value: float,
        seq: int | None = None,
        sources: Mapping[str, list[list[int]]] | None = None,
    ) -> Aggregate | None:
        """Take one reading; returns the group's aggregate if this reading completed it.

        For the aggregate's lineage: ``seq`` is the reading's number, or ``sources`` the
        readings it stands for itself (another gateway's forward), which then count instead.
        """
        key = self.group_key(topic, origin)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(first_at=now)
        elif group.count == 0:
            group.first_at = now
        group.count += 1
        group.total += value
        if value < group.minimum:
            group.minimum = value
        if value > group.maximum:
            group.maximum = value
        group.last = value
        if sources is not None:
            for source_origin, source_runs in sources.items():
                for first, last in source_runs:
                    _extend(group.sources, source_origin, first, last)
        elif seq is not None:
            _extend(group.sources, origin, seq, seq)
        if self.count is not None and group.count >= self.count:
            return self._emit(key, group, now)
        return None

    def next_window_end(self, now: int) -> int | None:
        """The end of the window containing ``now`` (None without windows)."""
        if self.window is None:
            return None
        return (now // self.window + 1) * self.window

    def close_window(self, now: int) -> list[Aggregate]:
        """Emit every group with readings (in group-key order), as a window ends at ``now``."""
        return [
            self._emit(key, group, now)
            for key, group in sorted(self._groups.items())
            if group.count
        ]

    @property
    def pending(self) -> int:
        return sum(group.count for group in self._groups.values())

    def _emit(self, key: str, group: _Group, now: int) -> Aggregate:
        values: dict[str, float | int] = {}
        for function in self.functions:
            if function == "mean":
                values["mean"] = group.total / group.count
            elif function == "min":
                values["min"] = group.minimum
            elif function == "max":
                values["max"] = group.maximum
            elif function == "count":
                values["count"] = group.count
            elif function == "sum":
                values["sum"] = group.total
            else:
                values["last"] = group.last
        aggregate = Aggregate(key, values, group.count, group.first_at, now, group.sources)
        group.sources = {}
        group.count = 0
        group.total = 0.0
        group.minimum = math.inf
        group.maximum = -math.inf
        return aggregate
