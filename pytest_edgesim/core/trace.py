"""The canonical trace of a run and its streaming digest.

Every traced event is a tuple ``(time, kind, node, peer, topic, message_id, detail)`` of
integers and strings; its canonical serialisation is those seven fields joined by tabs and
ended by a newline (names and topics never hold tabs or newlines: the scenario checks see to
that, and floats are written with ``%.12g`` by the models so that the last bit of a libm
result cannot change a digest). ``trace_digest`` is the SHA-256 of the concatenated lines,
computed as the run goes; the events themselves are kept only when asked for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import IO, Final

TraceEvent = tuple[int, str, str, str, str, str, str]
FIELDS = ("t", "kind", "node", "peer", "topic", "message", "detail")
_FLUSH_EVERY: Final = 4096
_LINE: Final = "%d\t%s\t%s\t%s\t%s\t%s\t%s\n"


def canonical_line(event: TraceEvent) -> str:
    """The canonical serialisation of one event (one line, newline included)."""
    return _LINE % event


# (the native engine's Python nodes record through a subclass: core/native_nodes.py)
class TraceRecorder:
    """Receives events in run order; keeps a running SHA-256 and, optionally, the events."""

    __slots__ = ("_buffer", "_hasher", "count", "enabled", "events", "keep")

    def __init__(self, *, enabled: bool = True, keep: bool = False):
        self.enabled = enabled or keep
        self.keep = keep
        self.count = 0
        self.events: list[TraceEvent] = []
        self._buffer: list[str] = []  # canonical lines not hashed yet
        self._hasher = hashlib.sha256()

    def record(
        self, time: int, kind: str, node: str, peer: str, topic: str, message: str, detail: str
    ) -> None:
        # Formatted at once: a short string is cheaper to hold until the flush than the
        # tuple (which the garbage collector would track and promote meanwhile). The
        # f-string gives exactly canonical_line's text for the documented field types (an
        # int time, strings) and is faster than ``%``; any other time goes through ``%``.
        if self.keep:
            self.events.append((time, kind, node, peer, topic, message, detail))
        buffer = self._buffer
        if time.__class__ is int:
            buffer.append(f"{time}\t{kind}\t{node}\t{peer}\t{topic}\t{message}\t{detail}\n")
        else:
            buffer.append(_LINE % (time, kind, node, peer, topic, message, detail))
        if len(buffer) >= _FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        self._hasher.update("".join(buffer).encode())
        self.count += len(buffer)
        buffer.clear()

    @property
    def digest(self) -> str:
        """Hex SHA-256 of the trace so far (the run may go on afterwards)."""
        self._flush()
        return self._hasher.hexdigest() if self.enabled else ""

    def kept(self) -> tuple[TraceEvent, ...]:
        self._flush()
        return tuple(self.events)


def event_to_dict(event: TraceEvent) -> dict[str, object]:
    return dict(zip(FIELDS, event))


def write_jsonl(events: Iterable[TraceEvent], stream: IO[str]) -> int:
    """Write events as JSON Lines (one object per event, canonical key order); returns count."""
    written = 0
    for event in events:
        stream.write(json.dumps(event_to_dict(event), separators=(",", ":"), ensure_ascii=False))
        stream.write("\n")
        written += 1
    return written


def read_jsonl(stream: IO[str]) -> Iterator[TraceEvent]:
    for line in stream:
        if line.strip():
            item = json.loads(line)
            yield tuple(item[field] for field in FIELDS)  # type: ignore[misc]


def first_divergence(
    left: Iterable[TraceEvent], right: Iterable[TraceEvent]
) -> tuple[int, TraceEvent | None, TraceEvent | None] | None:
    """Where two traces first differ: ``(index, left_event, right_event)``, or None if equal."""
    sentinel: None = None
    left_iter, right_iter = iter(left), iter(right)
    index = 0
    while True:
        a = next(left_iter, sentinel)
        b = next(right_iter, sentinel)
        if a is None and b is None:
            return None
        if a != b:
            return index, a, b
        index += 1
