"""Virtual time and other units.

Virtual time is an integer count of microseconds ("ticks"). Durations written by people
("20ms", "1.5s", 2) are converted here, once, so no float time ever accumulates.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Final

TICKS_PER_SECOND: Final = 1_000_000
TICKS_PER_MS: Final = 1_000
#: the longest duration (2**63-1 microseconds, about 292,000 years): anything longer is a
#: mistake, and would overflow wherever time meets a float or a 64-bit integer
MAX_TICKS: Final = 2**63 - 1
#: the highest bandwidth, 1 Pbit/s
MAX_BITS_PER_SECOND: Final = 10**15
#: the highest event rate: one event per tick
MAX_RATE_PER_SECOND: Final = float(TICKS_PER_SECOND)

_DURATION_UNITS = {
    "us": Decimal(1),
    "µs": Decimal(1),
    "ms": Decimal(1_000),
    "s": Decimal(1_000_000),
    "m": Decimal(60_000_000),
    "min": Decimal(60_000_000),
    "h": Decimal(3_600_000_000),
}
_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zµ]+)?\s*$")

_BANDWIDTH_UNITS = {
    "bps": Decimal(1),
    "kbps": Decimal(1_000),
    "mbps": Decimal(1_000_000),
    "gbps": Decimal(1_000_000_000),
    "bit/s": Decimal(1),
    "kbit/s": Decimal(1_000),
    "mbit/s": Decimal(1_000_000),
    "gbit/s": Decimal(1_000_000_000),
}
_BANDWIDTH_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z/]+)?\s*$")
_RATE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*/\s*(us|ms|s|m|min|h)\s*$")


def parse_duration(value: object) -> int:
    """Return ``value`` as integer ticks (microseconds).

    Accepts a number of seconds (``1.5``) or a string with a unit: ``us``, ``ms``, ``s``,
    ``m``/``min``, ``h`` (``"250ms"``, ``"10s"``). Raises ``ValueError`` with a readable
    message otherwise. Values are rounded to the nearest microsecond.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as '20ms' or 1.5 (seconds), got {value!r}")
    if isinstance(value, (int, float)):
        amount, unit = _finite_decimal(value), "s"
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if not match:
            raise ValueError(
                f"must be a duration such as '20ms', '1.5s' or 2 (seconds), got {value!r}"
            )
        number, unit = match.group(1), match.group(2) or "s"
        if unit not in _DURATION_UNITS:
            known = ", ".join(u for u in _DURATION_UNITS if u != "µs")
            raise ValueError(f"unknown time unit {unit!r} in {value!r} (use one of {known})")
        try:
            amount = Decimal(number)
        except InvalidOperation as exc:  # pragma: no cover - the regex already checked
            raise ValueError(f"not a number: {value!r}") from exc
    else:
        raise ValueError(f"must be a duration such as '20ms' or 1.5 (seconds), got {value!r}")
    ticks = amount * _DURATION_UNITS[unit]
    if ticks < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    if ticks > MAX_TICKS:
        raise ValueError(f"is too long (at most about 292,000 years), got {value!r}")
    return int(ticks.to_integral_value())


def parse_until(value: object) -> int:
    """``parse_duration`` for a run's ``until=`` argument: a bad value is a
    :class:`~pytest_edgesim.errors.SimulationError` naming it, like the run's other refusals."""
    from pytest_edgesim.errors import UsageError

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"cannot run until {value!r}: {exc}") from None


def refuse_going_back(now_ticks: int, target_ticks: int, shown: object = None) -> None:
    """A run asked to go back in time (``shown``: how the caller wrote the target) is a
    :class:`~pytest_edgesim.errors.UsageError`."""
    if target_ticks < now_ticks:
        from pytest_edgesim.errors import UsageError

        shown = f"{target_ticks}us" if shown is None else shown
        raise UsageError(
            f"cannot run until {shown!r}: virtual time is already {now_ticks / TICKS_PER_SECOND:g}s"
        )


def parse_bandwidth(value: object) -> int:
    """Return a bandwidth as integer bits per second (``"1Mbps"``, ``"250kbit/s"``, ``56000``)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a bandwidth such as '1Mbps', got {value!r}")
    if isinstance(value, (int, float)):
        bits = _finite_decimal(value)
    elif isinstance(value, str):
        match = _BANDWIDTH_RE.match(value)
        unit = (match.group(2) or "bps").lower() if match else ""
        if not match or unit not in _BANDWIDTH_UNITS:
            raise ValueError(
                f"must be a bandwidth such as '1Mbps', '250kbps' or 56000 (bits/s), got {value!r}"
            )
        bits = Decimal(match.group(1)) * _BANDWIDTH_UNITS[unit]
    else:
        raise ValueError(f"must be a bandwidth such as '1Mbps', got {value!r}")
    if bits <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    rounded = int(bits.to_integral_value())
    if rounded < 1:
        # (0 bit/s is how a link says "unlimited": a nearly dead link would deliver everything)
        raise ValueError(f"must be at least 1 bit/s (it is rounded to whole bits), got {value!r}")
    if rounded > MAX_BITS_PER_SECOND:
        raise ValueError(f"must be at most 1Pbps (10**15 bit/s), got {value!r}")
    return rounded


def parse_rate(value: object) -> float:
    """Return an event rate in events per second (``"2/s"``, ``"30/min"``, ``0.5``)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a rate such as '2/s' or 0.5 (per second), got {value!r}")
    if isinstance(value, (int, float)):
        rate = float(_finite_decimal(value))
    elif isinstance(value, str):
        match = _RATE_RE.match(value)
        if not match:
            raise ValueError(f"must be a rate such as '2/s' or '30/min', got {value!r}")
        per_ticks = _DURATION_UNITS[match.group(2)]
        rate = float(Decimal(match.group(1)) * Decimal(TICKS_PER_SECOND) / per_ticks)
    else:
        raise ValueError(f"must be a rate such as '2/s' or 0.5 (per second), got {value!r}")
    if rate <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    if rate > MAX_RATE_PER_SECOND:
        raise ValueError(
            f"must be at most 1000000/s (one event per microsecond tick), got {value!r}"
        )
    return rate


def _finite_decimal(number: int | float) -> Decimal:
    """``number`` as an exact Decimal; infinity and NaN are refused (they are never meant)."""
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"must be a finite number, got {number!r}")
    return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)


def format_ticks(ticks: int) -> str:
    """Render ticks for people: ``1500000`` -> ``'1.5s'``, ``20000`` -> ``'20ms'``."""
    if ticks % TICKS_PER_SECOND == 0:
        return f"{ticks // TICKS_PER_SECOND}s"
    if ticks >= TICKS_PER_SECOND:
        return f"{ticks / TICKS_PER_SECOND:g}s"
    if ticks % TICKS_PER_MS == 0 or ticks >= TICKS_PER_MS:
        return f"{ticks / TICKS_PER_MS:g}ms"
    return f"{ticks}us"
