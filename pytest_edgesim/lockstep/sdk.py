"""The node-side SDK: serve the lockstep protocol from a process, standard library only.

A node's behaviour is a :class:`NodeLogic` subclass. The SDK owns time: it calls
``on_message(t, message)`` for every inbound message at its delivery time and
``on_timer(t, name)`` for every timer the logic set, in virtual-time order, and the logic
reads the clock only as ``node.now`` (never the wall clock), so the same inputs always give
the same outputs. Outputs (``node.publish``, ``node.drop``) are stamped with the current
virtual time. Randomness comes from ``node.stream(purpose)``, the project's counter-based
stream keyed by the run's seed and ``node:<name>/<purpose>`` (see :mod:`pytest_edgesim.core.rng`),
so a node in a container draws exactly what the same logic draws in process.

Run a node::

    from pytest_edgesim.lockstep.sdk import NodeLogic, run

    class Echo(NodeLogic):
        def on_message(self, t, message):
            self.node.publish("echo/" + message["topic"], message["payload"])

    if __name__ == "__main__":
        run(Echo)

:class:`NodeRuntime` is the same engine without a socket: the coordinator uses it to host a
logic in process, which is why a Python model and its container give the same trace.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pytest_edgesim.core.rng import RandomStream
from pytest_edgesim.lockstep.protocol import (
    ADVANCE,
    BYE,
    DEFAULT_PORT,
    ERROR,
    HELLO,
    PROTOCOL_VERSION,
    REPLY,
    SHUTDOWN,
    Connection,
    PeerClosed,
    ProtocolError,
    error_message,
)

PORT_ENV = "EDGESIM_LOCKSTEP_PORT"
Message = dict[str, Any]
Output = dict[str, Any]


class NodeLogic:
    """A node's behaviour. Override the hooks; emit and set timers through ``self.node``.

    ``config`` is the JSON object the coordinator sent in its hello (for a gateway, the
    configuration made by :func:`pytest_edgesim.gateway.config.config_from_spec`).
    """

    #: what this node says it is in its hello (name/version)
    #: (a ClassVar: ``serve`` reads it from the class; GatewayLogic overrides it)
    implementation: ClassVar[str] = "edgesim-node"

    def __init__(self, node: NodeApi, config: Mapping[str, Any]):
        self.node = node
        self.config = config

    def on_message(self, t: int, message: Message) -> None:
        """A message was delivered at virtual time ``t`` (ticks). Keys: ``topic``,
        ``payload``, ``origin``, ``seq``, ``created_at``, ``qos``, and ``sources`` on another
        gateway's forward (the readings it stands for)."""

    def on_timer(self, t: int, name: str) -> None:
        """The timer ``name`` set with :meth:`NodeApi.set_timer` is due at ``t``."""

    def state(self) -> dict[str, Any]:
        """A small JSON object describing the node, for people and reports."""
        return {}


class NodeApi:
    """What a logic may use: the clock, timers, its random streams, and its outputs."""

    __slots__ = ("_outputs", "_sequence", "_streams", "_timers", "name", "now", "seed")

    def __init__(self, name: str, seed: int):
        self.name = name
        self.seed = seed
        #: virtual time in ticks (microseconds); the only clock a node may read
        self.now = 0
        self._timers: list[tuple[int, int, str]] = []
        self._sequence = 0
        self._outputs: list[Output] = []
        self._streams: dict[str, RandomStream] = {}

    def publish(
        self,
        topic: str,
        payload: Any,
        *,
        qos: int = 0,
        created_at: int | None = None,
        detail: str = "",
        sources: Mapping[str, list[list[int]]] | None = None,
    ) -> None:
        """Publish ``payload`` on ``topic`` now. ``created_at`` (default: now) is the time
        end-to-end latency is measured from; ``detail`` is a short text for the trace;
        ``sources`` is the lineage: the readings this message stands for, as runs of seqs
        per origin (``{"sensor-1": [[first, last], ...]}``), so that the run's delivery
        accounting can follow them through (without it, the message is counted as a forward
        whose readings are unknown)."""
        output: Output = {
            "t": self.now,
            "kind": "publish",
            "topic": topic,
            "payload": payload,
            "qos": qos,
            "created_at": created_at,
            "detail": detail,
        }
        if sources is not None:  # (read when the advance returns: do not change it after)
            output["sources"] = sources
        self._outputs.append(output)

    def drop(self, message: Message, reason: str) -> None:
        """Record that ``message`` (an inbound one) was dropped, and why."""
        output: Output = {
            "t": self.now,
            "kind": "drop",
            "topic": message["topic"],
            "origin": message["origin"],
            "seq": message["seq"],
            "reason": reason,
        }
        if "sources" in message:  # another gateway's forward: its readings are dropped too
            output["sources"] = message["sources"]
        self._outputs.append(output)

    def _assert(self, kind: str, condition: object, label: str) -> bool:
        held = bool(condition)
        if not isinstance(label, str) or not label:
            raise ValueError(f"{kind}(): the label must be a non-empty string, got {label!r}")
        self._outputs.append(
            {"t": self.now, "kind": "assert", "assertion": kind, "label": label, "held": held}
        )
        return held

    def always(self, condition: object, label: str) -> bool:
        """State that ``condition`` holds now and whenever this is stated (over every run of
        the test); returns it. Kept beside the run, never in its trace."""
        return self._assert("always", condition, label)

    def sometimes(self, condition: object, label: str) -> bool:
        """State ``condition``; the test fails when it never held in any of its runs (proves
        a path ran: ``self.node.sometimes(True, "reconnected")``); returns it."""
        return self._assert("sometimes", condition, label)

    def reachable(self, label: str) -> None:
        """Mark this place: the test fails when no run of it gets here."""
        self._assert("reachable", True, label)

    def unreachable(self, label: str) -> None:
        """Mark a place no run may reach: the test fails when one does."""
        self._assert("unreachable", False, label)

    def set_timer(self, at: int, name: str = "") -> None:
        """Call ``on_timer(at, name)`` at virtual time ``at`` (not before now)."""
        if at < self.now:
            raise ValueError(f"timer {name!r} at t={at} is in the past (now is {self.now})")
        self._sequence += 1
        heapq.heappush(self._timers, (int(at), self._sequence, name))

    def stream(self, purpose: str = "") -> RandomStream:
        """This node's random stream for ``purpose`` (the coordinator's algorithm and names);
        asking again gives the same stream, as the coordinator's ``NodeContext.stream`` does."""
        stream = self._streams.get(purpose)
        if stream is None:
            name = f"node:{self.name}" + (f"/{purpose}" if purpose else "")
            stream = self._streams[purpose] = RandomStream(self.seed, name)
        return stream

    @property
    def next_timer(self) -> int | None:
        return self._timers[0][0] if self._timers else None


LogicFactory = Callable[[NodeApi, Mapping[str, Any]], NodeLogic]


class NodeRuntime:
    """Runs one logic in virtual time: ``advance(t, inbound)`` -> ``(outputs, next_timer)``.

    Within an advance, events run in time order; at the same tick timers run before
    messages, timers in the order they were set, messages in the order given.
    """

    def __init__(
        self,
        factory: LogicFactory,
        name: str,
        seed: int,
        config: Mapping[str, Any],
        now: int = 0,
    ):
        self.api = NodeApi(name, seed)
        self.api.now = now  # a logic started again after a restart starts at that time
        self.logic = factory(self.api, config)

    @property
    def time(self) -> int:
        return self.api.now

    def take_outputs(self) -> list[Output]:
        outputs = self.api._outputs
        self.api._outputs = []
        return outputs

    def advance(
        self, t: int, inbound: list[tuple[int, Message]]
    ) -> tuple[list[Output], int | None]:
        """Run every timer due at or before ``t`` and every inbound message, then stop at t."""
        api = self.api
        if t < api.now:
            raise ProtocolError(f"advance to t={t} goes back in time (the node is at {api.now})")
        timers = api._timers
        logic = self.logic
        index, count = 0, len(inbound)
        previous = api.now
        while True:
            next_timer = timers[0][0] if timers and timers[0][0] <= t else None
            if index < count:
                delivered_at = inbound[index][0]
                if not previous <= delivered_at <= t:
                    raise ProtocolError(
                        f"inbound message {index} delivered at t={delivered_at}, outside "
                        f"[{previous}, {t}] or out of order"
                    )
                if next_timer is None or delivered_at < next_timer:
                    api.now = previous = delivered_at
                    logic.on_message(delivered_at, inbound[index][1])
                    index += 1
                    continue
            if next_timer is None:
                break
            _, _, name = heapq.heappop(timers)
            api.now = next_timer
            if next_timer > previous:
                previous = next_timer
            logic.on_timer(next_timer, name)
        api.now = t
        return self.take_outputs(), api.next_timer

    def state(self) -> dict[str, Any]:
        return self.logic.state()


# --- the server --------------------------------------------------------------------------
def serve_connection(connection: Connection, factory: LogicFactory, implementation: str) -> None:
    """Serve one coordinator session on ``connection`` (hello, advances, shutdown)."""
    runtime: NodeRuntime | None = None
    try:
        hello = connection.receive()
        if hello["type"] != HELLO:
            raise ProtocolError(f"expected hello first, got {hello['type']!r}")
        if hello.get("protocol") != PROTOCOL_VERSION:
            connection.send(
                error_message(
                    "version_mismatch",
                    f"this node speaks protocol version {PROTOCOL_VERSION}, "
                    f"the coordinator sent version {hello.get('protocol')!r}",
                )
            )
            return
        runtime = NodeRuntime(
            factory,
            str(hello["node"]),
            int(hello["seed"]),
            hello["config"],
            int(hello.get("now", 0)),
        )
        first_outputs = runtime.take_outputs()
        if first_outputs:
            raise ProtocolError("a node may not emit before its first advance")
        connection.send(
            {
                "type": HELLO,
                "protocol": PROTOCOL_VERSION,
                "node": runtime.api.name,
                "implementation": implementation,
                "capabilities": ["advance", "state"],
                "next_timer": runtime.api.next_timer,
            }
        )
        while True:
            request = connection.receive()
            kind = request["type"]
            if kind == ADVANCE:
                t = request["t"]
                inbound = [(item["t"], item["message"]) for item in request["inbound"]]
                outputs, next_timer = runtime.advance(t, inbound)
                reply: dict[str, Any] = {
                    "type": REPLY,
                    "t": t,
                    "outputs": outputs,
                    "next_timer": next_timer,
                }
                if request.get("state"):
                    reply["state"] = runtime.state()
                connection.send(reply)
            elif kind == SHUTDOWN:
                connection.send({"type": BYE, "state": runtime.state()})
                return
            elif kind == ERROR:
                print(f"coordinator reported an error: {request.get('message')}", flush=True)
                return
            else:
                raise ProtocolError(f"expected advance or shutdown, got {kind!r}")
    except PeerClosed:
        return
    except ProtocolError as exc:
        print(f"protocol error: {exc}", file=sys.stderr, flush=True)
        _try_send(connection, error_message("protocol", str(exc)))
    except Exception as exc:  # the user's logic failed: say so to the coordinator
        traceback.print_exc()
        where = f" at t={runtime.time}" if runtime is not None else ""
        _try_send(connection, error_message("node_failed", f"{type(exc).__name__}{where}: {exc}"))


def _try_send(connection: Connection, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        connection.send(message)


def serve(
    factory: LogicFactory,
    *,
    host: str = "0.0.0.0",
    port: int = DEFAULT_PORT,
    implementation: str | None = None,
    once: bool = False,
    ready: Callable[[int], None] | None = None,
    listener: socket.socket | None = None,
) -> None:
    """Listen on ``host:port`` and serve coordinator sessions one after another.

    A container's node serves until the container is removed; ``once`` stops after the
    first session. ``ready(port)`` is called once listening (port 0 picks a free port).
    """
    name = str(implementation or getattr(factory, "implementation", "edgesim-node"))
    server = listener or socket.create_server((host, port), reuse_port=False)
    try:
        bound_port = server.getsockname()[1]
        print(f"lockstep node {name} listening on {host}:{bound_port}", flush=True)
        if ready is not None:
            ready(bound_port)
        while True:
            try:
                sock, _ = server.accept()
            except OSError:
                return  # the listener was closed
            connection = Connection(sock)
            try:
                serve_connection(connection, factory, name)
            finally:
                connection.close()
            if once:
                return
    finally:
        server.close()


def run(factory: LogicFactory, *, port: int | None = None) -> None:
    """The entry point of a node process: serve on ``$EDGESIM_LOCKSTEP_PORT`` (default 7883)."""
    chosen = port if port is not None else int(os.environ.get(PORT_ENV, DEFAULT_PORT))
    with contextlib.suppress(KeyboardInterrupt):
        serve(factory, port=chosen)
