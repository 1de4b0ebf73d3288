"""Samplers for the delay distributions of the scenario schema (integer ticks out)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_edgesim.core.rng import RandomStream
    from pytest_edgesim.core.scenario.schema import Delay

DelaySampler = Callable[[], int]


def make_delay_sampler(spec: Delay, stream: RandomStream) -> DelaySampler:
    """A function drawing one delay; constant delays draw nothing from the stream."""
    if spec.distribution == "constant":
        value = spec.value
        return lambda: value
    if spec.distribution == "uniform":
        low, high = spec.low, spec.high
        return lambda: round(stream.uniform(low, high))
    if spec.distribution == "exponential":
        mean = spec.mean
        return lambda: round(stream.exponential(mean))
    mean, stddev = spec.mean, spec.stddev

    def truncated_normal() -> int:
        for _ in range(64):
            value = stream.normal(mean, stddev)
            if value >= 0.0:
                return round(value)
        return 0

    return truncated_normal
