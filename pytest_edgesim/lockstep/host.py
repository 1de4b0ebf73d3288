"""The coordinator side of lockstep: one node class that hosts a logic in process or remotely.

:class:`HostedGateway` is a gateway :class:`~pytest_edgesim.core.node.Node` whose behaviour is a
lockstep logic (see :mod:`.sdk`), reached through a *host*: :class:`LocalHost` runs it in
this process, :class:`SocketHost` drives a node process (usually a container) over the
protocol. The node does the same thing with either host, so a container gives exactly the
trace of the in-process logic.

Windows (conservative lookahead, optional). A node's outputs travel over its outgoing link, which
takes at least ``lookahead`` ticks (the link's minimum latency); an output stamped ``s``
therefore reaches anyone at ``s + lookahead`` or later. So the node need not be advanced at
each arrival: it is advanced once its earliest pending event (an arrival, or the logic's
next timer) is ``lookahead - 1`` ticks old, with everything that arrived meanwhile, and
one round trip carries a window of messages. Outputs are put on the network at their own
stamps. There is no fixed quantum: with nothing pending and no timer, the node is not
advanced at all. The MQTT session (PUBACKs, QoS 1 retries) stays on this side, as the MQTT
stack of a real gateway would.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pytest_edgesim.core.assertions import ASSERTION_KINDS
from pytest_edgesim.core.metrics.delivery import lineage_from_json, lineage_to_json
from pytest_edgesim.core.models.session import Session
from pytest_edgesim.core.models.store_forward import StoreAndForward
from pytest_edgesim.core.node import Node
from pytest_edgesim.core.packet import PUBACK, Message
from pytest_edgesim.errors import SimulationError
from pytest_edgesim.lockstep.protocol import (
    ADVANCE,
    BYE,
    ERROR,
    HELLO,
    PROTOCOL_VERSION,
    REPLY,
    SHUTDOWN,
    Connection,
    PeerClosed,
    ProtocolError,
)
from pytest_edgesim.lockstep.sdk import LogicFactory, NodeRuntime

if TYPE_CHECKING:
    from pytest_edgesim.core.network import Link
    from pytest_edgesim.core.node import NodeContext
    from pytest_edgesim.core.packet import Packet
    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.core.topology import GatewaySite
    from pytest_edgesim.lockstep.sdk import Output

Inbound = list[tuple[int, dict[str, Any]]]
AdvanceResult = tuple[list["Output"], "int | None", "dict[str, Any] | None"]


class LockstepError(SimulationError):
    """A lockstep node failed: it timed out, died, broke the protocol or reported an error.

    The message names the node and what was expected, and ends with the node's last log
    lines when there are any (a container's logs).
    """

    def __init__(self, node: str, problem: str, log_tail: list[str] | None = None):
        self.node = node
        self.problem = problem
        self.log_tail = list(log_tail or [])
        message = f"lockstep node {node!r}: {problem}"
        if log_tail is not None:
            logs = "\n".join(self.log_tail) if self.log_tail else "(the node wrote nothing)"
            message += f"\n--- last {len(self.log_tail)} log lines of {node} ---\n{logs}"
        super().__init__(message)


class LogicHost(Protocol):
    """Where a node's logic runs."""

    def start(self, name: str, seed: int, config: Mapping[str, Any], now: int = 0) -> int | None:
        """Hello: create the logic (its clock at ``now``); returns its first timer."""

    def advance(self, t: int, inbound: Inbound, want_state: bool) -> AdvanceResult:
        """Advance to ``t``: ``(outputs, next_timer, state or None)``."""

    def end(self, graceful: bool) -> None:
        """End the logic's session and drop its state, the host staying usable for a new
        :meth:`start` (a stop: a clean shutdown; a kill: the session just dropped)."""

    def close(self) -> dict[str, Any] | None:
        """Shutdown; returns the final state when there is one."""


class LocalHost:
    """Runs the logic in this process (the ``python_model`` gateway)."""

    def __init__(self, factory: LogicFactory):
        self.factory = factory
        self.runtime: NodeRuntime | None = None

    def start(self, name: str, seed: int, config: Mapping[str, Any], now: int = 0) -> int | None:
        self.runtime = NodeRuntime(self.factory, name, seed, config, now)
        return self.runtime.api.next_timer

    def end(self, graceful: bool) -> None:
        self.runtime = None

    def advance(self, t: int, inbound: Inbound, want_state: bool) -> AdvanceResult:
        runtime = self.runtime
        assert runtime is not None
        outputs, next_timer = runtime.advance(t, inbound)
        return outputs, next_timer, runtime.state() if want_state else None

    def close(self) -> dict[str, Any] | None:
        return self.runtime.state() if self.runtime is not None else None


class SocketHost:
    """Drives a node process over the lockstep protocol on a TCP connection.

    ``logs`` returns the node's last log lines for error messages; ``alive`` says whether
    the process still runs (a container's state), so a dead node is told from a slow one.
    """

    def __init__(
        self,
        address: tuple[str, int],
        *,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 30.0,
        logs: Callable[[], list[str]] | None = None,
        alive: Callable[[], bool] | None = None,
    ):
        self.address = address
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._logs = logs
        self._alive = alive
        self.connection: Connection | None = None
        self.name = f"{address[0]}:{address[1]}"
        self.hello: dict[str, Any] = {}
        self.round_trips = 0

    # errors ------------------------------------------------------------------------------
    def fail(self, problem: str) -> LockstepError:
        tail = None
        if self._logs is not None:
            try:
                tail = self._logs()
            except Exception:  # the logs are a courtesy; never hide the real problem
                tail = []
        self._drop_connection()
        return LockstepError(self.name, problem, tail)

    def _exchange(self, request: dict[str, Any], expected: str) -> dict[str, Any]:
        connection = self.connection
        if connection is None:
            raise self.fail(f"the connection is closed; cannot send {request['type']}")
        try:
            connection.send(request)
            reply = connection.receive()
        except TimeoutError:
            raise self.fail(
                f"timed out after {self.timeout_s:g} s waiting for {expected} to "
                f"{_summary(request)}{self._liveness()}"
            ) from None
        except PeerClosed as exc:
            raise self.fail(
                f"connection closed while waiting for {expected} to {_summary(request)} "
                f"({exc}){self._liveness()}"
            ) from None
        except ProtocolError as exc:
            raise self.fail(f"malformed frame while waiting for {expected}: {exc}") from None
        except OSError as exc:
            raise self.fail(
                f"connection failed while waiting for {expected}: {exc}{self._liveness()}"
            ) from None
        self.round_trips += 1
        return self._check_reply(reply, request, expected)

    def _check_reply(
        self, reply: dict[str, Any], request: dict[str, Any], expected: str
    ) -> dict[str, Any]:
        kind = reply["type"]
        if kind == ERROR:
            raise self.fail(
                f"the node reported an error ({reply.get('code', 'error')}) instead of "
                f"{expected}: {reply.get('message', '')}"
            )
        if kind != expected:
            raise self.fail(f"expected {expected}, got {kind} to {_summary(request)}")
        return reply

    def _liveness(self) -> str:
        if self._alive is None:
            return ""
        try:
            return "" if self._alive() else "; the node's process is no longer running"
        except Exception:
            return ""

    # the host interface ---------------------------------------------------------------------
    def connect(self, deadline: float | None = None) -> None:
        """Connect, retrying until the node listens or ``connect_timeout_s`` passes."""
        if deadline is None:
            deadline = time.monotonic() + self.connect_timeout_s
        last: OSError | None = None
        while True:
            try:
                sock = socket.create_connection(self.address, timeout=self.timeout_s)
                break
            except OSError as exc:
                last = exc
            if self._alive is not None and not self._alive():
                raise self.fail("the node's process exited before accepting a connection")
            if time.monotonic() >= deadline:
                raise self.fail(
                    f"could not connect within {self.connect_timeout_s:g} s (last error: {last})"
                )
            time.sleep(0.01)
        sock.settimeout(self.timeout_s)
        self.connection = Connection(sock)

    def start(self, name: str, seed: int, config: Mapping[str, Any], now: int = 0) -> int | None:
        self.name = name
        request: dict[str, Any] = {
            "type": HELLO,
            "protocol": PROTOCOL_VERSION,
            "node": name,
            "seed": seed,
            "config": dict(config),
        }
        if now:
            request["now"] = now
        # A published container port accepts connections before the node listens (the
        # engine's proxy does), so a connection closed before the hello is retried.
        deadline = time.monotonic() + self.connect_timeout_s
        while True:
            if self.connection is None:
                self.connect(deadline)
            connection = self.connection
            assert connection is not None
            try:
                connection.send(request)
                reply = connection.receive()
                break
            except (PeerClosed, ConnectionError) as exc:
                self._drop_connection()
                if time.monotonic() >= deadline:
                    raise self.fail(
                        f"the node closed every connection before answering hello "
                        f"for {self.connect_timeout_s:g} s ({exc}){self._liveness()}"
                    ) from None
                if self._alive is not None and not self._alive():
                    raise self.fail("the node's process exited before answering hello") from None
                time.sleep(0.01)
            except TimeoutError:
                raise self.fail(
                    f"timed out after {self.timeout_s:g} s waiting for hello{self._liveness()}"
                ) from None
            except ProtocolError as exc:
                raise self.fail(f"malformed frame while waiting for hello: {exc}") from None
        self.round_trips += 1
        reply = self._check_reply(reply, request, HELLO)
        if reply.get("protocol") != PROTOCOL_VERSION:
            raise self.fail(
                f"protocol version mismatch: expected version {PROTOCOL_VERSION}, "
                f"the node speaks {reply.get('protocol')!r}"
            )
        self.hello = reply
        return _optional_time(reply.get("next_timer"), self, "next_timer in hello")

    def advance(self, t: int, inbound: Inbound, want_state: bool) -> AdvanceResult:
        request: dict[str, Any] = {
            "type": ADVANCE,
            "t": t,
            "inbound": [{"t": delivered_at, "message": m} for delivered_at, m in inbound],
        }
        if want_state:
            request["state"] = True
        reply = self._exchange(request, REPLY)
        if reply.get("t") != t:
            raise self.fail(f"expected a reply for t={t}, got one for t={reply.get('t')!r}")
        outputs = reply.get("outputs")
        if not isinstance(outputs, list):
            raise self.fail(f"expected a list of outputs in the reply for t={t}")
        state = reply.get("state") if want_state else None
        return outputs, _optional_time(reply.get("next_timer"), self, "next_timer"), state

    def end(self, graceful: bool) -> None:
        """End the session (a shutdown when ``graceful``, else the connection just dropped);
        the node process serves the next session, which :meth:`start` opens."""
        if graceful:
            SocketHost.close(self)
        else:
            self._drop_connection()

    def close(self) -> dict[str, Any] | None:
        connection = self.connection
        if connection is None:
            return None
        try:
            connection.send({"type": SHUTDOWN})
            reply = connection.receive()
        except (OSError, ProtocolError):
            reply = {}
        finally:
            self._drop_connection()
        return reply.get("state") if reply.get("type") == BYE else None

    def _drop_connection(self) -> None:
        if self.connection is not None:
            connection, self.connection = self.connection, None
            with contextlib.suppress(OSError):
                connection.close()


def _optional_time(value: Any, host: SocketHost, what: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise host.fail(f"expected {what} to be an integer tick or null, got {value!r}")


def _summary(request: dict[str, Any]) -> str:
    if request["type"] == ADVANCE:
        return f"advance to t={request['t']} ({len(request['inbound'])} inbound)"
    return request["type"]


class HostedGateway(Node):
    """A gateway whose logic runs in a :class:`LogicHost` (in process or over a socket).

    ``windowed`` turns lookahead windows on (see the module's docstring). They are off by
    default: a window's outputs reach the network at their own times, but the node's own
    trace events are then written when the window closes, so the trace is no longer in time
    order (the digest is still a pure function of the seed, and the same for every host).
    Without windows the node is advanced at each arrival and each timer it set.
    """

    #: the default of ``windowed`` for every hosted gateway (in process and in containers
    #: alike, so that both keep giving the same trace)
    windowed_default: ClassVar[bool] = False
    supported_faults: ClassVar[tuple[str, ...]] = (
        "stop",
        "kill",
        "start",
        "pause",
        "resume",
        "disconnect",
        "reconnect",
    )
    supported_conditions: ClassVar[tuple[str, ...]] = ("uplink", "storage_full")

    def __init__(
        self,
        name: str,
        spec: GatewaySpec,
        host: LogicHost,
        *,
        broker: Any,
        retry_interval: int,
        seed: int,
        config: Mapping[str, Any],
        windowed: bool | None = None,
    ):
        super().__init__(name)
        self.windowed = self.windowed_default if windowed is None else windowed
        self.spec = spec
        self.host = host
        self.broker = broker
        self.retry_interval = retry_interval
        self.seed = seed
        self.config = config
        self.received = 0
        self.forwarded = 0
        self._sent_seq = 0  # the number of the last message it sent (forwards and injections)
        self.dropped_overflow = 0
        self.dropped_rejected = 0  # dropped by the logic for a reason of its own
        self.advances = 0
        self._pending: Inbound = []
        self._next_timer: int | None = None
        self._flush_at: int | None = None
        self._generation = 0
        self._logic_time = 0
        self._link: Link | None = None
        self._state: dict[str, Any] = {}
        self._closed = False
        # faults (see apply_fault): an impaired gateway's arrivals take _impaired_packet
        self._impaired = False
        self._down = False
        self._paused = False
        self._connected = True
        self._held: list[Packet] = []  # what reached it while paused
        self._not_before = 0  # after a pause: outputs due meanwhile go out at the resume
        self.restarts = 0
        self.dropped_down = 0
        # the uplink (backhaul_outage, storage_full): forwards wait in the buffer while down
        self._store = StoreAndForward(
            name,
            spec.forward.buffer,
            lambda message: self._session.publish(spec.forward.to, message, message.qos),
        )

    # --- binding ---------------------------------------------------------------------------
    def bind(self, context: NodeContext) -> None:
        super().bind(context)
        self._session = Session(self.name, context, self.retry_interval)
        self._node_counter = context.metrics.node(self.name)
        ledger = self._ledger = context.metrics.delivery
        self._destination = ledger.destination(
            self.name, [s.filter for s in self.spec.subscribe], gateway=True
        )
        self._record = context.trace.record if context.trace.enabled else None
        self._schedule_at = context.coordinator.schedule_at  # (context.call_at, one call less)
        session = self.spec.session
        if session is not None:
            self.broker.open_session(
                self.name, clean=session.clean, keepalive=session.keepalive, expiry=session.expiry
            )
        self._subscribe()
        self._next_timer = self.host.start(self.name, self.seed, self.config)
        self._arm()

    def lookahead(self) -> int:
        """The minimum latency of the link the node publishes on (0 when unknown)."""
        link = self._link
        if link is None:
            network = self.context.network if self.context is not None else None
            if network is None:
                return 0
            link = network.links.get((self.name, self.spec.forward.to))
            if link is None:
                return _min_latency(network.profile_for(self.name, self.spec.forward.to))
            self._link = link
        return _min_latency(link.profile)

    # --- arrivals ----------------------------------------------------------------------------
    def on_packet(self, packet: Packet) -> None:
        if self._impaired and self._impaired_packet(packet):
            return
        if packet.kind == PUBACK:
            self._session.acknowledge(packet.packet_id)
            return
        if packet.qos == 1:
            self._session.reply_puback(packet)
        self.received += 1
        message = packet.message
        self._ledger.arrive(self._destination, message.origin, message.seq, message.sources)
        context = self.context
        assert context is not None
        now = context.coordinator.now
        inbound = {
            "topic": message.topic,
            "payload": message.payload,
            "origin": message.origin,
            "seq": message.seq,
            "created_at": message.created_at,
            "qos": packet.qos,
        }
        if message.sources is not None:  # another gateway's forward: the readings it carries
            inbound["sources"] = lineage_to_json(message.sources)
        self._pending.append((now, inbound))
        if self._flush_at is None and not self.windowed and not self._closed:
            # what _arm decides here without windows: advance at this tick
            self._generation += 1
            self._flush_at = now
            self._schedule_at(now, self._flush, self._generation)
        elif self._flush_at is None or len(self._pending) == 1:
            self._arm()

    def _arm(self) -> None:
        """Schedule the next advance: ``lookahead - 1`` ticks after the earliest pending event."""
        if self._closed:
            return
        due = self._pending[0][0] if self._pending else None
        timer = self._next_timer
        if timer is not None and (due is None or timer < due):
            due = timer
        if due is None:
            return
        context = self.context
        assert context is not None
        lookahead = self.lookahead() if self.windowed else 0
        target = due + lookahead - 1 if lookahead > 0 else due
        now = context.coordinator.now
        if target < now:
            target = now
        if self._flush_at is not None and self._flush_at <= target:
            return
        self._generation += 1
        self._flush_at = target
        context.call_at(target, self._flush, self._generation)

    def _flush(self, generation: int) -> None:
        if generation != self._generation:
            return  # superseded by an earlier advance
        context = self.context
        assert context is not None
        self._flush_at = None
        self.advance(context.coordinator.now)
        if self._pending or self._next_timer is not None:
            self._arm()  # (with neither, _arm has nothing to schedule)

    def advance(self, t: int, *, want_state: bool = False) -> None:
        """Advance the logic to ``t`` with the pending arrivals and emit its outputs."""
        inbound, self._pending = self._pending, []
        # the earliest cause in this advance: no output may be stamped before it
        start = inbound[0][0] if inbound else t + 1
        timer = self._next_timer
        if timer is not None and timer < start:
            start = timer
        self.advances += 1
        outputs, next_timer, state = self.host.advance(t, inbound, want_state)
        if state is not None:
            self._state = state
        self._logic_time = t
        if next_timer is not None and next_timer <= t:
            raise self._contract(f"next_timer {next_timer} is not after the advance to t={t}")
        self._next_timer = next_timer
        if outputs:
            self._emit(outputs, start, t)

    def mqtt_session(self) -> Session | None:
        return self._session if self.context is not None else None

    def claim_message_seq(self) -> int:
        """Number one more message as this gateway's (an injected one; not a forward)."""
        self._sent_seq += 1
        return self._sent_seq

    # --- outputs ---------------------------------------------------------------------------------
    def _contract(self, problem: str) -> SimulationError:
        fail = getattr(self.host, "fail", None)
        if fail is not None:
            return fail(problem)
        return LockstepError(self.name, problem)

    def _emit(self, outputs: list[Output], start: int, end: int) -> None:
        context = self.context
        assert context is not None
        coordinator = context.coordinator
        previous = start
        not_before = self._not_before
        try:
            for output in outputs:
                problem = _output_problem(output)
                if problem is not None:
                    raise self._contract(f"malformed output {output!r}: {problem}")
                stamp = output.get("t")
                if not isinstance(stamp, int) or not previous <= stamp <= end:
                    raise self._contract(
                        f"output stamped t={stamp!r}: expected outputs in time order within "
                        f"[{previous}, {end}] (no later than the advance, never before its "
                        "cause: never into the past)"
                    )
                previous = stamp
                if stamp < not_before:  # due while it was paused: it goes out now
                    stamp = not_before
                coordinator.now = stamp  # the output happens at its own time
                kind = output.get("kind")
                if kind == "publish":
                    self._publish(stamp, output)
                elif kind == "drop":
                    self._drop(stamp, output)
                elif kind == "assert":
                    if context.assertions is not None:
                        context.assertions.record(
                            output["assertion"], output["label"], output["held"], stamp, self.name
                        )
                else:
                    raise self._contract(f"unknown output kind {kind!r} (publish, drop, assert)")
        finally:
            coordinator.now = end
        head = coordinator.peek()
        if head is not None and head < end:
            raise SimulationError(
                f"gateway {self.name!r}: an output scheduled an event at t={head}, before the "
                f"window end t={end}; a link's latency fell below the lookahead during a window"
            )

    def _publish(self, stamp: int, output: Output) -> None:
        forward = self.spec.forward
        topic = output["topic"]
        created_at = output.get("created_at")
        self.forwarded += 1
        self._sent_seq = seq = self._sent_seq + 1
        message = Message(
            topic,
            output.get("payload"),
            origin=self.name,
            seq=seq,
            created_at=stamp if created_at is None else created_at,
            qos=int(output.get("qos", 0)),
            size_bytes=forward.payload_bytes,
            sources=self._lineage(output),
        )
        context = self.context
        assert context is not None
        counter = context.metrics.topic(topic)
        counter.sent += 1
        counter.bytes += forward.payload_bytes
        if self._record is not None:
            self._record(
                stamp,
                "forward",
                self.name,
                forward.to,
                topic,
                message.message_id,
                str(output.get("detail", "")),
            )
        store = self._store
        if store.uplink_down and store.takes(message, context):
            return
        self._session.publish(forward.to, message, message.qos)

    def set_condition(self, condition: str, setting: Any) -> str:
        """``uplink`` (False: down; what it forwards waits in ``forward.buffer``, or, without
        one, is sent into the cut and lost; True: up, what waited is sent in order now) and
        ``storage_full`` (True: the buffer takes nothing more); see
        :class:`~pytest_edgesim.core.models.store_forward.StoreAndForward`."""
        return self._store.set_condition(condition, setting)

    def _lineage(self, output: Output) -> tuple[tuple[str, int, int], ...]:
        """A publish output's lineage (``sources``, see :meth:`NodeApi.publish`); ``()`` when
        the logic gave none: the forward is then counted without lineage."""
        sources = output.get("sources")
        if sources is None:
            return ()
        lineage = lineage_from_json(sources)
        if lineage is None:
            raise self._contract(
                f"malformed output {output!r}: field 'sources' must name readings as "
                f"{{origin: [[first_seq, last_seq], ...]}}, got {sources!r}"
            )
        return lineage

    def _drop(self, stamp: int, output: Output) -> None:
        # a full queue is an overflow; any other reason is the logic's own (a rejection)
        reason = str(output.get("reason", ""))
        cause = "queue_overflow" if reason == "queue_overflow" else "rejected"
        if cause == "queue_overflow":
            self.dropped_overflow += 1
        else:
            self.dropped_rejected += 1
        self._node_counter.drop(cause)
        context = self.context
        assert context is not None
        topic = output["topic"]
        context.metrics.topic(topic).drop(cause)
        sources = output.get("sources")
        lineage = lineage_from_json(sources) if sources is not None else None
        self._ledger.drop(output["origin"], output["seq"], lineage, cause)
        if self._record is not None:
            self._record(
                stamp,
                "drop",
                self.name,
                output["origin"],
                topic,
                f"{output['origin']}#{output['seq']}",
                reason,
            )

    # --- the rest of the node interface -------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The logic's own description, as of its last advance (at most a window behind)."""
        timer = self._next_timer
        timer_due = timer is not None and timer <= self._logic_time
        if not self._closed and not self._down and self.context is not None and not timer_due:
            # advancing to where the logic already is changes nothing; it only asks
            outputs, _, state = self.host.advance(self._logic_time, [], True)
            if outputs:
                raise self._contract(
                    f"asked for its state at t={self._logic_time}, where it already was, it "
                    f"emitted {len(outputs)} output(s): expected none"
                )
            if state is not None:
                self._state = state
        return self._state

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        final = self.host.close()
        if final is not None:
            self._state = final

    def describe(self) -> dict[str, object]:
        state = self.state()
        return {
            **super().describe(),
            "received": self.received,
            "processed": state.get("processed", 0),
            "forwarded": self.forwarded,
            "queued": state.get("queued", 0),
            "dropped_overflow": self.dropped_overflow,
            "dropped_rejected": self.dropped_rejected,
            "pending_in_aggregate": state.get("pending_in_aggregate", 0),
            **({"dropped_node_down": self.dropped_down} if self.dropped_down else {}),
            **self._store.describe(),
        }

    # --- faults -------------------------------------------------------------------------------
    def apply_fault(self, action: str) -> str:
        """Stop, kill, start, pause, resume, disconnect or reconnect the gateway (the run
        checks the transition; see :class:`~pytest_edgesim.core.run.TopologyRun`).

        * ``stop``: the logic is advanced to now (what was due goes out), then its session
          ends cleanly (``shutdown``); ``kill``: the session is dropped as it is. Either way
          the gateway unsubscribes, its QoS 1 in-flight messages are abandoned, and what the
          logic still held (queued, being processed, in an unfinished aggregate, arrived but
          not yet handed to it) is lost: counted as ``node_down`` drops of the gateway.
        * ``start``: a fresh logic (a new runtime or host session, its clock at now);
          subscriptions renewed. Its message numbers go on from before.
        * ``pause``: arrivals wait (no PUBACK, no processing), timers and QoS 1 retries wait;
          ``resume`` processes what waited, and what fell due meanwhile goes out now.
        * ``disconnect``: unsubscribed at the broker; what the broker sent before reaches a
          closed connection and is lost; ``reconnect`` subscribes again. Its logic runs on.

        Messages that reach a stopped gateway (or a disconnected one, from the broker) are
        ``node_down`` drops of the gateway and of their topic, each with a ``drop`` trace event.
        """
        if action in ("stop", "kill"):
            return self._go_down(kill=action == "kill")
        if action == "start":
            return self._come_up()
        if action == "pause":
            self._paused = self._impaired = True
            self._session.frozen = True
            self._generation += 1  # the pending advance waits for the resume
            self._flush_at = None
            return ""
        if action == "resume":
            return self._resume()
        if action == "disconnect":
            self._unsubscribe()
            self._connected = False
            self._impaired = True
            return ""
        assert action == "reconnect", action
        self._connected = True
        self._impaired = self._down or self._paused
        self._subscribe()
        return ""

    def broker_restarted(self) -> None:
        self._subscribe()

    def _subscribe(self) -> None:
        """Subscribe at the broker, when connected, up, and the broker is up too."""
        if self._connected and not self._down and getattr(self.broker, "up", True):
            for subscription in self.spec.subscribe:
                self.broker.subscribe(self.name, subscription.filter, subscription.qos)

    def _unsubscribe(self) -> None:
        """The connection is gone: the broker forgets the subscriptions and what it had in
        flight to this gateway (a clean session)."""
        if self._connected and not self._down and getattr(self.broker, "up", True):
            for subscription in self.spec.subscribe:
                self.broker.unsubscribe(self.name, subscription.filter, subscription.qos)
            self.broker.forget_client(self.name)

    def _impaired_packet(self, packet: Packet) -> bool:
        """Take a packet that reached a paused, stopped or disconnected gateway; False when
        it arrives as usual (a disconnected gateway's PUBACK, or a PUBLISH not from the broker)."""
        if self._paused:
            self._held.append(packet)
            return True
        if packet.kind == PUBACK:
            return self._down  # (a disconnected gateway's link to the cloud still works)
        if self._down or packet.src == self.broker.name:
            self._lose(packet)
            return True
        return False

    def _lose(self, packet: Packet) -> None:
        """A PUBLISH that reached the gateway while it could not take it: a ``node_down`` drop."""
        context = self.context
        assert context is not None
        message = packet.message
        self.dropped_down += 1
        self._ledger.drop(message.origin, message.seq, message.sources, "node_down")
        self._node_counter.drop("node_down")
        context.metrics.topic(message.topic).drop("node_down")
        if self._record is not None:
            self._record(
                context.coordinator.now,
                "drop",
                self.name,
                packet.src,
                message.topic,
                message.message_id,
                "node_down",
            )

    def _go_down(self, kill: bool) -> str:
        context = self.context
        assert context is not None
        now = context.coordinator.now
        held, self._held = self._held, []
        was_paused, self._paused = self._paused, False
        if not kill and not was_paused:
            self.advance(now)  # a clean stop finishes what is due now
        state = self.state()
        unprocessed = state.get("received", 0) - state.get("processed", 0)
        unprocessed -= state.get("dropped_overflow", 0)
        lost = max(0, unprocessed) + state.get("pending_in_aggregate", 0) + len(self._pending)
        lost += self._store.clear()  # (its store-and-forward buffer is not persistent storage)
        self._pending = []
        if lost:
            self.dropped_down += lost
            self._node_counter.dropped_node_down += lost
        self._ledger.abandon(self.name, "node_down")  # what it held is gone
        self._unsubscribe()
        self.host.end(graceful=not kill)
        self._session.inflight.clear()  # its QoS 1 retries end with it (ids go on)
        self._session.frozen = False
        self._generation += 1
        self._flush_at = None
        self._next_timer = None
        self._down = self._impaired = True
        self._state = {**state, "queued": 0, "pending_in_aggregate": 0}  # (it held nothing now)
        waiting = 0
        for packet in held:
            if packet.kind != PUBACK:
                self._lose(packet)
                waiting += 1
        parts = [f"lost {lost} held message(s)"] if lost else []
        parts += [f"{waiting} waiting message(s) lost"] if waiting else []
        return ", ".join(parts)

    def _come_up(self) -> str:
        context = self.context
        assert context is not None
        now = context.coordinator.now
        self._down = False
        self._impaired = not self._connected
        self.restarts += 1
        self._logic_time = now
        self._not_before = 0
        self._state = {}
        self._next_timer = self.host.start(self.name, self.seed, self.config, now)
        self._subscribe()
        self._arm()
        return ""

    def _resume(self) -> str:
        context = self.context
        assert context is not None
        self._paused = False
        self._session.frozen = False
        self._impaired = self._down or not self._connected
        self._not_before = context.coordinator.now
        held, self._held = self._held, []
        for packet in held:
            self.on_packet(packet)
        self._arm()
        return f"{len(held)} waiting packet(s) taken" if held else ""

    @property
    def processed(self) -> int:
        return int(self.state().get("processed", 0))


def _min_latency(profile: Any) -> int:
    """The least latency a link can give a packet (jitter can shorten it; normal jitter to 0)."""
    if profile.jitter == "normal":
        return 0
    if profile.jitter == "uniform":
        return max(0, profile.latency - profile.jitter_ticks)
    return int(profile.latency)


def hosted_gateway(
    spec: GatewaySpec,
    site: GatewaySite,
    host: LogicHost,
    config: Mapping[str, Any],
    cls: type[HostedGateway] = HostedGateway,
) -> HostedGateway:
    """Gateway ``spec`` of the run at ``site``, its logic running in ``host`` with ``config``
    (what gateway kinds' factories return)."""
    return cls(
        spec.name,
        spec,
        host,
        broker=site.broker,
        retry_interval=site.retry_interval,
        seed=site.seed,
        config=config,
    )


#: what each output kind must carry (docs/protocol.md, "reply"), and of which type
_OUTPUT_FIELDS: dict[str, tuple[tuple[str, type | tuple[type, ...]], ...]] = {
    "publish": (("topic", str),),
    "drop": (("topic", str), ("origin", str), ("seq", int)),
    "assert": (("assertion", str), ("label", str), ("held", bool)),
}


def _output_problem(output: Any) -> str | None:
    """What is wrong with one output of a node's reply (None when it is well formed)."""
    if not isinstance(output, dict):
        return "an output must be a JSON object"
    required = _OUTPUT_FIELDS.get(output.get("kind"))  # type: ignore[arg-type]
    if required is None:
        return None  # the kind itself is checked where it is dispatched
    for field, kind in required:
        value = output.get(field)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            return f"field {field!r} must be a {getattr(kind, '__name__', kind)}, got {value!r}"
    if output["kind"] == "assert" and output["assertion"] not in ASSERTION_KINDS:
        return f"field 'assertion' must be one of {', '.join(ASSERTION_KINDS)}"
    if output["kind"] == "publish":
        if output.get("qos", 0) not in (0, 1) or isinstance(output.get("qos"), bool):
            return f"field 'qos' must be 0 or 1, got {output.get('qos')!r}"
        created_at = output.get("created_at")
        if created_at is not None and (not isinstance(created_at, int) or created_at < 0):
            return f"field 'created_at' must be a virtual time (ticks), got {created_at!r}"
    return None
