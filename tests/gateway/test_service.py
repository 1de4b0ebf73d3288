"""The gateway service without a broker: what it reads, what it rejects, what it forwards.

A fake client plays paho's part: it acknowledges the subscriptions when the loop starts,
hands messages to the service's callback and records what the service publishes.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import queue
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_edgesim.gateway.config import GatewayConfigError, validate_config
from pytest_edgesim.gateway.service import GatewayService, decode_payload

FORWARD = {"topic": "out", "qos": 1}


class FakeClient:
    def __init__(self, service: GatewayService):
        self.service = service
        self.published: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._mid = 0

    def connect_async(self, host: str, port: int, keepalive: int) -> None:
        pass

    def loop_start(self) -> None:
        self.service._on_connect(self, None, None, 0)
        self.service._on_subscribe(self, None, self._mid, [])

    def subscribe(self, filters: list[tuple[str, int]]) -> tuple[int, int]:
        self._mid += 1
        return 0, self._mid

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self.published.put((topic, payload))

    def deliver(self, topic: str, payload: bytes) -> None:
        self.service._on_message(self, None, SimpleNamespace(topic=topic, payload=payload))

    def next_forward(self) -> tuple[str, bytes]:
        return self.published.get(timeout=5)

    def disconnect(self) -> None:
        pass

    def loop_stop(self) -> None:
        pass


class OfflineGateway(GatewayService):
    client: FakeClient

    def _make_client(self, client_id: str) -> FakeClient:  # type: ignore[override]
        return FakeClient(self)


class Clock:
    def __init__(self) -> None:
        self.now_us = 1_000_000

    def __call__(self) -> int:
        return self.now_us


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def start_gateway(clock: Clock) -> Iterator[Any]:
    started: list[OfflineGateway] = []

    def start(**config: Any) -> OfflineGateway:
        config = {"name": "gw", "subscribe": [{"filter": "in/#"}], "forward": FORWARD, **config}
        gateway = OfflineGateway(config, "broker", 1883, clock_us=clock)
        gateway.start(connect_timeout_s=1)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.mark.parametrize(
    ("payload", "decoded"),
    [
        (b"21.5", 21.5),
        (b'"21.5"', "21.5"),
        (b'{"value": 1}', {"value": 1}),
        (b"warm", b"warm"),
        (b"+5", b"+5"),
        (b"\xff\xfe", b"\xff\xfe"),
        (b"[" * 100_000, b"[" * 100_000),
    ],
)
def test_a_payload_is_its_json_or_else_its_bytes(payload: bytes, decoded: Any) -> None:
    assert decode_payload(payload) == decoded


BAD_THEN_GOOD = [
    b"warm",  # not JSON, not a number
    b'"warm"',  # a JSON string that holds no number
    b"[21.5]",
    b"true",
    b"null",
    b"NaN",
    b"1e999",  # JSON, but infinite
    b'{"value": "warm"}',
    b'{"value": true}',
    b'{"mean": 21.5}',
    b'{"value": {"value": 21.5}}',
    b"\xff\xfe",
]


def test_readings_without_a_number_are_rejected_and_the_gateway_goes_on(
    start_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = start_gateway(aggregate={"count": 4, "functions": ["mean", "count"]})
    for payload in BAD_THEN_GOOD:
        gateway.client.deliver("in/bad", payload)
    # the number forms a reading may take: a JSON number, numeric text, an object's "value"
    for payload in (b"21.5", b'"22.5"', b" +23.5 ", b'{"value": 24.5, "origin": "s"}'):
        gateway.client.deliver("in/good", payload)
    topic, forward = gateway.client.next_forward()
    assert topic == "out"
    assert json.loads(forward) == {
        "mean": 23.0,
        "count": 4,
        "origin": "gw",
        "seq": 1,
        "created_at_us": 1_000_000,
    }
    gateway.stop()
    assert gateway.counters == {
        "received": len(BAD_THEN_GOOD) + 4,
        "processed": len(BAD_THEN_GOOD) + 4,
        "forwarded": 1,
        "dropped_overflow": 0,
        "rejected": len(BAD_THEN_GOOD),
    }
    assert [record.getMessage() for record in caplog.records if "rejected" in record.message] == [
        "gw: rejected a message on in/bad: no number in b'warm' (expected a number, numeric "
        'text, or an object with a numeric "value")'
    ]


def test_rejections_are_logged_at_most_once_per_interval_with_a_count(
    start_gateway: Any, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = start_gateway(aggregate={"count": 1})
    caplog.set_level(logging.WARNING, "edgesim.gateway")
    gateway.client.deliver("in/a", b"warm")
    gateway.client.deliver("in/b", b"[]")
    gateway.client.deliver("in/b", b"{}")
    gateway.client.deliver("in/c", b"1")
    gateway.client.next_forward()  # the three before it have been processed
    clock.now_us += 10_000_000
    gateway.client.deliver("in/d", b"null")
    gateway.client.deliver("in/e", b"2")
    gateway.client.next_forward()
    lines = [record.getMessage() for record in caplog.records if "rejected" in record.message]
    assert len(lines) == 2
    assert lines[0].startswith("gw: rejected a message on in/a: no number in b'warm'")
    assert lines[1].startswith("gw: rejected a message on in/d: no number in null")
    assert lines[1].endswith("(2 more rejected since the last such line)")
    assert gateway.counters["rejected"] == 4


def test_the_field_that_holds_a_reading_is_the_configured_one(
    start_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A gateway that aggregates another gateway's aggregates reads their "mean"."""
    gateway = start_gateway(aggregate={"count": 2, "functions": ["max"], "value_field": "mean"})
    gateway.client.deliver("in/a", b'{"value": 99}')  # no "mean": rejected, and the log says so
    gateway.client.deliver("in/a", b'{"mean": 20.5, "count": 10}')
    gateway.client.deliver("in/a", b'{"mean": 21.5, "count": 10}')
    _, forward = gateway.client.next_forward()
    assert json.loads(forward)["max"] == 21.5
    gateway.stop()
    assert gateway.counters["rejected"] == 1
    assert 'an object with a numeric "mean"' in caplog.text


def test_without_aggregation_every_payload_is_forwarded(start_gateway: Any) -> None:
    gateway = start_gateway()
    payloads = [b"21.5", b"warm", b'"21.5"', b"[1, 2]", b"\xff\xfe", b""]
    reading = {"value": 20.5, "origin": "s1", "seq": 7, "created_at_us": 5}
    for payload in [*payloads, json.dumps(reading).encode()]:
        gateway.client.deliver("in/s1", payload)
    forwards = [gateway.client.next_forward() for _ in range(len(payloads) + 1)]
    # anything but an object goes on unchanged; an object gets the gateway's origin and seq
    assert forwards[:-1] == [("out", payload) for payload in payloads]
    assert json.loads(forwards[-1][1]) == {
        **reading,
        "origin": "gw",
        "seq": len(payloads) + 1,
        "sources": {"s1": [[7, 7]]},  # the reading it forwards
    }
    gateway.stop()
    assert gateway.counters["forwarded"] == len(payloads) + 1
    assert gateway.counters["rejected"] == 0


def test_an_aggregate_names_the_readings_it_stands_for(start_gateway: Any) -> None:
    gateway = start_gateway(aggregate={"count": 5, "functions": ["count"]})
    for origin, seq in [("s1", 1), ("s2", 1), ("s1", 2), ("s1", 4), ("s2", 2)]:
        reading = {"value": 1.0, "origin": origin, "seq": seq, "created_at_us": 5}
        gateway.client.deliver(f"in/{origin}", json.dumps(reading).encode())
    _, forward = gateway.client.next_forward()
    assert json.loads(forward)["sources"] == {"s1": [[1, 2], [4, 4]], "s2": [[1, 2]]}


def test_a_forward_of_another_gateway_passes_its_readings_on(start_gateway: Any) -> None:
    gateway = start_gateway(aggregate={"count": 2, "functions": ["max"], "value_field": "mean"})
    for seq, sources in [(1, {"s1": [[1, 5]]}), (2, {"s1": [[6, 10]], "s2": [[1, 3]]})]:
        forward = {"mean": 1.0, "origin": "edge", "seq": seq, "sources": sources}
        gateway.client.deliver("in/edge", json.dumps(forward).encode())
    _, forward = gateway.client.next_forward()
    assert json.loads(forward)["sources"] == {"s1": [[1, 10]], "s2": [[1, 3]]}


def test_an_error_while_processing_one_message_does_not_stop_the_worker(
    start_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = start_gateway(aggregate={"count": 1, "functions": ["sum"]})

    class FailingOnValueOne:
        """The aggregator, wrapped."""

        def __init__(self, aggregator: Any) -> None:
            self._aggregator = aggregator

        def add(self, now: int, topic: str, origin: str, value: float, *lineage: Any) -> Any:
            if value == 1:
                raise RuntimeError("a bug")
            return self._aggregator.add(now, topic, origin, value, *lineage)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._aggregator, name)

    gateway.aggregator = FailingOnValueOne(gateway.aggregator)
    gateway.client.deliver("in/a", b"1")
    gateway.client.deliver("in/a", b"2")
    _topic, forward = gateway.client.next_forward()
    assert json.loads(forward)["sum"] == 2
    assert gateway.counters["rejected"] == 1
    (record,) = [record for record in caplog.records if "rejected" in record.message]
    assert record.getMessage() == "gw: rejected a message on in/a: failed: RuntimeError('a bug')"
    assert record.exc_info is not None


def test_a_control_message_that_is_not_an_object_is_ignored(start_gateway: Any) -> None:
    gateway = start_gateway(control_topic="control/gw")
    gateway.client.deliver("control/gw", b"21.5")
    gateway.client.deliver("in/a", b"1")
    assert gateway.client.next_forward() == ("out", b"1")


def test_a_report_request_answers_the_counters_and_changes_nothing(start_gateway: Any) -> None:
    gateway = start_gateway(control_topic="control/gw", aggregate={"count": 2})
    gateway.client.deliver("in/a", b"1")
    gateway.client.deliver("control/gw", b'{"report": true, "reply_to": "control/gw/reply"}')
    topic, answer = gateway.client.next_forward()
    assert topic == "control/gw/reply"
    assert json.loads(answer)["received"] == 1
    gateway.client.deliver("in/a", b"3")  # the pending reading was kept: this completes it
    _topic, forward = gateway.client.next_forward()
    assert json.loads(forward)["mean"] == 2.0


VALID = {"name": "g", "subscribe": [{"filter": "a/#", "qos": 0}], "forward": FORWARD}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"forward": None}, "forward is null: expected {*"),
        ({"forward": {"qos": 1}}, "forward.topic is missing: expected an MQTT topic*"),
        ({"forward": {"topic": "out/#"}}, 'forward.topic is "out/#": expected*no wildcards*'),
        ({"forward": {"topic": "out", "qos": 3}}, "forward.qos is 3: expected 0, 1 or 2"),
        ({"name": ""}, 'name is "": expected a non-empty string'),
        ({"subscribe": "a/#"}, 'subscribe is "a/#": expected a non-empty list of *'),
        ({"subscribe": []}, "subscribe is []: expected a non-empty list*"),
        ({"subscribe": [{"qos": 0}]}, "subscribe[0].filter is missing: *"),
        ({"subscribe": [{"filter": "a/#/b"}]}, 'subscribe[0].filter is "a/#/b": *'),
        ({"aggregate": {"functions": ["mean"]}}, "aggregate has neither count nor window_us*"),
        ({"aggregate": {"count": 0}}, "aggregate.count is 0: expected an integer >= 1 or null"),
        ({"aggregate": {"count": 2, "functions": ["median"]}}, "aggregate.functions is *"),
        ({"aggregate": {"count": 2, "group_by": "site"}}, 'aggregate.group_by is "site": *'),
        ({"processing_delay_us": {"distribution": "gamma"}}, "processing_delay_us.distribution*"),
        (
            {"processing_delay_us": {"distribution": "exponential", "mean": 0}},
            "processing_delay_us.mean is 0: expected a number > 0 (microseconds)",
        ),
        ({"queue": {"capacity": 0}}, "queue.capacity is 0: expected an integer >= 1"),
        ({"queue": {"drop": "random"}}, 'queue.drop is "random": expected "newest" or "oldest"'),
        ({"topic_prefix": 3}, "topic_prefix is 3: expected a string"),
        ({"forward": {"topic": "out", "qos": True}}, "forward.qos is true: expected 0, 1 or 2"),
        ({"subscribe": [{"filter": "a", "qos": 1.0}]}, "subscribe[0].qos is 1.0: expected 0, *"),
        ({"aggregate": {"count": 2, "functions": [{}]}}, "aggregate.functions is *"),
        ({"processing_delay_us": {"distribution": ["normal"]}}, "processing_delay_us.distri*"),
        ({"aggregate": {"count": 2, "value_field": "a..b"}}, 'aggregate.value_field is "a..b": *'),
        ({"aggregate": {"count": 2, "value_field": 1}}, "aggregate.value_field is 1: expected *"),
    ],
)
def test_a_configuration_the_gateway_cannot_run_is_refused(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(GatewayConfigError) as raised:
        validate_config({**VALID, **change})
    assert "\n" not in str(raised.value)
    pattern = message.replace("[", "[[]")  # "*" is the only wildcard meant here
    assert fnmatch.fnmatchcase(str(raised.value), pattern), str(raised.value)


def test_every_problem_is_named_on_one_line() -> None:
    with pytest.raises(GatewayConfigError) as raised:
        validate_config({"name": "g", "subscribe": [{"filter": "a/#", "qos": 0}]})
    assert str(raised.value) == 'forward is missing: expected {"topic": "cloud/out"}'
    with pytest.raises(GatewayConfigError) as raised:
        validate_config([])
    assert str(raised.value) == "the configuration is []: expected an object"
    with pytest.raises(GatewayConfigError) as raised:
        validate_config({"subscribe": [{"filter": "a"}, 7]})
    assert str(raised.value).split("; ") == [
        "name is missing: expected a non-empty string",
        'subscribe[1] is 7: expected {"filter": "sensors/#", "qos": 0}',
        'forward is missing: expected {"topic": "cloud/out"}',
    ]


def test_the_configuration_of_every_example_scenario_is_valid() -> None:
    from pathlib import Path

    from pytest_edgesim import Scenario
    from pytest_edgesim.gateway.config import config_from_spec

    root = Path(__file__).parents[2] / "scenarios"
    for path in sorted(root.glob("*.yaml")):
        for spec in Scenario.from_yaml(path).spec.gateways:
            validate_config(config_from_spec(spec, "edgesim/test/"))


def test_gateways_of_one_name_get_client_ids_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two containers of gateway "gw" on one broker: the same id would knock one off."""
    from pytest_edgesim.gateway import service as gateway_service

    first = gateway_service.default_client_id("gw")
    monkeypatch.setattr(gateway_service.socket, "gethostname", lambda: "0123456789ab")
    second = gateway_service.default_client_id("gw")
    assert first.startswith("edgesim-gateway-gw-") and second != first
    assert second == f"edgesim-gateway-gw-0123456789ab-{os.getpid()}"
