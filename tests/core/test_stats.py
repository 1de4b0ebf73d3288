"""pytest_edgesim.core.stats: known values, the fixed-N and sequential rules, their error rates."""

from __future__ import annotations

import math
import random

import pytest

from pytest_edgesim.core import stats


# --- Wilson score interval -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("passed", "total", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion",
        # Statistics in Medicine 17:857-872, table I, method 3 (Wilson score)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # and the cases the plugin's tests rely on
        (20, 40, 0.3520, 0.6480),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_interval_known_values(passed: int, total: int, low: float, high: float) -> None:
    assert stats.wilson_interval(passed, total, 0.95) == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_edges() -> None:
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    z = stats.z_value(0.95)
    assert z == pytest.approx(1.959964, abs=1e-6)
    for n in (1, 7, 73):
        assert stats.wilson_interval(n, n)[0] == pytest.approx(n / (n + z * z))
        assert stats.wilson_interval(n, n)[1] == 1.0
        assert stats.wilson_interval(0, n)[0] == 0.0
    wide, narrow = stats.wilson_interval(9, 10, 0.99), stats.wilson_interval(9, 10, 0.8)
    assert wide[0] < narrow[0] < 0.9 < narrow[1] < wide[1]
    with pytest.raises(ValueError, match="confidence"):
        stats.wilson_interval(1, 2, 1.0)
    with pytest.raises(ValueError, match="passed"):
        stats.wilson_interval(3, 2)


@pytest.mark.parametrize(
    ("rate", "confidence", "trials"),
    [
        (0.95, 0.95, 73),  # the usual reference: 0.95 at two-sided 95 %
        (0.95, 0.90, 52),  # two-sided 90 % = one-sided 95 % (z = 1.645)
        (0.90, 0.95, 35),
        (0.99, 0.95, 381),
        (0.5, 0.95, 4),
    ],
)
def test_trials_to_demonstrate(rate: float, confidence: float, trials: int) -> None:
    assert stats.trials_to_demonstrate(rate, confidence) == trials
    assert stats.wilson_interval(trials, trials, confidence)[0] >= rate
    assert stats.wilson_interval(trials - 1, trials - 1, confidence)[0] < rate
    assert stats.fixed_verdict(trials, trials, rate, confidence).outcome == stats.DEMONSTRATED
    assert stats.fixed_verdict(trials - 1, trials - 1, rate, confidence).outcome == "not refuted"


def test_a_rate_of_one_cannot_be_demonstrated() -> None:
    assert stats.trials_to_demonstrate(1.0) is None
    assert stats.sequential_trials_to_demonstrate(1.0) is None
    assert stats.fixed_verdict(10_000, 10_000, 1.0).outcome == stats.NOT_REFUTED
    assert stats.fixed_verdict(9_999, 10_000, 1.0).outcome == stats.REFUTED


def test_fixed_verdict() -> None:
    assert stats.fixed_verdict(40, 40, 0.95).outcome == stats.NOT_REFUTED
    assert stats.fixed_verdict(20, 40, 0.95).outcome == stats.REFUTED  # upper 0.648
    assert stats.fixed_verdict(20, 40, 0.6).outcome == stats.NOT_REFUTED
    assert stats.fixed_verdict(20, 40, 0.35).outcome == stats.DEMONSTRATED  # lower 0.352
    verdict = stats.fixed_verdict(29, 30, 0.95)
    assert verdict.outcome == stats.NOT_REFUTED
    assert verdict.rate == pytest.approx(29 / 30)
    assert verdict.interval == stats.wilson_interval(29, 30)


# --- Student t ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("probability", "df", "quantile"),
    [
        # standard t tables (e.g. NIST/SEMATECH e-Handbook, 1.3.6.7.2)
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 5, 2.571),
        (0.975, 10, 2.228),
        (0.975, 29, 2.045),
        (0.975, 100, 1.984),
        (0.95, 4, 2.132),
        (0.995, 3, 5.841),
        (0.999, 20, 3.552),
        (0.90, 15, 1.341),
    ],
)
def test_t_quantile_table_values(probability: float, df: int, quantile: float) -> None:
    assert stats.student_t_quantile(probability, df) == pytest.approx(quantile, abs=6e-4)
    assert stats.student_t_quantile(1 - probability, df) == pytest.approx(-quantile, abs=6e-4)


@pytest.mark.parametrize("probability", [0.6, 0.8, 0.9, 0.975, 0.995, 0.9995])
def test_t_quantile_closed_forms(probability: float) -> None:
    # df = 1 is the Cauchy distribution; df = 2 has a closed form too
    cauchy = math.tan(math.pi * (probability - 0.5))
    two = (2 * probability - 1) / math.sqrt(2 * probability * (1 - probability))
    assert stats.student_t_quantile(probability, 1) == pytest.approx(cauchy, rel=1e-9)
    assert stats.student_t_quantile(probability, 2) == pytest.approx(two, rel=1e-9)
    normal = stats.NormalDist().inv_cdf(probability)
    assert stats.student_t_quantile(probability, 100_000) == pytest.approx(normal, rel=1e-4)


def test_t_cdf_is_the_inverse_of_the_quantile() -> None:
    assert stats.student_t_cdf(0.0, 3) == 0.5
    assert stats.student_t_quantile(0.5, 7) == 0.0
    for df in (1, 3, 8, 30, 250):
        for probability in (0.01, 0.3, 0.7, 0.99):
            t = stats.student_t_quantile(probability, df)
            assert stats.student_t_cdf(t, df) == pytest.approx(probability, abs=1e-10)


def test_mean_interval() -> None:
    interval = stats.mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert interval.mean == 3.0
    assert interval.stdev == pytest.approx(math.sqrt(2.5))
    # t(0.975, 4) = 2.776445
    assert interval.half_width == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert interval.interval == pytest.approx((1.036757, 4.963243), abs=1e-6)
    single = stats.mean_interval([4.0])
    assert single.mean == 4.0 and single.interval is None
    assert stats.mean_interval([2.0, 2.0, 2.0]).interval == (2.0, 2.0)
    with pytest.raises(ValueError):
        stats.mean_interval([])


# --- sequential: the beta-binomial mixture confidence sequence -----------------------------------
def test_confidence_sequence_contains_the_estimate_and_matches_the_decision() -> None:
    prior = stats.mixture_prior(0.9)
    for passed, total in [(0, 5), (3, 7), (18, 20), (40, 40), (95, 100)]:
        low, high = stats.confidence_sequence(passed, total, 0.95, prior)
        assert low <= passed / total <= high
        # wider than the fixed-N Wilson interval: it holds at every n at once
        wilson = stats.wilson_interval(passed, total)
        assert low <= wilson[0] + 1e-9 and high >= wilson[1] - 1e-9
        decision = stats.sequential_decision(passed, total, 0.9)
        if decision == stats.REFUTED:
            assert high < 0.9
        elif decision == stats.DEMONSTRATED:
            assert low > 0.9
        else:
            assert low <= 0.9 <= high


def test_sequential_all_passing_needs_more_trials_than_fixed_n() -> None:
    # the price of being allowed to stop at any time
    assert stats.sequential_trials_to_demonstrate(0.95) == 81
    assert stats.trials_to_demonstrate(0.95) == 73
    assert stats.sequential_verdict([True] * 80, 0.95).outcome == stats.UNDECIDED
    verdict = stats.sequential_verdict([True] * 200, 0.95)
    assert verdict.outcome == stats.DEMONSTRATED and verdict.total == 81


def test_one_failure_refutes_a_rate_of_one_at_once() -> None:
    verdict = stats.sequential_verdict([True, True, False, True], 1.0)
    assert verdict.outcome == stats.REFUTED and verdict.total == 3


@pytest.mark.parametrize("true_rate", [0.3, 0.5, 0.7])
def test_sequential_agrees_with_fixed_n_on_clear_refutations(true_rate: float) -> None:
    """Over 200 seeded sequences of 40 trials, whenever fixed N refutes 0.95 clearly (the
    Wilson upper bound at least 0.1 below it), the sequential rule on the same trials
    refutes too, with fewer trials."""
    rng = random.Random(f"clear-refutations/{true_rate}")
    clear = 0
    for _ in range(200):
        outcomes = [rng.random() < true_rate for _ in range(40)]
        fixed = stats.fixed_verdict(sum(outcomes), 40, 0.95)
        if fixed.interval[1] > 0.85:
            continue
        clear += 1
        sequential = stats.sequential_verdict(outcomes, 0.95)
        assert sequential.outcome == stats.REFUTED
        assert sequential.total < 40
    assert clear >= 100  # most sequences are clear refutations at these rates


def test_sequential_stops_early_on_half_failing() -> None:
    alternating = [index % 2 == 0 for index in range(40)]
    verdict = stats.sequential_verdict(alternating, 0.95)
    assert verdict.outcome == stats.REFUTED
    assert verdict.total == 10
    assert stats.fixed_verdict(20, 40, 0.95).outcome == stats.REFUTED


@pytest.mark.parametrize("min_pass_rate", [0.8, 0.95])
def test_sequential_false_decisions_are_rarer_than_alpha(min_pass_rate: float) -> None:
    """Monte Carlo, fixed seed: 1000 runs of up to 200 trials, checked after every trial.

    At a true rate equal to ``min_pass_rate`` (the worst case for a false refutation),
    Ville's inequality bounds the chance of ever refuting by alpha = 0.05; likewise at a
    true rate 0.05 below it for a false demonstration. If the true chance were alpha, the
    count over 1000 runs would exceed 50 about half the time; we observe far fewer (the
    bound is conservative), so ``<= 50`` is a strict check that holds with this seed.
    """
    alpha, runs, budget = 0.05, 1000, 200
    rng = random.Random(f"false-decisions/{min_pass_rate}")

    def count(true_rate: float, wrong: str) -> int:
        errors = 0
        for _ in range(runs):
            outcomes = [rng.random() < true_rate for _ in range(budget)]
            errors += stats.sequential_verdict(outcomes, min_pass_rate).outcome == wrong
        return errors

    false_refutations = count(min_pass_rate, stats.REFUTED)
    false_demonstrations = count(min_pass_rate - 0.05, stats.DEMONSTRATED)
    assert false_refutations <= alpha * runs
    assert false_demonstrations <= alpha * runs


@pytest.mark.parametrize(
    ("passed", "total", "rate"),
    [(0, 0, 0.95), (20, 20, 0.95), (19, 20, 0.95), (15, 20, 0.9), (3, 10, 0.5), (99, 100, 0.9)],
)
def test_more_trials_to_demonstrate_counts_from_the_trials_run(
    passed: int, total: int, rate: float
) -> None:
    """The count still needed after failures, not the from-scratch count: the fewest k with
    the Wilson lower bound of passed + k of total + k at least the rate."""
    more = stats.more_trials_to_demonstrate(passed, total, rate)
    assert more is not None
    assert stats.wilson_interval(passed + more, total + more)[0] >= rate
    if more:
        assert stats.wilson_interval(passed + more - 1, total + more - 1)[0] < rate
    if passed == total:
        assert more == max(0, stats.trials_to_demonstrate(rate) - total)


def test_more_trials_after_a_failure_exceed_the_from_scratch_count() -> None:
    # 19 of 20 (one failure): 73 all-passing trials from scratch would not be enough
    more = stats.more_trials_to_demonstrate(19, 20, 0.95)
    assert more is not None and 20 + more > stats.trials_to_demonstrate(0.95)
    assert stats.more_trials_to_demonstrate(5, 6, 1.0) is None


def test_sequential_more_trials_to_demonstrate() -> None:
    assert stats.sequential_more_trials_to_demonstrate(10, 10, 0.95) == 81 - 10
    more = stats.sequential_more_trials_to_demonstrate(9, 10, 0.95)
    assert more is not None and more > 71
    assert stats.sequential_decision(9 + more, 10 + more, 0.95) == stats.DEMONSTRATED
    assert stats.sequential_decision(8 + more, 9 + more, 0.95) == stats.CONTINUE
    assert stats.sequential_more_trials_to_demonstrate(1, 1, 1.0) is None


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9, 0.95])
def test_sequential_more_trials_is_the_first_all_passing_demonstration(rate: float) -> None:
    """(The galloping search against a plain walk, over every count up to 12 trials.)"""
    for total in range(13):
        for passed in range(total + 1):
            more = 0
            while stats.sequential_decision(passed + more, total + more, rate) != (
                stats.DEMONSTRATED
            ):
                more += 1
            assert stats.sequential_more_trials_to_demonstrate(passed, total, rate) == more
