"""Payload value models for sensors: constant, random walk, sine plus noise, CSV replay."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_edgesim.core.files import FileProblem, read_text_file
from pytest_edgesim.core.limits import Limits
from pytest_edgesim.core.units import TICKS_PER_SECOND
from pytest_edgesim.errors import ScenarioError

if TYPE_CHECKING:
    from pytest_edgesim.core.rng import RandomStream
    from pytest_edgesim.core.scenario.schema import ReplayValue, ValueModel

ValueSource = Callable[[int], float]


#: how much of a declared CSV file's cell an error may quote
_EXCERPT_CHARS = 40


def read_replay_column(
    spec: ReplayValue, base_dir: Path | None, max_bytes: int | None = None
) -> list[float]:
    """The numbers of one CSV column (by header name or 0-based index).

    Errors name the file, the line and the kind of problem. They quote the file (a short,
    escaped excerpt) only if it is a ``.csv`` file, a file declared as data: a scenario
    that points ``file`` at ``/etc/shadow`` learns which line is not a number, not what
    the line says."""
    path = Path(spec.file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    limit = Limits.from_env().file_bytes if max_bytes is None else max_bytes
    try:
        text = read_text_file(path, limit, limit_hint=Limits().hint("file_bytes"))
    except FileProblem as exc:
        where = f"{path}:{exc.line}" if exc.line is not None else str(path)
        raise ScenarioError(f"value.file: {where}: {exc.message}") from None
    quotable = path.suffix.lower() == ".csv"
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ScenarioError(f"value.file: {path} is not a CSV file ({exc})") from None
    if not rows:
        raise ScenarioError(f"value.file: {path} is empty")
    column = spec.column
    start = 0
    if isinstance(column, str):
        header = [cell.strip() for cell in rows[0]]
        if column not in header:
            has = f" (has {_excerpt(', '.join(header))})" if quotable else ""
            raise ScenarioError(f"value.column: {path} has no column {column!r}{has}")
        index, start = header.index(column), 1
    else:
        index = column
    values: list[float] = []
    for line_number, row in enumerate(rows[start:], start=start + 1):
        if not row or index >= len(row):
            continue
        try:
            number = float(row[index])
        except ValueError:
            if line_number == 1 and isinstance(column, int):
                continue  # a header line
            quoted = f": {_excerpt(row[index])}" if quotable else ""
            raise ScenarioError(
                f"value.file: {path}:{line_number}: column {column!r} is not a number{quoted}"
            ) from None
        if not math.isfinite(number):
            raise ScenarioError(
                f"value.file: {path}:{line_number}: column {column!r} is not a finite number"
            )
        values.append(number)
    if not values:
        raise ScenarioError(f"value.file: {path} has no numbers in column {column!r}")
    return values


def _excerpt(text: str) -> str:
    """``text`` quoted and escaped (no control character reaches a terminal), cut short."""
    if len(text) > _EXCERPT_CHARS:
        return ascii(text[:_EXCERPT_CHARS]) + "..."
    return ascii(text)


def make_value_source(
    spec: ValueModel, streams: Callable[[str], RandomStream], base_dir: Path | None = None
) -> ValueSource:
    """A function from virtual time (ticks) to the next reading's value.

    ``streams(purpose)`` gives the node's random sub-stream; only the models that draw
    (``random_walk``, ``sine`` with noise) ask for theirs, ``"value"``, so a fleet of
    constant or replayed sensors carries no stream it never uses.
    """
    if spec.model == "constant":
        return _constant_source(spec.value, repr(spec.value))
    if spec.model == "random_walk":
        state = [spec.start]
        step, low, high = spec.step, spec.min, spec.max
        stream = streams("value")

        def walk(_now: int) -> float:
            value = state[0] + stream.normal(0.0, step) if step else state[0]
            if low is not None and value < low:
                value = low
            if high is not None and value > high:
                value = high
            state[0] = value
            return value

        return walk
    if spec.model == "sine":
        mean, amplitude, noise = spec.mean, spec.amplitude, spec.noise
        omega = 2.0 * math.pi / (spec.period / TICKS_PER_SECOND)
        phase = spec.phase
        noise_stream = streams("value") if noise else None

        def sine(now: int) -> float:
            value = mean + amplitude * math.sin(omega * ((now + phase) / TICKS_PER_SECOND))
            return value + noise_stream.normal(0.0, noise) if noise_stream is not None else value

        return sine
    values = read_replay_column(spec, base_dir)
    loop = spec.loop
    position = [0]

    def replay(_now: int) -> float:
        index = position[0]
        position[0] = index + 1
        if index >= len(values):
            index = index % len(values) if loop else len(values) - 1
        return values[index]

    return replay


@lru_cache(maxsize=1024)
def _constant_source(value: float, spelling: str) -> ValueSource:
    """One function per constant, shared by every sensor that reports it (a fleet of 100,000
    constant sensors holds one closure, not 100,000). ``spelling`` (the repr) is part of the
    cache key because equal is not the same here: 0.0 and -0.0 print differently."""
    return lambda _now: value
