"""The impairment self-check's statistics, on planted numbers (the Docker tier uses it on
real links: tests/docker/test_impairment_check.py)."""

from __future__ import annotations

from pytest_edgesim.core.impairment_check import (
    check_latency,
    check_loss,
    classify,
    expected_delay_ms,
)
from pytest_edgesim.core.rng import RandomStream

RTO_MS = 200.0


def delays(latency_ms: float, jitter_ms: float, count: int, seed: int = 1, late_ms: float = 0.4):
    """Delays as a correct link gives them: latency + U(-jitter, jitter), a little late."""
    stream = RandomStream(seed, "test/delays")
    return [
        max(0.0, latency_ms + stream.uniform(-jitter_ms, jitter_ms)) + late_ms for _ in range(count)
    ]


def test_a_link_that_applies_what_was_asked_passes():
    check = check_latency(30, 10, delays(30, 10, 400))
    assert check is not None and check.ok, check.describe()
    assert check_loss(0.1, 41, 400).ok


def test_a_link_off_by_a_unit_or_a_rule_is_caught_with_its_numbers():
    wrong = check_latency(30, 10, delays(300, 10, 400))  # (ms read as tenths of seconds)
    assert wrong is not None and not wrong.ok
    assert wrong.describe().startswith(
        "latency: asked 30 ms, measured mean 299.9 ms over 400 chunks (expected within ["
    )
    none_applied = check_latency(30, 10, delays(0, 0, 400))  # (the rule never matched)
    assert none_applied is not None and not none_applied.ok
    lossy = check_loss(0.05, 60, 400)  # 15 % where 5 % was asked
    assert not lossy.ok
    assert lossy.describe() == (
        "loss: asked 0.05, measured 0.15 over 400 chunks (interval "
        f"[{lossy.low:.4g}, {lossy.high:.4g}] at a 0.001 false-alarm rate)"
    )


def test_too_few_samples_say_nothing():
    assert check_latency(30, 10, delays(300, 10, 5)) is None
    assert check_loss(0.1, 5, 10) is None


def test_the_false_alarm_rate_is_what_it_says():
    """500 checks of correct links at a 1 % false-alarm rate: binomial(500, 0.01) exceeds 15
    with probability below 1e-4 (the latency check is conservative: fewer)."""
    stream = RandomStream(3, "test/false-alarms")
    alarms = 0
    for seed in range(500):
        lost = sum(stream.random() < 0.1 for _ in range(200))
        alarms += not check_loss(0.1, lost, 200, false_alarm=0.01).ok
        latency = check_latency(30, 10, delays(30, 10, 100, seed), false_alarm=0.01)
        assert latency is not None
        alarms += not latency.ok
    assert alarms <= 2 * 15


def test_the_expected_delay_accounts_for_clipping_at_zero():
    assert expected_delay_ms(30, 10) == 30
    # latency 5, jitter 15: max(0, U(-10, 20)), mean = 20^2 / (2 * 30)
    assert abs(expected_delay_ms(5, 15) - 400 / 60) < 1e-9


def test_chunks_held_behind_a_lost_one_are_left_out():
    # (received, written) in s: normal chunks 30 ms late, a lost one (an RTO later), one
    # that arrived while the lost one was held (delivered right after it), normal ones
    chunks = [(0.0, 0.030), (0.5, 0.531), (1.0, 1.232), (1.01, 1.232), (2.0, 2.031)]
    chunks += [(3.0 + i, 3.03 + i) for i in range(4)]
    kept, lost, judged = classify(chunks, 30, 5, RTO_MS)
    assert [round(delay, 3) for delay in kept] == [30.0, 31.0, 31.0, 30.0, 30.0, 30.0, 30.0]
    assert (lost, judged) == (1, 8)


def test_a_link_with_the_wrong_latency_reads_as_such_not_as_lossy():
    chunks = [(float(i), i + 0.150) for i in range(50)]  # 150 ms where 30 were asked
    kept, lost, judged = classify(chunks, 30, 0, RTO_MS)
    assert (len(kept), lost, judged) == (50, 0, 50)
