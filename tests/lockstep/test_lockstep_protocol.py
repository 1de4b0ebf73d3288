"""The lockstep protocol without Docker: framing, errors, and a node served over a socket."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from lockstep_gateways import serve_lockstep_gateways

from pytest_edgesim import Scenario, Simulation, simulate
from pytest_edgesim.gateway.config import config_from_spec
from pytest_edgesim.gateway.logic import GatewayLogic
from pytest_edgesim.lockstep.host import HostedGateway, LockstepError, SocketHost, hosted_gateway
from pytest_edgesim.lockstep.protocol import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Connection,
    PeerClosed,
    ProtocolError,
    decode_body,
    encode_frame,
)
from pytest_edgesim.lockstep.sdk import NodeLogic, NodeRuntime, serve

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
EXAMPLES = ["basic.yaml", "lossy.yaml", "partition.yaml"]


# --- framing ------------------------------------------------------------------------------
def socket_pair() -> tuple[Connection, Connection]:
    """Two ends of a loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        left = socket.create_connection(server.getsockname(), timeout=5)
        right, _ = server.accept()
    right.settimeout(5)
    return Connection(left), Connection(right)


def test_a_frame_is_a_big_endian_length_and_compact_json():
    frame = encode_frame({"type": "advance", "t": 5, "inbound": []})
    body = b'{"type":"advance","t":5,"inbound":[]}'
    assert frame == struct.pack(">I", len(body)) + body


def test_frames_round_trip_over_a_socket_in_order():
    left, right = socket_pair()
    messages = [{"type": "reply", "t": t, "outputs": [{"payload": 0.1 * t}]} for t in range(50)]
    for message in messages:
        left.send(message)
    assert [right.receive() for _ in messages] == messages
    left.close()
    with pytest.raises(PeerClosed, match="closed the connection"):
        right.receive()
    right.close()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"not json", "not valid UTF-8 JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'{"type": "teleport"}', "type 'teleport'"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
    ],
)
def test_malformed_frames_are_protocol_errors(raw: bytes, error: str):
    with pytest.raises(ProtocolError, match=error):
        decode_body(raw)
    left, right = socket_pair()
    left.sock.sendall(struct.pack(">I", len(raw)) + raw)
    with pytest.raises(ProtocolError, match=error):
        right.receive()
    left.close()
    right.close()


def test_an_oversized_length_is_refused_before_reading_the_body():
    left, right = socket_pair()
    left.sock.sendall(struct.pack(">I", MAX_FRAME_BYTES + 1) + b"{}")
    with pytest.raises(ProtocolError, match="exceeds"):
        right.receive()
    left.close()
    right.close()


def test_a_connection_ending_inside_a_frame_is_reported():
    left, right = socket_pair()
    left.sock.sendall(struct.pack(">I", 100) + b'{"type"')
    left.close()
    with pytest.raises(PeerClosed, match="inside a frame"):
        right.receive()
    right.close()


# --- the runtime (no socket) ----------------------------------------------------------------
class Recorder(NodeLogic):
    def __init__(self, node, config):
        super().__init__(node, config)
        self.seen: list[tuple[int, str]] = []
        node.set_timer(10, "tick")

    def on_message(self, t, message):
        self.seen.append((t, message["topic"]))
        self.node.publish("out", message["payload"], detail=message["topic"])

    def on_timer(self, t, name):
        self.seen.append((t, name))
        self.node.publish("out", None, detail=name)


def test_runtime_runs_timers_before_messages_at_the_same_tick_and_stamps_outputs():
    runtime = NodeRuntime(Recorder, "n", 1, {})
    outputs, next_timer = runtime.advance(
        10, [(3, {"topic": "a", "payload": 1}), (10, {"topic": "b", "payload": 2})]
    )
    assert runtime.logic.seen == [(3, "a"), (10, "tick"), (10, "b")]
    assert [(o["t"], o["detail"]) for o in outputs] == [(3, "a"), (10, "tick"), (10, "b")]
    assert next_timer is None
    with pytest.raises(ProtocolError, match="back in time"):
        runtime.advance(9, [])
    with pytest.raises(ProtocolError, match="outside"):
        runtime.advance(20, [(5, {"topic": "late", "payload": 0})])


def test_the_sdk_stream_is_the_coordinators_stream():
    from pytest_edgesim.core.rng import StreamFactory

    runtime = NodeRuntime(Recorder, "gw", 42, {})
    ours = runtime.api.stream("processing")
    theirs = StreamFactory(42)("node:gw/processing")
    assert [ours.random() for _ in range(20)] == [theirs.random() for _ in range(20)]


# --- a node served over a real socket -------------------------------------------------------
class ServedNode:
    """A node process stand-in: :func:`serve` on a loopback port in a thread."""

    def __init__(self, factory=GatewayLogic):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(
            target=serve, args=(factory,), kwargs={"listener": self.listener}, daemon=True
        )
        self.thread.start()

    def host(self, **options) -> SocketHost:
        return SocketHost(("127.0.0.1", self.port), **options)

    def stop(self) -> None:
        self.listener.close()
        # unblock accept() on platforms where close() alone does not
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        self.thread.join(timeout=5)


@pytest.fixture
def served() -> Iterator[ServedNode]:
    node = ServedNode()
    yield node
    node.stop()


@pytest.fixture
def socket_gateways(served: ServedNode, monkeypatch: pytest.MonkeyPatch) -> list[HostedGateway]:
    """Make ``docker: {mode: lockstep}`` gateways talk to the served node; collects them."""
    made: list[HostedGateway] = []

    def factory(spec, site):
        node = hosted_gateway(spec, site, served.host(timeout_s=10), config_from_spec(spec))
        made.append(node)
        return node

    serve_lockstep_gateways(monkeypatch, factory)
    return made


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_node_served_over_a_socket_gives_the_python_models_digest(name, socket_gateways):
    scenario = Scenario.from_yaml(SCENARIOS / name)
    expected = simulate(scenario, until="30s")
    result = simulate(scenario.with_gateways("docker", mode="lockstep"), until="30s")
    assert result.trace_digest == expected.trace_digest
    assert result.metrics == expected.metrics
    assert [a.payload for a in result.arrivals] == [a.payload for a in expected.arrivals]
    gateway = socket_gateways[0]
    assert gateway.host.round_trips > 0
    assert result.nodes[gateway.name]["processed"] == expected.nodes[gateway.name]["processed"]


def test_faults_over_a_socket_give_the_in_process_digest(socket_gateways):
    """A kill ends the node's session without a shutdown, a stop with one; a start opens a
    new session whose hello says the time, so the node's clock (its aggregation windows)
    starts there, as the in-process logic's does."""
    spec = Scenario.from_yaml(SCENARIOS / "basic.yaml").to_dict()
    spec["gateways"][0]["aggregate"] = {"window": "5s", "functions": ["mean", "count"]}
    scenario = Scenario.from_dict(spec)

    def with_faults(simulation: Simulation) -> tuple[str | None, tuple[object, ...]]:
        simulation.run("12s")
        simulation.kill("gateway")
        simulation.run("13500ms")
        simulation.start("gateway")
        simulation.run("20s")
        simulation.restart("gateway")
        simulation.pause("gateway")
        simulation.run("24s")
        simulation.resume("gateway")
        result = simulation.run("30s")
        return result.trace_digest, result.faults

    with Simulation(scenario) as in_process:
        expected = with_faults(in_process)
    with Simulation(scenario.with_gateways("docker", mode="lockstep")) as over_a_socket:
        assert with_faults(over_a_socket) == expected
    assert socket_gateways[0].restarts == 2


def test_lookahead_windows_give_the_same_digest_in_process_and_over_a_socket(
    socket_gateways, monkeypatch
):
    scenario = Scenario.from_yaml(SCENARIOS / "basic.yaml")
    with Simulation(scenario) as unwindowed:
        unwindowed.run("30s")
        advances_without_windows = unwindowed.nodes["gateway"].advances
    monkeypatch.setattr(HostedGateway, "windowed_default", True)
    with Simulation(scenario) as in_process:
        expected = in_process.run("30s")
        advances_with_windows = in_process.nodes["gateway"].advances
    result = simulate(scenario.with_gateways("docker", mode="lockstep"), until="30s")
    assert result.trace_digest == expected.trace_digest
    assert result.metrics == expected.metrics
    # the 50 ms WAN link lets one advance carry a window of readings
    assert advances_with_windows < advances_without_windows / 2


# --- errors ---------------------------------------------------------------------------------
class FakeNode:
    """A misbehaving peer: answers the hello as told, then does what ``after`` says."""

    def __init__(self, hello_reply: bytes | None, after: bytes | None = None):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.hello_reply, self.after = hello_reply, after
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sock, _ = self.listener.accept()
        connection = Connection(sock)
        connection.receive()
        if self.hello_reply is not None:
            sock.sendall(self.hello_reply)
            if self.after is not None:
                connection.receive()
                sock.sendall(self.after)
        self.release.wait(10)
        connection.close()
        self.listener.close()

    def host(self, **options) -> SocketHost:
        return SocketHost(("127.0.0.1", self.port), logs=lambda: ["fake log line"], **options)


def frame(message: dict) -> bytes:
    return encode_frame(message)


GOOD_HELLO = {"type": "hello", "protocol": PROTOCOL_VERSION, "node": "gw", "next_timer": None}


def test_a_version_mismatch_names_the_node_both_versions_and_shows_the_logs():
    fake = FakeNode(frame({**GOOD_HELLO, "protocol": 99}))
    host = fake.host(timeout_s=5)
    with pytest.raises(LockstepError) as caught:
        host.start("gw", 0, {})
    fake.release.set()
    message = str(caught.value)
    assert "lockstep node 'gw'" in message
    assert f"expected version {PROTOCOL_VERSION}" in message and "99" in message
    assert "fake log line" in message


def test_the_sdk_answers_an_old_coordinator_with_a_version_error(served: ServedNode):
    connection = Connection(socket.create_connection(("127.0.0.1", served.port), timeout=5))
    connection.send({"type": "hello", "protocol": 0, "node": "gw", "seed": 0, "config": {}})
    reply = connection.receive()
    connection.close()
    assert reply["type"] == "error" and reply["code"] == "version_mismatch"


def test_a_node_that_does_not_answer_times_out_with_a_clear_error():
    fake = FakeNode(None)
    host = fake.host(timeout_s=0.2)
    with pytest.raises(LockstepError, match=r"timed out after 0.2 s waiting for hello"):
        host.start("gw", 0, {})
    fake.release.set()


def test_a_malformed_reply_is_an_error_naming_what_was_expected():
    fake = FakeNode(frame(GOOD_HELLO), after=struct.pack(">I", 5) + b"nope!")
    host = fake.host(timeout_s=5)
    host.start("gw", 0, {})
    with pytest.raises(LockstepError, match="malformed frame while waiting for reply"):
        host.advance(10, [], False)
    fake.release.set()


def simulate_basic_with_served_gateway(logic: type[NodeLogic], monkeypatch) -> None:
    """Run basic.yaml for 5 s with its gateway served over a real socket by ``logic``."""
    node = ServedNode(logic)
    try:
        serve_lockstep_gateways(
            monkeypatch,
            lambda spec, site: hosted_gateway(
                spec, site, node.host(timeout_s=5), config_from_spec(spec)
            ),
        )
        scenario = Scenario.from_yaml(SCENARIOS / "basic.yaml").with_gateways(
            "docker", mode="lockstep"
        )
        simulate(scenario, until="5s")
    finally:
        node.stop()


def test_an_output_in_the_past_breaks_the_contract(socket_gateways, monkeypatch):
    class Backwards(NodeLogic):
        def on_message(self, t, message):
            self.node.now = t - 1  # a buggy node: stamps before its cause
            self.node.publish("out", 0)

    with pytest.raises(LockstepError, match="never into the past"):
        simulate_basic_with_served_gateway(Backwards, monkeypatch)


def test_an_error_in_the_node_logic_is_reported_with_the_virtual_time(monkeypatch):
    class Broken(NodeLogic):
        def on_message(self, t, message):
            raise ValueError("boom")

    with pytest.raises(LockstepError, match=r"node_failed.*ValueError at t=\d+: boom"):
        simulate_basic_with_served_gateway(Broken, monkeypatch)


def test_payloads_survive_the_wire_exactly():
    values = [0.1, 1e-300, 21.000000000000004, -0.0, 12345678901234567890, "x", None]
    assert json.loads(encode_frame({"type": "reply", "v": values})[4:])["v"] == values


def test_a_message_with_nan_is_a_protocol_error_not_bare_nan() -> None:
    with pytest.raises(ProtocolError, match="JSON has no NaN or Infinity"):
        encode_frame({"type": "reply", "outputs": [{"payload": float("nan")}]})


def test_a_nodes_stream_for_a_purpose_is_one_stream() -> None:
    from pytest_edgesim.lockstep.sdk import NodeApi

    api = NodeApi("gw", seed=5)
    draws = [api.stream("jitter").random() for _ in range(3)]
    assert len(set(draws)) == 3  # the same stream goes on, it does not start over
    assert api.stream("jitter") is api.stream("jitter")


@pytest.mark.parametrize(
    ("topic", "qos", "expected"),
    [
        (7, 0, "field 'topic' must be a str, got 7"),
        ("out", "1x", "field 'qos' must be 0 or 1, got '1x'"),
    ],
)
def test_a_malformed_output_is_one_clear_error(monkeypatch, topic, qos, expected):
    """A node written in another language may send anything: it gets a LockstepError
    naming the output, not a KeyError or a TypeError from deep inside the coordinator."""

    class Sloppy(NodeLogic):
        def on_message(self, t, message):
            self.node.publish(topic, 0, qos=qos)

    with pytest.raises(LockstepError, match="malformed output") as raised:
        simulate_basic_with_served_gateway(Sloppy, monkeypatch)
    assert expected in str(raised.value)
