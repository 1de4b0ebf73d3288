"""The two small read-only mappings a result holds for every node, link and topic.

A run of 100,000 sensors reports on some 300,000 flows, each with its drops by cause and a
latency summary. As dicts those cost about 600 bytes a flow; these slotted mappings cost a
quarter of that and behave like the dicts they replace: ``summary["p95"]``, ``.get``,
iteration in a fixed key order, ``dict(summary)``, and equality with a dict of the same
items (``summary == {"count": 0}``). They are immutable, so results can share them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

DROP_CAUSES = ("loss", "partition", "queue_overflow", "rejected", "node_down")
#: the broker's causes (MQTT sessions, see docs/results.md): a key only where it is not 0,
#: so that results of runs without them read as before
SESSION_DROP_CAUSES = ("queue_full", "offline", "session_lost")
#: the fault kinds' causes (docs/faults.md): a gateway's full store-and-forward buffer, a
#: device's reading due while it slept; keys only where not 0, as the broker's
FAULT_DROP_CAUSES = ("storage_full", "asleep")
#: the causes that are keys only where not 0
SPARSE_DROP_CAUSES = SESSION_DROP_CAUSES + FAULT_DROP_CAUSES
LATENCY_KEYS = ("count", "min", "mean", "p50", "p95", "p99", "max")


class _SlottedMapping(Mapping[str, Any]):
    """A mapping over its own slots; a slot left unset is a key that is absent."""

    __slots__ = ()
    _keys: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Any:
        if key in self._keys:
            try:
                return object.__getattribute__(self, key)
            except AttributeError:
                pass
        raise KeyError(f"{key!r} is not a key here: {', '.join(self)}")

    def __iter__(self) -> Iterator[str]:
        return (key for key in self._keys if hasattr(self, key))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self)))

    def __repr__(self) -> str:
        return repr(dict(self))


def _rebuild(cls: type[_SlottedMapping], items: dict[str, Any]) -> _SlottedMapping:
    mapping = object.__new__(cls)
    for key, value in items.items():
        object.__setattr__(mapping, key, value)
    return mapping


class DropCounts(_SlottedMapping):
    """Messages dropped, by cause: ``loss`` and ``partition`` on the network,
    ``queue_overflow`` at a full gateway queue, ``rejected`` by a node's own logic (a reading
    that is not a number, a threshold filter: the trace's drop event says why), ``node_down``
    by a fault (a message that reached a stopped, killed or disconnected node, or that a node
    held when it was stopped or killed; see ``docs/markers-and-options.md``); at the broker,
    for a subscriber with an MQTT session, ``queue_full``, ``offline`` and ``session_lost``
    (these three are keys only when not 0)."""

    __slots__ = DROP_CAUSES + SPARSE_DROP_CAUSES
    _keys = DROP_CAUSES + SPARSE_DROP_CAUSES

    def __init__(
        self,
        loss: int = 0,
        partition: int = 0,
        queue_overflow: int = 0,
        rejected: int = 0,
        node_down: int = 0,
        queue_full: int = 0,
        offline: int = 0,
        session_lost: int = 0,
        storage_full: int = 0,
        asleep: int = 0,
    ):
        object.__setattr__(self, "loss", loss)
        object.__setattr__(self, "partition", partition)
        object.__setattr__(self, "queue_overflow", queue_overflow)
        object.__setattr__(self, "rejected", rejected)
        object.__setattr__(self, "node_down", node_down)
        sparse = (queue_full, offline, session_lost, storage_full, asleep)
        for cause, count in zip(SPARSE_DROP_CAUSES, sparse):
            if count:
                object.__setattr__(self, cause, count)

    @classmethod
    def from_mapping(cls, data: Mapping[str, int]) -> DropCounts:
        known = DROP_CAUSES + SPARSE_DROP_CAUSES
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown drop causes {unknown} (known: {', '.join(known)})")
        return cls(**data)


class LatencySummary(_SlottedMapping):
    """``count``, then (when it is not 0) ``min``, ``mean``, ``p50``, ``p95``, ``p99``, ``max``,
    in milliseconds."""

    __slots__ = LATENCY_KEYS
    _keys = LATENCY_KEYS

    def __init__(self, count: int = 0, **values: float) -> None:
        object.__setattr__(self, "count", count)
        unknown = sorted(set(values) - set(LATENCY_KEYS))
        if unknown:
            raise ValueError(f"unknown latency keys {unknown} (known: {', '.join(LATENCY_KEYS)})")
        for key, value in values.items():
            object.__setattr__(self, key, value)

    @classmethod
    def from_mapping(cls, data: Mapping[str, float | int]) -> LatencySummary:
        values = dict(data)
        return cls(int(values.pop("count", 0)), **values)
