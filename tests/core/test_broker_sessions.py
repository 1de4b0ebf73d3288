"""MQTT sessions at the broker model: persistent and clean sessions across a partition, the
offline queue and its limit, the in-flight limit, retained messages on reconnection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_edgesim import Scenario, ScenarioError, simulate
from pytest_edgesim.core.units import TICKS_PER_MS

#: a reading every 100 ms from 0 s; the gateway is cut off from the broker from 5 s to 15 s
#: and the broker gives up on it after 1.5 x 2 s of keep-alive, at 8 s
PERIOD_S = 0.1
CUT_START_S, CUT_END_S, KEEPALIVE_S = 5, 15, 2
DURATION_S = 30


def sessions_scenario(
    session: dict[str, Any] | None,
    *,
    broker: dict[str, Any] | None = None,
    qos: int = 1,
    cut: tuple[float, float] | None = (CUT_START_S, CUT_END_S),
    retain: bool = False,
    stop: str | None = None,
) -> Scenario:
    gateway: dict[str, Any] = {"name": "gw", "subscribe": [{"filter": "sensors/#", "qos": 1}]}
    if session is not None:
        gateway["session"] = session
    data: dict[str, Any] = {
        "edgesim": 1,
        "duration": f"{DURATION_S}s",
        "broker": broker or {},
        "devices": [
            {
                "name": "s",
                "topic": "sensors/s",
                "qos": qos,
                "retain": retain,
                "publish": {"period": f"{PERIOD_S}s", "offset": 0, "stop": stop},
            }
        ],
        "gateways": [gateway],
        "network": {"default": {"latency": "1ms"}},
    }
    if cut is not None:
        data["network"]["partitions"] = [
            {"between": ["gw", "broker"], "start": f"{cut[0]}s", "end": f"{cut[1]}s"}
        ]
    return Scenario.from_dict(data)


def received_by_gateway(result) -> list[int]:
    """The sequence numbers of the readings the gateway received, in arrival order."""
    return [
        int(event[5].rsplit("#", 1)[-1])
        for event in result.trace
        if event[1] == "deliver" and event[2] == "gw"
    ]


def published(result) -> int:
    return result.metrics.node("s").sent - result.metrics.node("s").redelivered


def run(scenario: Scenario):
    return simulate(scenario, trace="full")


def readings_in(start_s: float, end_s: float) -> int:
    """Readings published in [start, end) (one every PERIOD_S from 0)."""
    return round((end_s - start_s) / PERIOD_S)


def test_a_persistent_session_gets_what_was_published_while_it_was_offline_in_order():
    result = run(sessions_scenario({"clean": False, "keepalive": f"{KEEPALIVE_S}s"}))
    seqs = received_by_gateway(result)
    assert seqs == sorted(set(seqs)), "in publication order, no duplicates"
    assert len(seqs) == published(result)
    assert set(result.metrics.node("broker").dropped) == {
        "loss",
        "partition",
        "queue_overflow",
        "rejected",
        "node_down",
    }, "no session drops"


def test_beyond_max_queued_messages_a_persistent_session_loses_the_newest_as_queue_full():
    limit = 50
    result = run(
        sessions_scenario(
            {"clean": False, "keepalive": f"{KEEPALIVE_S}s"},
            broker={"max_queued_messages": limit},
        )
    )
    # at 8 s the readings of 5..8 s are in flight (held), those of 8..15 s are queued; as
    # Mosquitto does, the limit counts both
    held_and_queued = readings_in(CUT_START_S, CUT_END_S)
    full = held_and_queued - limit
    assert result.metrics.node("broker").dropped["queue_full"] == full
    assert result.metrics.topic("sensors/s").dropped["queue_full"] == full
    assert result.metrics.link("broker", "gw").dropped["queue_full"] == full
    seqs = received_by_gateway(result)
    assert seqs == sorted(set(seqs))
    assert len(seqs) == published(result) - full
    # the oldest are kept, the newest dropped
    first_dropped = readings_in(0, CUT_START_S) + limit + 1
    assert first_dropped not in seqs and first_dropped - 1 in seqs


def test_a_clean_session_loses_what_was_in_flight_and_published_while_it_was_offline():
    result = run(sessions_scenario({"clean": True, "keepalive": f"{KEEPALIVE_S}s"}))
    expiry_s = CUT_START_S + 1.5 * KEEPALIVE_S
    dropped = result.metrics.node("broker").dropped
    assert dropped["session_lost"] == readings_in(CUT_START_S, expiry_s)
    assert dropped["offline"] == readings_in(expiry_s, CUT_END_S)
    seqs = received_by_gateway(result)
    assert seqs == sorted(set(seqs))
    assert len(seqs) == published(result) - readings_in(CUT_START_S, CUT_END_S)


def test_a_partition_shorter_than_the_keepalive_keeps_the_connection():
    # (the QoS 1 retries deliver what the partition dropped, as without a session)
    with_session = run(sessions_scenario({"clean": True, "keepalive": "60s"}))
    without = run(sessions_scenario(None))
    assert received_by_gateway(with_session) == received_by_gateway(without)
    assert "offline" not in with_session.metrics.node("broker").dropped


def test_qos0_while_offline_is_dropped_unless_queue_qos0_messages():
    session = {"clean": False, "keepalive": f"{KEEPALIVE_S}s"}
    expiry_s = CUT_START_S + 1.5 * KEEPALIVE_S
    dropped = run(sessions_scenario(session, qos=0))
    assert dropped.metrics.node("broker").dropped["offline"] == readings_in(expiry_s, CUT_END_S)
    queued = run(sessions_scenario(session, qos=0, broker={"queue_qos0_messages": True}))
    assert "offline" not in queued.metrics.node("broker").dropped
    assert len(received_by_gateway(queued)) == len(received_by_gateway(dropped)) + readings_in(
        expiry_s, CUT_END_S
    )


def test_retained_messages_are_delivered_again_when_a_clean_session_subscribes_again():
    # the sensor stops at 4 s; its last reading stays retained at the broker
    def retained_deliveries(session):
        scenario = sessions_scenario(session, retain=True, stop="4s")
        return received_by_gateway(simulate(scenario, trace="full"))

    last = readings_in(0, 4)  # (sequence numbers count from 1)
    clean = retained_deliveries({"clean": True, "keepalive": f"{KEEPALIVE_S}s"})
    assert clean.count(last) == 2, "once when published, once on the new subscription"
    persistent = retained_deliveries({"clean": False, "keepalive": f"{KEEPALIVE_S}s"})
    assert persistent.count(last) == 1, "a resumed session does not subscribe again"


def max_in_flight(result, latency_ticks: int) -> int:
    """The most QoS 1 PUBLISHes the broker had unacknowledged to the gateway at once (a
    constant link latency: each was sent ``latency`` before it arrived, and acknowledged
    when its PUBACK arrived back)."""
    changes = []
    for event in result.trace:
        if event[1] == "deliver" and event[2] == "gw":
            changes.append((event[0] - latency_ticks, 1))
        elif event[1] == "ack" and event[2] == "broker" and event[3] == "gw":
            changes.append((event[0], -1))
    in_flight = most = 0
    for _time, change in sorted(changes, key=lambda c: (c[0], c[1])):
        in_flight += change
        most = max(most, in_flight)
    return most


@pytest.mark.parametrize(("inflight_limit", "queue_limit"), [(5, 0), (5, 30), (1, 1000)])
def test_the_in_flight_limit_holds_under_a_burst(inflight_limit, queue_limit):
    # 40 sensors publish at the same instant, every second
    data = {
        "edgesim": 1,
        "duration": "5s",
        "broker": {"max_inflight_messages": inflight_limit, "max_queued_messages": queue_limit},
        "devices": [{"name": "s", "count": 40, "qos": 1, "publish": {"period": "1s", "offset": 0}}],
        "gateways": [{"name": "gw", "subscribe": [{"filter": "sensors/#", "qos": 1}]}],
        "network": {"default": {"latency": "10ms"}},
    }
    result = simulate(Scenario.from_dict(data), trace="full")
    assert max_in_flight(result, 10 * TICKS_PER_MS) == inflight_limit
    burst = 40
    full = max(0, burst - inflight_limit - queue_limit) if queue_limit else 0
    dropped = result.metrics.node("broker").dropped
    assert dropped.get("queue_full", 0) == full * 5
    assert result.metrics.node("gw").delivered == (burst - full) * 5


def test_without_a_session_or_limits_the_broker_keeps_no_client_state():
    result = simulate(sessions_scenario(None), trace="digest")
    assert "sessions" not in result.nodes["broker"]


@settings(max_examples=25, deadline=None)
@given(
    cut_start=st.integers(1, 10),
    cut_length=st.integers(1, 12),
    keepalive=st.integers(1, 4),
    queue_limit=st.integers(0, 80),
    clean=st.booleans(),
)
def test_every_reading_is_delivered_once_or_dropped_with_a_session_cause(
    cut_start, cut_length, keepalive, queue_limit, clean
):
    scenario = sessions_scenario(
        {"clean": clean, "keepalive": f"{keepalive}s"},
        broker={"max_queued_messages": queue_limit},
        cut=(cut_start, cut_start + cut_length),
    )
    first, second = simulate(scenario, trace="full"), simulate(scenario, trace="full")
    assert first.trace_digest == second.trace_digest
    seqs = received_by_gateway(first)
    if cut_length > 1.5 * keepalive:
        # (a shorter cut keeps the connection: QoS 1 retries deliver out of order)
        assert seqs == sorted(seqs), "in order"
    dropped = first.metrics.node("broker").dropped
    session_drops = sum(dropped.get(c, 0) for c in ("queue_full", "offline", "session_lost"))
    # a reading in flight at the end of the run is neither
    in_flight_at_end = published(first) - len(set(seqs)) - session_drops
    assert 0 <= in_flight_at_end <= 1


def test_wrong_session_and_limit_fields_are_named_with_their_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "edgesim: 1\n"
        "broker:\n"
        "  max_inflight_messages: -1\n"
        "gateways:\n"
        "  - name: gw\n"
        "    subscribe: ['sensors/#']\n"
        "    session: {clean: 'no', keepalive: 0}\n"
    )
    with pytest.raises(ScenarioError) as error:
        Scenario.from_yaml(path)
    message = str(error.value)
    assert f"{path}:3: broker.max_inflight_messages: must be at least 0, got -1" in message
    assert f"{path}:7: gateways[0].session.clean: must be true or false, got 'no'" in message
    assert f"{path}:7: gateways[0].session.keepalive: must be longer than zero" in message


def test_a_persistent_session_that_outlives_its_expiry_interval_ends_as_a_clean_one():
    expiry_s = 3
    result = run(
        sessions_scenario(
            {"clean": False, "keepalive": f"{KEEPALIVE_S}s", "expiry": f"{expiry_s}s"}
        )
    )
    offline_s = CUT_START_S + 1.5 * KEEPALIVE_S
    dropped = result.metrics.node("broker").dropped
    # held (5-8 s) and queued (8-11 s) until it expired, then nothing kept (11-15 s)
    assert dropped["session_lost"] == readings_in(CUT_START_S, offline_s + expiry_s)
    assert dropped["offline"] == readings_in(offline_s + expiry_s, CUT_END_S)
    sessions = [event[6] for event in result.trace if event[1] == "session"]
    assert sessions == ["offline", "expired", "clean"]
    seqs = received_by_gateway(result)
    assert seqs == sorted(set(seqs))
    assert len(seqs) == published(result) - readings_in(CUT_START_S, CUT_END_S)


def test_a_session_reconnected_before_its_expiry_is_resumed():
    result = run(
        sessions_scenario({"clean": False, "keepalive": f"{KEEPALIVE_S}s", "expiry": "1h"})
    )
    assert [event[6] for event in result.trace if event[1] == "session"] == ["offline", "resumed"]
    assert len(received_by_gateway(result)) == published(result)


def test_expiry_needs_a_persistent_session():
    with pytest.raises(ScenarioError, match="expiry is for a persistent session"):
        sessions_scenario({"clean": True, "expiry": "10s"})


def test_a_session_run_gives_the_same_digest_in_another_process_and_hash_seed():
    scenario = sessions_scenario(
        {"clean": False, "keepalive": f"{KEEPALIVE_S}s", "expiry": "4s"},
        broker={"max_inflight_messages": 3, "max_queued_messages": 40},
    )
    child = (
        "import json, sys\n"
        "from pytest_edgesim import Scenario, simulate\n"
        "print(simulate(Scenario.from_dict(json.loads(sys.argv[1]))).trace_digest)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", child, json.dumps(scenario.to_dict())],
        env=dict(os.environ, PYTHONHASHSEED="4242"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == simulate(scenario).trace_digest
