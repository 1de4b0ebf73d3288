"""A run's fault schedule: each ``faults:`` entry fired by its trigger, in virtual time.

:class:`FaultSchedule` is made by a run (:class:`~pytest_edgesim.core.run.TopologyRun`)
before its first step. It first asks every fault's kind whether this tier can apply it and
raises one :class:`~pytest_edgesim.errors.FaultError` listing every fault it cannot (before
the run, never half-way through it); then it arms the triggers: ``at`` a virtual time,
``after`` another fault began or ended, ``when`` an event has happened ``count`` times (a
node subscribed at the broker, messages reached a node, a link dropped messages). Each
fault fires once; what it did is a ``fault`` event of the trace (``kind`` at its begin,
``kind:end`` when its ``duration`` is over), so the digest covers the schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_edgesim.core.fault_kinds import FaultKind, fault_kind
from pytest_edgesim.errors import FaultError

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario.schema import FaultSpec

#: which node-life action a kind does first, for the run's check of the node's support
_LIFE_ACTIONS = {
    "crash": ("kill", "start"),
    "restart": ("stop", "start"),
    "pause": ("pause", "resume"),
    "disconnect": ("disconnect", "reconnect"),
    "broker_restart": ("stop", "start"),
    "stop": ("stop",),
    "start": ("start",),
    "kill": ("kill",),
    "resume": ("resume",),
    "reconnect": ("reconnect",),
}
#: which node condition a kind sets
_CONDITIONS = {
    "backhaul_outage": "uplink",
    "storage_full": "storage_full",
    "duty_cycle": "duty_cycle",
    "clock_skew": "clock",
}


class FaultSchedule:
    """The faults of a run's schedule (the scenario's ``faults:`` of the new form, and those
    a test adds with ``edge_scenario.schedule``), armed on the run's coordinator. ``run`` is
    a :class:`~pytest_edgesim.core.run.TopologyRun` (not imported: it imports this module)."""

    def __init__(self, run: Any, faults: Sequence[tuple[str, FaultSpec]]):
        #: ``(where, fault)``: where it was written (``faults[2]``), for messages
        self.run = run
        self.faults = list(faults)
        self._kinds: list[FaultKind] = [fault_kind(fault.fault_kind) for _, fault in faults]
        self._fired = [False] * len(self.faults)
        self._dependents: dict[tuple[str, str], list[int]] = {}
        self._subscriptions: dict[str, list[Callable[[int], None]]] = {}

    # --- before the run ----------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Why this run cannot apply each fault it cannot (empty: it can apply them all)."""
        run = self.run
        found: list[str] = []
        names = {fault.name for _, fault in self.faults if fault.name}
        for (where, fault), kind in zip(self.faults, self._kinds):
            said = f"{where} ({fault.describe()})"
            if fault.after is not None and fault.after.fault not in names:
                found.append(f"{said}: after names no fault {fault.after.fault!r}")
            reason = kind.unsupported(run.tier, fault, run)
            if reason:
                found.append(f"{said}: {reason}")
                continue
            reason = self._target_problem(fault)
            if reason:
                found.append(f"{said}: {reason}")
        return found

    def _target_problem(self, fault: FaultSpec) -> str | None:
        run = self.run
        name = fault.fault_kind
        targets: list[str] = []
        if fault.target is not None:
            if name in ("duty_cycle", "clock_skew", "isolate"):
                from pytest_edgesim.core.network import resolve_nodes

                targets = sorted(resolve_nodes(fault.target, run.nodes))
                if not targets:
                    return f"{fault.target!r} matches no node"
            else:
                targets = [fault.target]
        if fault.when is not None:
            event, subject = fault.when.event
            nodes = subject.split("->") if event == "dropped" else [subject]
            for node in nodes:
                if node.strip() not in run.nodes:
                    return f"when: {node.strip()!r} is not a node of this run"
        for target in targets:
            if target not in run.nodes:
                return f"{target!r} is not a node of this run"
            for action in _LIFE_ACTIONS.get(name, ()):
                try:
                    run._check_target(action, target)
                except FaultError as error:
                    return str(error)
            condition = _CONDITIONS.get(name)
            if condition is not None:
                reason = run.condition_problem(target, condition)
                if reason:
                    return reason
        if fault.between is not None and run.tier == "live":
            return run.live_link_problem(fault)
        gateways = {gateway.name for gateway in run.scenario.spec.gateways}
        if name == "isolate" and run.tier == "live" and gateways & set(targets):
            return (
                "isolating a gateway would cut its real connection to the broker too: give a "
                "partition between it and the broker (the impairing proxy) and a "
                "backhaul_outage instead"
            )
        return None

    def check(self) -> None:
        """Raise one :class:`FaultError` naming every fault this run cannot apply."""
        found = self.problems()
        if found:
            lines = "\n  ".join(found)
            raise FaultError(
                f"this {self.run.noun} cannot apply {len(found)} of the scheduled faults "
                f"(nothing has run yet):\n  {lines}"
            )

    # --- arming ------------------------------------------------------------------------------
    def arm(self) -> None:
        run = self.run
        coordinator = run.coordinator
        for index, (_, fault) in enumerate(self.faults):
            if fault.at is not None:
                coordinator.schedule_at(max(fault.at, run.now), self._fire, index)
            elif fault.after is not None:
                key = (fault.after.fault, fault.after.of)
                self._dependents.setdefault(key, []).append(index)
            else:
                assert fault.when is not None
                self._watch(index, fault)

    def _watch(self, index: int, fault: FaultSpec) -> None:
        assert fault.when is not None
        run = self.run
        event, subject = fault.when.event
        wanted, delay = fault.when.count, fault.when.delay

        def counted(count: int) -> None:
            if count == wanted and not self._fired[index]:
                run.coordinator.schedule_at(run.now + delay, self._fire, index)

        if event == "received":
            run.network.watch_arrivals(subject, counted)
        elif event == "dropped":
            src, dst = (part.strip() for part in subject.split("->"))
            run.network.watch_drops((src, dst), counted)
        else:
            run.watch_subscriptions(subject, counted)

    # --- firing ------------------------------------------------------------------------------
    def _fire(self, index: int) -> None:
        if self._fired[index]:
            return
        self._fired[index] = True
        run = self.run
        _, fault = self.faults[index]
        kind = self._kinds[index]
        recorded = len(run._faults)
        detail, token = kind.begin(run, fault)
        if len(run._faults) == recorded:  # (a node's life fault is recorded by run.fault)
            run._applied(kind.name, _target(fault), detail)
        if fault.duration is not None:
            end_at = run.now + fault.duration
            run.coordinator.schedule_at(end_at, self._end, (index, token))
        self._started(fault, "start")

    def _end(self, item: tuple[int, Any]) -> None:
        index, token = item
        run = self.run
        _, fault = self.faults[index]
        kind = self._kinds[index]
        recorded = len(run._faults)
        detail = kind.end(run, fault, token)
        if len(run._faults) == recorded:
            run._applied(f"{kind.name}:end", _target(fault), detail)
        self._started(fault, "end")

    def _started(self, fault: FaultSpec, edge: str) -> None:
        if fault.name is None:
            return
        run = self.run
        for dependent in self._dependents.get((fault.name, edge), ()):
            after = self.faults[dependent][1].after
            assert after is not None
            run.coordinator.schedule_at(run.now + after.delay, self._fire, dependent)


def _target(fault: FaultSpec) -> str:
    if fault.between is not None:
        arrow = "->" if fault.one_way else "|"
        return f"{','.join(fault.between[0])}{arrow}{','.join(fault.between[1])}"
    return str(fault.target)
