"""Was the impairment asked for the one applied? Bounds for a link's measured latency and loss.

A real link's impairment (netem, the impairing proxy) is applied by something other than
the test, and a mistake there (a unit off by a thousand, a setting on the wrong interface,
a rule that never matched) is silent. Given what was measured on the link (each chunk's
delay, and which chunks were held back by a retransmission timeout), these functions say
whether the numbers fit what was asked, with a bound derived from the distribution at a
stated false-alarm rate:

- latency: the mean delay of the chunks that were not lost, against the asked latency
  (jitter is uniform in ``[-jitter, +jitter]``: standard deviation ``jitter / sqrt(3)``);
  the band is the normal approximation's ``z * sigma / sqrt(n)`` plus a fixed allowance for
  timer and scheduling delay (a real link is never early, it can be a little late);
- loss: the count of lost chunks is binomial; a mismatch when the asked rate lies outside
  the Wilson score interval of the measured one.

Both are two-sided tests at ``false_alarm`` (default 0.001): a correct setting raises a
false alarm in one check in a thousand.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_edgesim.core.stats import wilson_interval, z_value

DEFAULT_FALSE_ALARM = 1e-3
#: how late a real timer may deliver on average, in ms (scheduling, the event loop)
DEFAULT_SLACK_MS = 10.0
#: the fewest samples a check is made on (fewer: nothing is said)
MIN_SAMPLES = 20


@dataclass(frozen=True)
class ImpairmentCheck:
    """One comparison: ``what`` (``"latency_ms"`` or ``"loss_rate"``), the ``asked`` value,
    the ``measured`` one over ``samples``, and the band ``[low, high]`` the measured value
    had to fall in (for loss: the interval of the measured rate that must hold ``asked``)."""

    what: str
    asked: float
    measured: float
    low: float
    high: float
    samples: int
    false_alarm: float
    #: (latency) how late the impairing process ran its timers on average, in ms
    lateness_ms: float = 0.0

    @property
    def ok(self) -> bool:
        if self.what == "loss_rate":
            return self.low <= self.asked <= self.high
        return self.low <= self.measured <= self.high

    def describe(self) -> str:
        rate = f"{self.false_alarm:g} false-alarm rate"
        if self.what == "loss_rate":
            return (
                f"loss: asked {self.asked:g}, measured {self.measured:.4g} over {self.samples} "
                f"chunks (interval [{self.low:.4g}, {self.high:.4g}] at a {rate})"
            )
        late = ""
        if self.lateness_ms >= 0.05:
            late = f"; {self.lateness_ms:.3g} ms of it the host's own timer delay"
        return (
            f"latency: asked {self.asked:g} ms, measured mean {self.measured:.4g} ms over "
            f"{self.samples} chunks (expected within [{self.low:.4g}, {self.high:.4g}] ms at a "
            f"{rate}{late})"
        )

    def to_dict(self) -> dict[str, float | int | str | bool]:
        return {
            "what": self.what,
            "asked": self.asked,
            "measured": self.measured,
            "low": self.low,
            "high": self.high,
            "samples": self.samples,
            "false_alarm": self.false_alarm,
            "lateness_ms": self.lateness_ms,
            "ok": self.ok,
        }


def expected_delay_ms(latency_ms: float, jitter_ms: float) -> float:
    """The mean of ``max(0, latency + U(-jitter, jitter))``, in ms."""
    if jitter_ms <= latency_ms:
        return latency_ms
    low, high = latency_ms - jitter_ms, latency_ms + jitter_ms
    return high * high / (2.0 * (high - low))  # (the clipped part contributes zero)


def check_latency(
    latency_ms: float,
    jitter_ms: float,
    delays_ms: Sequence[float],
    *,
    false_alarm: float = DEFAULT_FALSE_ALARM,
    slack_ms: float = DEFAULT_SLACK_MS,
    lateness_ms: float = 0.0,
) -> ImpairmentCheck | None:
    """The measured mean delay of ``delays_ms`` (chunks not lost) against what was asked;
    None with fewer than :data:`MIN_SAMPLES` delays. ``lateness_ms``: how late, on average,
    the impairing process itself ran its timers (a loaded host), allowed for on top of
    ``slack_ms`` and said in the description."""
    count = len(delays_ms)
    if count < MIN_SAMPLES:
        return None
    mean = math.fsum(delays_ms) / count
    expected = expected_delay_ms(latency_ms, jitter_ms)
    sigma = jitter_ms / math.sqrt(3.0)
    half_width = z_value(1.0 - false_alarm) * sigma / math.sqrt(count)
    low = max(0.0, expected - half_width - 1.0)  # (1 ms: timer granularity, either way)
    late = max(0.0, lateness_ms)
    high = expected + half_width + slack_ms + late
    return ImpairmentCheck("latency_ms", latency_ms, mean, low, high, count, false_alarm, late)


def check_loss(
    loss_rate: float, lost: int, total: int, *, false_alarm: float = DEFAULT_FALSE_ALARM
) -> ImpairmentCheck | None:
    """``lost`` of ``total`` chunks against the asked ``loss_rate``; None with fewer than
    :data:`MIN_SAMPLES` chunks."""
    if total < MIN_SAMPLES:
        return None
    low, high = wilson_interval(lost, total, 1.0 - false_alarm)
    return ImpairmentCheck("loss_rate", loss_rate, lost / total, low, high, total, false_alarm)


def lost_threshold_ms(typical_ms: float, jitter_ms: float, rto_min_ms: float) -> float:
    """A chunk delayed by more than this was held back by a retransmission timeout (lost
    once at least): the typical delay (the median: what was applied, whatever was asked),
    the widest the jitter can move it, plus half the shortest timeout."""
    return typical_ms + 2.0 * jitter_ms + rto_min_ms / 2.0


def classify(
    received_written_s: Sequence[tuple[float, float]],
    latency_ms: float,
    jitter_ms: float,
    rto_min_ms: float,
) -> tuple[list[float], int, int]:
    """From ``(received, written)`` times of one direction's chunks in order: the delays of
    the chunks not lost (ms), the number lost, and the number judged.

    A chunk that arrived while the one ahead of it was still on its way and went out right
    behind it (within a millisecond) waited for it (TCP delivers in order): its delay says
    nothing of its own, and it is left out. Of the others, a chunk delayed by a
    retransmission timeout beyond the typical delay (the median: what was applied, whatever
    was asked, so a link with the wrong latency reads as such, not as lossy; this takes a
    loss rate below one half) was lost.
    """
    own: list[float] = []
    previous_written_s = -math.inf
    for received_s, written_s in received_written_s:
        behind = received_s < previous_written_s and written_s - previous_written_s < 0.001
        previous_written_s = written_s
        if not behind:
            own.append((written_s - received_s) * 1000.0)
    if not own:
        return [], 0, 0
    threshold = lost_threshold_ms(max(statistics.median(own), latency_ms), jitter_ms, rto_min_ms)
    delays = [delay for delay in own if delay <= threshold]
    return delays, len(own) - len(delays), len(own)
