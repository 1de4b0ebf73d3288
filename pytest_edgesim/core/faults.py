"""Restarts, crashes and disconnects of a run's nodes: what can be done, in which state.

A run (:class:`~pytest_edgesim.core.run.TopologyRun`) keeps each node's life state here and
checks every fault against it before the node undergoes it (:meth:`Node.apply_fault
<pytest_edgesim.core.node.Node.apply_fault>` in the models, a container or a client in live
runs), so an impossible transition (starting a running node) is the same
:class:`~pytest_edgesim.errors.FaultError` in every tier. Each fault done is an
:class:`AppliedFault`, which the run's result carries (a fault run never looks clean).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_edgesim.core.units import TICKS_PER_SECOND
from pytest_edgesim.errors import FaultUsageError

#: every fault a test can do to a node, in the order the docs list them
FAULT_ACTIONS = ("stop", "start", "restart", "kill", "pause", "resume", "disconnect", "reconnect")

RUNNING = "running"
STOPPED = "stopped"
PAUSED = "paused"

#: action -> (the states it may be done in, the state it leaves the node in)
_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "stop": ((RUNNING, PAUSED), STOPPED),
    "kill": ((RUNNING, PAUSED), STOPPED),
    "restart": ((RUNNING, PAUSED), RUNNING),
    "start": ((STOPPED,), RUNNING),
    "pause": ((RUNNING,), PAUSED),
    "resume": ((PAUSED,), RUNNING),
}

_HINTS = {
    "start": "start a node that was stopped or killed",
    "resume": "resume a paused node",
    "pause": "pause a running node",
    "stop": "start it first",
    "kill": "start it first",
    "restart": "start it instead",
}


@dataclass(frozen=True)
class AppliedFault:
    """One fault done to a run: ``action`` on node ``target`` at virtual time ``time_ticks``;
    ``detail`` says what it cost (``"lost 3 held messages"``) when the tier can tell."""

    time_ticks: int
    action: str
    target: str
    detail: str = ""

    @property
    def time_s(self) -> float:
        return self.time_ticks / TICKS_PER_SECOND

    def __str__(self) -> str:
        text = f"t={self.time_s:g}s {self.action} {self.target}"
        return f"{text} ({self.detail})" if self.detail else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_s": self.time_s,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AppliedFault:
        return cls(
            round(data["time_s"] * TICKS_PER_SECOND),
            data["action"],
            data["target"],
            data.get("detail", ""),
        )


class LifeStates:
    """Each node's life state (running, stopped, paused) and whether its MQTT connection is
    cut; a node never faulted is running and connected."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        #: node -> the number of its current disconnection (a timed reconnect checks it)
        self._disconnected: dict[str, int] = {}
        self._disconnections = 0

    def state(self, node: str) -> str:
        return self._states.get(node, RUNNING)

    def disconnected(self, node: str) -> bool:
        return node in self._disconnected

    def check(self, action: str, node: str) -> None:
        """Raise :class:`FaultError` when ``node`` cannot undergo ``action`` now."""
        state = self.state(node)
        if action in _TRANSITIONS:
            allowed, _ = _TRANSITIONS[action]
            if state not in allowed:
                raise FaultUsageError(f"cannot {action} {node!r}: it is {state} ({_HINTS[action]})")
        elif action == "disconnect":
            if state == STOPPED:
                raise FaultUsageError(f"cannot disconnect {node!r}: it is stopped")
            if self.disconnected(node):
                raise FaultUsageError(f"cannot disconnect {node!r}: it is already disconnected")
        elif action == "reconnect":
            if not self.disconnected(node):
                raise FaultUsageError(f"cannot reconnect {node!r}: it is connected")
        else:
            raise FaultUsageError(f"unknown fault {action!r} (known: {', '.join(FAULT_ACTIONS)})")

    def enter(self, action: str, node: str) -> int:
        """Record that ``node`` underwent ``action`` (checked); for a disconnection, its number."""
        if action in _TRANSITIONS:
            self._states[node] = _TRANSITIONS[action][1]
            return 0
        if action == "disconnect":
            self._disconnections += 1
            self._disconnected[node] = self._disconnections
            return self._disconnections
        self._disconnected.pop(node, None)
        return 0

    def disconnection(self, node: str) -> int | None:
        return self._disconnected.get(node)


class FaultControls:
    """The faults by name, each one :meth:`fault` call: what every run and the
    ``edge_scenario`` handle offer a test (they say what :meth:`fault` does)."""

    def fault(self, action: str, node: str, *, duration: Any = None) -> AppliedFault:
        """Do fault ``action`` (one of :data:`FAULT_ACTIONS`) to ``node`` now."""
        raise NotImplementedError

    def stop(self, node: str) -> AppliedFault:
        """Stop ``node`` cleanly now: it finishes what is due, disconnects, and is down (what
        it still held is lost) until :meth:`start`."""
        return self.fault("stop", node)

    def start(self, node: str) -> AppliedFault:
        """Start a stopped or killed ``node`` again: fresh state, subscriptions renewed."""
        return self.fault("start", node)

    def restart(self, node: str) -> AppliedFault:
        """Stop and start ``node`` now (at the same virtual time)."""
        return self.fault("restart", node)

    def kill(self, node: str) -> AppliedFault:
        """Kill ``node`` now: everything it held is lost, nothing is finished or flushed."""
        return self.fault("kill", node)

    def pause(self, node: str) -> AppliedFault:
        """Freeze ``node``: it keeps its state and connections but processes nothing (what
        reaches it waits) until :meth:`resume`."""
        return self.fault("pause", node)

    def resume(self, node: str) -> AppliedFault:
        """Thaw a paused ``node``: what waited is processed now."""
        return self.fault("resume", node)

    def disconnect(self, node: str, duration: int | float | str | None = None) -> AppliedFault:
        """Cut ``node``'s MQTT connection to the broker now; it reconnects (and re-subscribes)
        after ``duration`` (seconds, or ``"5s"``) or at :meth:`reconnect`."""
        return self.fault("disconnect", node, duration=duration)

    def reconnect(self, node: str) -> AppliedFault:
        """Give a disconnected ``node`` its connection back now."""
        return self.fault("reconnect", node)
