"""Intervals and verdicts for the statistical tier: pure functions, no pytest.

- :func:`wilson_interval`: the Wilson score interval for a pass rate (two-sided).
- :func:`trials_to_demonstrate`: how many all-passing trials demonstrate a rate;
  :func:`more_trials_to_demonstrate`: how many more after some trials (failures included).
- :func:`fixed_verdict`: the fixed-N rule (*demonstrated*, *not refuted* or *refuted*).
- :func:`confidence_sequence` / :func:`sequential_decision`: the anytime-valid rule used by
  ``sequential=True`` (a beta-binomial mixture confidence sequence, Robbins 1970).
- :func:`student_t_quantile` / :func:`mean_interval`: the Student-t interval for the mean of
  a per-trial metric.

The formulas, the conventions and a worked example are in ``docs/statistics.md``.

Convention: ``confidence`` is always two-sided. The Wilson interval at ``confidence=0.95``
uses ``z = 1.95996`` (2.5 % in each tail), so each one-sided decision (refute, demonstrate)
errs with probability at most about ``(1 - confidence) / 2``. The confidence sequence is a
single two-sided set whose chance of ever excluding the true rate is at most
``1 - confidence``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

DEMONSTRATED = "demonstrated"
NOT_REFUTED = "not refuted"
REFUTED = "refuted"
UNDECIDED = "undecided"
CONTINUE = "continue"

#: The beta-binomial mixture's prior is Beta(PRIOR_STRENGTH * r, PRIOR_STRENGTH * (1 - r))
#: for the threshold rate ``r``, each parameter at least :data:`PRIOR_FLOOR`.
PRIOR_STRENGTH = 10.0
PRIOR_FLOOR = 0.5


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")


def _check_counts(passed: int, total: int) -> None:
    if total < 0 or not 0 <= passed <= total:
        raise ValueError(f"expected 0 <= passed <= total, got passed={passed}, total={total}")


def z_value(confidence: float) -> float:
    """The standard normal quantile of a two-sided interval at ``confidence`` (0.95: 1.96)."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


# --- the pass rate: Wilson score interval ------------------------------------------------------
def wilson_interval(passed: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The two-sided Wilson score interval for a binomial proportion ``passed / total``.

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = passed / total``.
    Unlike the normal ("Wald") interval it stays inside [0, 1] and is useful at 0 or n
    passes: with every trial passing the lower bound is ``n / (n + z²)``. No trials: (0, 1).
    """
    _check_counts(passed, total)
    z = z_value(confidence)
    if total == 0:
        return 0.0, 1.0
    rate = passed / total
    z2_n = z * z / total
    centre = (rate + z2_n / 2.0) / (1.0 + z2_n)
    half = z / (1.0 + z2_n) * math.sqrt(rate * (1.0 - rate) / total + z2_n / (4.0 * total))
    # at 0 or n passes one bound is exactly 0 or 1; do not let rounding move it
    lower = 0.0 if passed == 0 else max(0.0, centre - half)
    upper = 1.0 if passed == total else min(1.0, centre + half)
    return lower, upper


def trials_to_demonstrate(rate: float, confidence: float = 0.95) -> int | None:
    """The fewest trials that, all passing, demonstrate ``rate`` (Wilson lower bound >= rate).

    All n passing gives the lower bound ``n / (n + z²)``, so n is the smallest integer with
    ``n >= rate·z² / (1 - rate)``. With the two-sided convention, 0.95 at 95 % needs 73
    (one-sided z = 1.645 would give 52). None for ``rate >= 1``: no finite number of trials
    demonstrates a rate of 1.
    """
    _check_confidence(confidence)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
    if rate >= 1.0:
        return None
    if rate <= 0.0:
        return 0
    z2 = z_value(confidence) ** 2
    n = max(1, math.ceil(rate * z2 / (1.0 - rate) - 1e-9))
    while wilson_interval(n, n, confidence)[0] < rate:  # guard the float rounding of ceil
        n += 1
    while n > 1 and wilson_interval(n - 1, n - 1, confidence)[0] >= rate:
        n -= 1
    return n


def more_trials_to_demonstrate(
    passed: int, total: int, rate: float, confidence: float = 0.95
) -> int | None:
    """The fewest further trials that, all passing, make ``passed`` of ``total`` demonstrate
    ``rate`` (the Wilson lower bound of ``passed + k`` of ``total + k`` at least ``rate``);
    0 when it is already demonstrated, None for ``rate >= 1``. With no trials yet it is
    :func:`trials_to_demonstrate`. (Trial seeds follow the trial's index, so ``trials=total
    + k`` replays these trials and adds ``k``.)"""
    _check_counts(passed, total)
    _check_confidence(confidence)
    if rate >= 1.0:
        return None

    def demonstrates(more: int) -> bool:
        return wilson_interval(passed + more, total + more, confidence)[0] >= rate

    if demonstrates(0):
        return 0
    low, high = 0, 1
    while not demonstrates(high):  # the bound rises towards 1 as passes accrue
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if demonstrates(middle):
            high = middle
        else:
            low = middle
    return high


@dataclass(frozen=True)
class RateVerdict:
    """A verdict on a pass rate: ``outcome`` is demonstrated, not refuted, refuted (fixed N)
    or demonstrated, refuted, undecided (sequential); ``interval`` is the one it rests on."""

    outcome: str
    passed: int
    total: int
    interval: tuple[float, float]
    min_pass_rate: float
    confidence: float

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else math.nan


def fixed_verdict(
    passed: int, total: int, min_pass_rate: float, confidence: float = 0.95
) -> RateVerdict:
    """The fixed-N rule on the Wilson interval ``[lower, upper]`` at ``confidence``:

    *refuted* when ``upper < min_pass_rate`` (the rate is shown to be below it), else
    *demonstrated* when ``lower >= min_pass_rate``, else *not refuted* (passes, but the trials
    were too few to demonstrate the rate).
    """
    lower, upper = wilson_interval(passed, total, confidence)
    if upper < min_pass_rate:
        outcome = REFUTED
    elif lower >= min_pass_rate:
        outcome = DEMONSTRATED
    else:
        outcome = NOT_REFUTED
    return RateVerdict(outcome, passed, total, (lower, upper), min_pass_rate, confidence)


# --- sequential: a beta-binomial mixture confidence sequence ------------------------------------
def mixture_prior(min_pass_rate: float) -> tuple[float, float]:
    """The Beta prior of the mixture: mean near ``min_pass_rate``, strength ~10 trials.

    Any prior fixed before the trials gives a valid confidence sequence; one centred on the
    threshold puts the mixture's weight where the decision is made, which shortens both
    demonstrations and refutations near it.
    """
    return (
        max(PRIOR_FLOOR, PRIOR_STRENGTH * min_pass_rate),
        max(PRIOR_FLOOR, PRIOR_STRENGTH * (1.0 - min_pass_rate)),
    )


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def log_mixture_ratio(passed: int, total: int, rate: float, prior: tuple[float, float]) -> float:
    """``log M_n(rate)``: the beta-binomial mixture likelihood over the likelihood at ``rate``.

    ``M_n(p) = B(a + S, b + F) / B(a, b) / (p^S (1 - p)^F)`` for S passes and F failures.
    Under a true rate p it is a non-negative martingale starting at 1, so by Ville's
    inequality ``P(M_n(p) >= 1/alpha for some n) <= alpha``.
    """
    _check_counts(passed, total)
    a, b = prior
    failed = total - passed
    log_mixture = _log_beta(a + passed, b + failed) - _log_beta(a, b)
    log_likelihood = 0.0
    for count, probability in ((passed, rate), (failed, 1.0 - rate)):
        if count:
            if probability <= 0.0:
                return math.inf
            log_likelihood += count * math.log(probability)
    return log_mixture - log_likelihood


def confidence_sequence(
    passed: int,
    total: int,
    confidence: float = 0.95,
    prior: tuple[float, float] = (1.0, 1.0),
) -> tuple[float, float]:
    """The set ``{p : M_n(p) < 1/alpha}`` at ``alpha = 1 - confidence``: an interval around
    ``passed / total`` (``log M_n`` is convex in p with its minimum there) that contains the
    true rate at every n at once with probability at least ``confidence``."""
    _check_confidence(confidence)
    if total == 0:
        return 0.0, 1.0
    threshold = math.log(1.0 / (1.0 - confidence))
    estimate = passed / total

    def outside(rate: float) -> bool:
        return log_mixture_ratio(passed, total, rate, prior) >= threshold

    def boundary(inside: float, far: float) -> float:
        if not outside(far):
            return far
        for _ in range(60):
            middle = (inside + far) / 2.0
            if outside(middle):
                far = middle
            else:
                inside = middle
        return inside

    return boundary(estimate, 0.0), boundary(estimate, 1.0)


def sequential_decision(
    passed: int, total: int, min_pass_rate: float, confidence: float = 0.95
) -> str:
    """After ``total`` trials: *demonstrated* when the confidence sequence lies at or above
    ``min_pass_rate``, *refuted* when it lies below it, else *continue*.

    The rule may be checked after every trial and stopped at the first decision: the chance
    of ever refuting a rate that is in fact at least ``min_pass_rate`` (or of ever
    demonstrating one that is below it) is at most ``1 - confidence``.
    """
    _check_confidence(confidence)
    if total == 0:
        return CONTINUE
    prior = mixture_prior(min_pass_rate)
    excluded = log_mixture_ratio(passed, total, min_pass_rate, prior) >= math.log(
        1.0 / (1.0 - confidence)
    )
    if not excluded:
        return CONTINUE
    # log M_n is convex with its minimum at passed/total: excluding the threshold excludes
    # every rate on the far side of it too
    return REFUTED if passed / total < min_pass_rate else DEMONSTRATED


@functools.lru_cache(maxsize=64)
def sequential_trials_to_demonstrate(
    rate: float, confidence: float = 0.95, limit: int = 1_000_000
) -> int | None:
    """The fewest trials that, all passing, make :func:`sequential_decision` say
    *demonstrated* (None for ``rate >= 1``, or beyond ``limit``)."""
    _check_confidence(confidence)
    if rate >= 1.0:
        return None
    for total in range(1, limit + 1):
        if sequential_decision(total, total, rate, confidence) == DEMONSTRATED:
            return total
    return None


def sequential_more_trials_to_demonstrate(
    passed: int, total: int, rate: float, confidence: float = 0.95, limit: int = 1_000_000
) -> int | None:
    """The fewest further trials that, all passing, make :func:`sequential_decision` say
    *demonstrated* after ``passed`` of ``total`` (None for ``rate >= 1``, or beyond
    ``limit``). Each further pass only raises the estimate, so none of them can refute.

    Once the estimate is at least ``rate`` a further pass multiplies ``M_n(rate)`` by
    ``(a + S) / (a + b + n) / rate >= 1`` (the prior's mean is ``rate``), so once
    demonstrated, more passes stay demonstrated: a galloping search finds the first."""
    _check_counts(passed, total)
    _check_confidence(confidence)
    if rate >= 1.0:
        return None

    def demonstrates(more: int) -> bool:
        return sequential_decision(passed + more, total + more, rate, confidence) == DEMONSTRATED

    if demonstrates(0):
        return 0
    low, high = 0, 1
    while not demonstrates(high):
        if high >= limit:
            return None
        low, high = high, min(high * 2, limit)
    while high - low > 1:
        middle = (low + high) // 2
        if demonstrates(middle):
            high = middle
        else:
            low = middle
    return high


def sequential_verdict(
    outcomes: Sequence[bool], min_pass_rate: float, confidence: float = 0.95
) -> RateVerdict:
    """Play the sequential rule over ``outcomes`` (True = the trial passed) and stop at the
    first decision; *undecided* when the trials run out first."""
    passed = total = 0
    decision = CONTINUE
    for trial_passed in outcomes:
        total += 1
        passed += bool(trial_passed)
        decision = sequential_decision(passed, total, min_pass_rate, confidence)
        if decision != CONTINUE:
            break
    interval = confidence_sequence(passed, total, confidence, mixture_prior(min_pass_rate))
    outcome = UNDECIDED if decision == CONTINUE else decision
    return RateVerdict(outcome, passed, total, interval, min_pass_rate, confidence)


# --- per-trial metrics: the Student-t interval --------------------------------------------------
def _incomplete_beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        m2 = 2 * m
        numerator = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        result *= d * c
        numerator = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        result *= step
        if abs(step - 1.0) < 1e-15:
            break
    return result


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """``I_x(a, b)``, the regularised incomplete beta function (Numerical Recipes 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _incomplete_beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _incomplete_beta_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df!r}")
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(probability: float, df: float) -> float:
    """The ``probability`` quantile of Student's t with ``df`` degrees of freedom.

    Bisection on :func:`student_t_cdf` (to ~1e-12 relative); exact closed forms for df 1
    and 2 are used by the tests as a check.
    """
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must be between 0 and 1 (exclusive), got {probability!r}")
    if probability == 0.5:
        return 0.0
    if probability < 0.5:
        return -student_t_quantile(1.0 - probability, df)
    low, high = 0.0, max(1.0, NormalDist().inv_cdf(probability))
    while student_t_cdf(high, df) < probability:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if student_t_cdf(middle, df) < probability:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * high:
            break
    return (low + high) / 2.0


@dataclass(frozen=True)
class MeanInterval:
    """A sample mean with its two-sided Student-t interval (None with fewer than 2 values)."""

    count: int
    mean: float
    stdev: float
    half_width: float | None
    confidence: float

    @property
    def interval(self) -> tuple[float, float] | None:
        if self.half_width is None:
            return None
        return self.mean - self.half_width, self.mean + self.half_width


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> MeanInterval:
    """``mean ± t(1 - alpha/2, n - 1) · s / sqrt(n)``, the t interval for the mean."""
    _check_confidence(confidence)
    count = len(values)
    if count == 0:
        raise ValueError("no values to average")
    mean = math.fsum(values) / count
    if count == 1:
        return MeanInterval(1, mean, 0.0, None, confidence)
    stdev = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (count - 1))
    t = student_t_quantile(0.5 + confidence / 2.0, count - 1)
    return MeanInterval(count, mean, stdev, t * stdev / math.sqrt(count), confidence)
