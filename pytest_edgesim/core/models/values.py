"""Payload value models for sensors: constant, random walk, sine plus noise, CSV replay."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_edgesim.core.units import TICKS_PER_SECOND
from pytest_edgesim.errors import ScenarioError

if TYPE_CHECKING:
    from pytest_edgesim.core.rng import RandomStream
    from pytest_edgesim.core.scenario.schema import ReplayValue, ValueModel

ValueSource = Callable[[int], float]


def read_replay_column(spec: ReplayValue, base_dir: Path | None) -> list[float]:
    """The numbers of one CSV column (by header name or 0-based index)."""
    path = Path(spec.file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ScenarioError(f"value.file: cannot read {path}: {exc.strerror}") from None
    if not rows:
        raise ScenarioError(f"value.file: {path} is empty")
    column = spec.column
    start = 0
    if isinstance(column, str):
        header = [cell.strip() for cell in rows[0]]
        if column not in header:
            raise ScenarioError(f"value.column: {path} has no column {column!r} (has {header})")
        index, start = header.index(column), 1
    else:
        index = column
    values: list[float] = []
    for line_number, row in enumerate(rows[start:], start=start + 1):
        if not row or index >= len(row):
            continue
        try:
            values.append(float(row[index]))
        except ValueError:
            if line_number == 1 and isinstance(column, int):
                continue  # a header line
            raise ScenarioError(
                f"value.file: {path}:{line_number}: not a number: {row[index]!r}"
            ) from None
    if not values:
        raise ScenarioError(f"value.file: {path} has no numbers in column {column!r}")
    return values


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
