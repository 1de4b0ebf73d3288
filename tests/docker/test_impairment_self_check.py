"""The impairment self-check on a real link: the proxy in front of the real broker, real
MQTT clients through it, and the numbers it measured against what was asked.

Statistics: :mod:`pytest_edgesim.core.impairment_check` (bounds at a 0.001 false-alarm rate
per check; the proxy's draws are seeded, so the loss count is the same on every machine;
the latency bound allows 10 ms of scheduling delay on average).
"""

from __future__ import annotations

import os
import time
import warnings

import pytest
from mqtt_probe import Probe

from pytest_edgesim.docker.broker import BrokerContainer
from pytest_edgesim.docker.impairment import Impairment, ImpairmentMismatchWarning, impair

CLIENTS, MESSAGES, GAP_S = 8, 40, 0.02


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    return f"edgesim-test/{os.getpid()}/{request.node.name}"


def traffic(impairment: Impairment, topic: str) -> None:
    """Publishers and a subscriber through the proxy: chunks both ways."""
    subscriber = Probe(impairment.host, impairment.port, subscribe=((topic, 0),))
    publishers = [Probe(impairment.host, impairment.port) for _ in range(CLIENTS)]
    try:
        for index in range(MESSAGES):
            for publisher in publishers:
                publisher.publish(topic, b"%d" % index, qos=0)
            time.sleep(GAP_S)
        # everything forwarded: the last messages reached the subscriber
        deadline = time.monotonic() + 30
        received = 0
        while received < CLIENTS * MESSAGES and time.monotonic() < deadline:
            subscriber.receive(timeout_s=30)
            received += 1
    finally:
        for probe in [*publishers, subscriber]:
            probe.close()


def test_a_proxy_that_applies_what_was_asked_measures_so_and_does_not_warn(
    broker: BrokerContainer, topic: str
) -> None:
    impairment = impair(broker, latency="30ms", jitter="10ms", loss=0.05, mechanism="proxy", seed=3)
    try:
        traffic(impairment, topic)
        checks = impairment.self_check()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ImpairmentMismatchWarning)
            impairment.remove()
    assert sorted(check.what for _, check in checks) == ["latency_ms", "loss_rate"]
    for _, check in checks:
        assert check.ok, check.describe()
        assert check.samples >= 200  # (each publish is a chunk up, each delivery one down)


def test_a_setting_applied_wrong_is_a_warning_with_the_numbers(
    broker: BrokerContainer, topic: str
) -> None:
    impairment = impair(broker, latency="30ms", mechanism="proxy", seed=3)
    # what a translation mistake does: the proxy applies 150 ms and 20 % loss, not what
    # was asked (30 ms, no loss)
    assert impairment.proxy is not None
    impairment.proxy.set_profile(latency_ms=150, loss_rate=0.2)
    try:
        traffic(impairment, topic)
    finally:
        with pytest.warns(ImpairmentMismatchWarning) as warned:
            impairment.remove()
    (warning,) = warned
    message = str(warning.message)
    assert "(proxy) did not apply what was asked: " in message
    assert "loss: asked 0, measured 0." in message
    assert "latency: asked 30 ms, measured mean " in message
