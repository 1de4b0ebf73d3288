"""A scenario's fault schedule as the native engine applies it (``native/src/faults.rs``).

The pure engine arms the schedule (:class:`~pytest_edgesim.core.fault_schedule.FaultSchedule`)
at the first run and applies each kind through the run (:mod:`~pytest_edgesim.core.builtin_faults`).
Here the same schedule is resolved once, before the native run starts: each fault's trigger,
what it acts on (node indices, the cuts it takes down, the links a ``link_change`` touches),
the trace details that do not depend on the run, and which faults wait for it (``after:``).
The native run then fires them as the pure one does, event for event.

:func:`unsupported_faults` says why a schedule stays on the pure engine: a kind the native
engine does not apply (a plugin's kind), more than one fault of one node's life (or the
first form's actions with another fault of the node's life), a node's life with retained
readings, or a fault the pure engine would refuse (it then says why).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from pytest_edgesim.core.builtin_faults import BUILTIN_KINDS, _link_detail
from pytest_edgesim.core.fault_kinds import fault_kind
from pytest_edgesim.core.fault_schedule import _target
from pytest_edgesim.core.faults import AppliedFault, LifeStates
from pytest_edgesim.core.network import resolve_nodes
from pytest_edgesim.core.units import TICKS_PER_SECOND
from pytest_edgesim.errors import FaultError

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.core.scenario.schema import FaultSpec

#: the kinds the native engine applies, with their codes in the plan
NATIVE_KINDS: Final = {
    "partition": 0,
    "isolate": 0,
    "link_change": 1,
    "backhaul_outage": 2,
    "storage_full": 3,
    "duty_cycle": 4,
    "clock_skew": 5,
    "crash": 6,
    "restart": 6,
    "pause": 6,
    "disconnect": 6,
    "broker_restart": 7,
}
_LIVES: Final = ("crash", "restart", "pause", "disconnect", "broker_restart")
_CONNECTION: Final = ("disconnect", "reconnect")
#: a gateway's life actions (``HostedGateway.apply_fault``), by code
_LIFE: Final = {
    "stop": 0,
    "kill": 1,
    "start": 2,
    "restart": 3,
    "disconnect": 4,
    "reconnect": 5,
    "pause": 6,
    "resume": 7,
}
_KINDS_SAID: Final = ", ".join(NATIVE_KINDS)
_BUILTIN: Final = {kind.name: kind for kind in BUILTIN_KINDS}

_AT, _AFTER, _RECEIVED, _DROPPED, _NEVER, _SUBSCRIBED = range(6)

Plan = tuple[list[tuple[Any, ...]], list[Any], list[tuple[Any, ...]]]


class _Unsupported(Exception):
    pass


def node_names(scenario: Scenario) -> list[str]:
    """The run's nodes in the native engine's order (broker, cloud, devices, gateways)."""
    spec = scenario.spec
    names = [spec.broker.name, spec.cloud.name, *(d.name for d in scenario.devices)]
    return names + [g.name for g in spec.gateways]


def unsupported_faults(scenario: Scenario) -> str | None:
    """Why the native engine cannot apply ``scenario``'s ``faults:`` (None when it can)."""
    if not scenario.spec.faults:
        return None
    try:
        fault_plan(scenario, node_names(scenario))
    except _Unsupported as reason:
        return str(reason)
    return None


#: the last plan made, by its scenario (held, so compared by identity): ``simulate()`` asks
#: whether the native engine applies a schedule, the run asks again, then builds it
_last_plan: list[tuple[Scenario, Sequence[str], Plan]] = []


def fault_plan(scenario: Scenario, names: Sequence[str]) -> Plan:
    """``(cuts, buffers, faults)`` for ``NativeRun.arm_faults`` (see ``native/src/lib.rs``);
    :class:`_Unsupported` says why there is none."""
    for known, known_names, plan in _last_plan:
        if known is scenario and list(known_names) == list(names):
            return plan
    plan = _fault_plan(scenario, names)
    _last_plan[:] = [(scenario, names, plan)]
    return plan


def _fault_plan(scenario: Scenario, names: Sequence[str]) -> Plan:
    spec = scenario.spec
    index = {name: position for position, name in enumerate(names)}
    faults: list[tuple[str, FaultSpec]] = []
    actions: list[tuple[str, FaultSpec]] = []  # the first form's, scheduled first
    for position, fault in enumerate(spec.faults):
        where = fault.name or f"faults[{position}]"
        if fault.action is not None:
            actions.append((where, fault))
            continue
        if fault.fault_kind not in NATIVE_KINDS:
            raise _Unsupported(
                f"fault {where!r} is a {fault.fault_kind} fault (native: {_KINDS_SAID})"
            )
        if fault_kind(fault.fault_kind) is not _BUILTIN[fault.fault_kind]:
            raise _Unsupported(
                f"fault {where!r}: its kind {fault.fault_kind!r} is registered anew in this "
                "process (register_fault_kind)"
            )
        faults.append((where, fault))
    _check_lives(scenario, faults, actions)
    named = {fault.name for _, fault in faults if fault.name}
    dependents: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for position, (where, fault) in enumerate(faults):
        if fault.after is not None:
            if fault.after.fault not in named:
                raise _Unsupported(f"fault {where!r}: after names no fault {fault.after.fault!r}")
            key = (fault.after.fault, fault.after.of)
            dependents.setdefault(key, []).append((len(actions) + position, fault.after.delay))
    plan = _Planner(scenario, names, index)
    planned = [plan.first_form(fault) for _, fault in actions]
    for where, fault in faults:
        head, action = plan.action(where, fault)
        waiting = (
            (dependents.get((fault.name, "start"), []), dependents.get((fault.name, "end"), []))
            if fault.name
            else ([], [])
        )
        planned.append((head, plan.trigger(where, fault), action, waiting))
    buffers = [
        None
        if gateway.forward.buffer is None
        else (gateway.forward.buffer.capacity, gateway.forward.buffer.drop == "newest")
        for gateway in spec.gateways
    ]
    return plan.cuts, buffers, planned


def _check_lives(
    scenario: Scenario,
    faults: list[tuple[str, FaultSpec]],
    actions: list[tuple[str, FaultSpec]],
) -> None:
    """Faults of a node's life: a gateway's crash, restart, pause or disconnection, the
    broker's crash, restart or pause; one a node (so that each is a valid transition, as
    the schedule's strategies draw them). The first form's actions: on nodes without
    another fault of their life, each a valid transition at its time (else the pure engine
    says which is not)."""
    spec = scenario.spec
    nodes = {gateway.name for gateway in spec.gateways}
    lives = _check_actions(scenario, actions)
    for where, fault in faults:
        if fault.fault_kind not in _LIVES:
            continue
        allowed = nodes if fault.fault_kind == "disconnect" else {*nodes, spec.broker.name}
        if fault.fault_kind == "broker_restart":
            allowed = {spec.broker.name}
        if fault.target not in allowed:
            raise _Unsupported(
                f"fault {where!r} is a {fault.fault_kind} of {fault.target!r} (native: of a "
                "gateway or the broker)"
            )
        if fault.target in lives:
            raise _Unsupported(
                f"fault {where!r} is a second fault of {fault.target!r}'s life (native: one)"
            )
        lives.add(fault.target)
        if any(device.retain for device in scenario.spec.devices):
            raise _Unsupported(
                f"fault {where!r}: a gateway subscribing again gets retained readings "
                "(native: not with retained readings)"
            )


def _check_actions(scenario: Scenario, actions: list[tuple[str, FaultSpec]]) -> set[str]:
    """The nodes the first form's actions name, each sequence checked as
    ``TopologyRun.fault`` checks it when it falls due (a timed reconnection after the
    actions due at the same time)."""
    spec = scenario.spec
    broker = spec.broker.name
    gateways = {gateway.name for gateway in spec.gateways}
    # (time, order, action, where, node, duration; for a timed reconnection, the number of
    # the disconnection it ends)
    pending: list[tuple[int, int, str, str, str, int | None]] = []
    for order, (where, fault) in enumerate(actions):
        assert fault.action is not None and fault.at is not None and fault.target is not None
        allowed = gateways | ({broker} if fault.action not in _CONNECTION else set())
        if fault.target not in allowed or any(device.retain for device in spec.devices):
            raise _Unsupported(
                f"fault {where!r}: {fault.action} {fault.target!r} (native: a gateway's or the "
                "broker's life, without retained readings)"
            )
        pending.append((fault.at, order, fault.action, where, fault.target, fault.duration))
    nodes = {node for *_, node, _ in pending}
    lives = LifeStates()
    pending.sort()
    scheduled = len(pending)  # (a timed reconnection is queued after what was due before)
    while pending:
        at, _, action, where, node, extra = pending.pop(0)
        if action == "timed_reconnect":
            if lives.disconnection(node) != extra:  # (native: it always reconnects)
                raise _Unsupported(f"fault {where!r}: reconnected before its time")
            lives.enter("reconnect", node)
            continue
        try:
            lives.check(action, node)
        except FaultError as error:
            raise _Unsupported(f"fault {where!r}: {error}") from None
        number = lives.enter(action, node)
        if extra is not None:
            scheduled += 1
            pending.append((at + extra, scheduled, "timed_reconnect", where, node, number))
            pending.sort()
    return nodes


class _Planner:
    """Resolves one fault after another against the run's nodes, sharing cuts as
    ``NetworkModel.cut_between`` does."""

    def __init__(self, scenario: Scenario, names: Sequence[str], index: Mapping[str, int]):
        self.scenario = scenario
        self.names = names
        self.index = index
        #: (a set: a name is looked up, not searched for, in a thousand nodes' names)
        self.known = frozenset(names)
        self.gateways = {gateway.name: gateway for gateway in scenario.spec.gateways}
        self.devices = [device.name for device in scenario.devices]
        self.cuts: list[tuple[list[int], list[int], bool]] = []
        self._cut_of: dict[tuple[frozenset[str], frozenset[str], bool], int] = {}

    def first_form(self, fault: FaultSpec) -> tuple[Any, ...]:
        """The first form's ``at`` + ``action`` (``TopologyRun.schedule_fault``): one
        action of a node's life; a disconnection with a duration reconnects after it."""
        assert fault.action is not None and fault.at is not None
        action, node = fault.action, str(fault.target)
        broker = node == self.scenario.spec.broker.name
        gateway = 0 if broker else list(self.gateways).index(node)
        detail = ""
        end = ("", 0)
        if fault.duration is not None:
            detail = f"reconnects at t={(fault.at + fault.duration) / TICKS_PER_SECOND:g}s"
            end = ("reconnect", _LIFE["reconnect"])
        code = NATIVE_KINDS["broker_restart" if broker else "crash"]
        head = (action, end[0], node, fault.duration, detail, "")
        life = (_LIFE[action], end[1], False)
        plain: tuple[Any, ...] = ((None, None, None, None), [], (0, 0, False), (0, 0.0))
        return head, (_AT, fault.at, 0, 0, 0), (code, 0, gateway, [], *plain, life), ([], [])

    def _cut(self, side_a: frozenset[str], side_b: frozenset[str], one_way: bool = False) -> int:
        key = (side_a, side_b, one_way)
        found = self._cut_of.get(key)
        if found is None:
            found = self._cut_of[key] = len(self.cuts)
            if not one_way:
                self._cut_of[(side_b, side_a, one_way)] = found
            self.cuts.append((self._indices(side_a), self._indices(side_b), one_way))
        return found

    def _indices(self, side: frozenset[str]) -> list[int]:
        if len(side) * 8 < len(self.names):
            return sorted(self.index[name] for name in side)
        return [position for position, name in enumerate(self.names) if name in side]

    def _sides(self, fault: FaultSpec) -> tuple[frozenset[str], frozenset[str]]:
        assert fault.between is not None
        side_a = resolve_nodes(fault.between[0], self.known)
        side_b = resolve_nodes(fault.between[1], self.known)
        if fault.bridge is not None:
            side_a, side_b = side_a - {fault.bridge}, side_b - {fault.bridge}
        return side_a, side_b

    def _gateway(self, where: str, fault: FaultSpec) -> int:
        if fault.target not in self.gateways:
            raise _Unsupported(f"fault {where!r}: {fault.target!r} is not a gateway")
        return list(self.gateways).index(fault.target)

    def action(self, where: str, fault: FaultSpec) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """(the head: name, target, duration, details; the action) of ``fault``."""
        kind = fault.fault_kind
        cut = gateway = 0
        pairs: list[tuple[int, int]] = []
        settings: tuple[Any, ...] = (None, None, None, None)
        sensors: list[int] = []
        cycle: tuple[int, int, bool] = (0, 0, False)
        clock: tuple[int, float] = (0, 0.0)
        begin = end = ""
        names = (kind, f"{kind}:end")
        life: tuple[int, int, bool] = (0, 0, False)
        kind_code = NATIVE_KINDS[kind]
        if kind in _LIVES:
            restart = ("restart", "") if fault.duration is None else ("stop", "start")
            names = {
                "crash": ("kill", "start"),
                "pause": ("pause", "resume"),
                "disconnect": ("disconnect", "reconnect"),
            }.get(kind, restart)
            life = (_LIFE[names[0]], _LIFE.get(names[1], 0), fault.persistence)
            if fault.target == self.scenario.spec.broker.name:
                kind_code = NATIVE_KINDS["broker_restart"]
            else:
                gateway = self._gateway(where, fault)
        elif kind == "partition":
            cut = self._cut(*self._sides(fault), fault.one_way)
            end = "healed"
        elif kind == "isolate":
            alone = self._targets(where, fault)
            cut = self._cut(alone, self.known - alone)
            end = "healed"
        elif kind == "link_change":
            side_a, side_b = self._sides(fault)
            if not side_a or not side_b:
                raise _Unsupported(f"fault {where!r}: a side of the link change matches no node")
            pairs = self._pairs(side_a, side_b, fault.one_way)
            loss = None if fault.loss is None else float(fault.loss)
            settings = (fault.latency, fault.jitter, loss, fault.bandwidth)
            begin, end = _link_detail(fault), "restored"
        elif kind in ("backhaul_outage", "storage_full"):
            gateway = self._gateway(where, fault)
            spec = self.gateways[str(fault.target)]
            if kind == "backhaul_outage":
                cut = self._cut(frozenset([spec.name]), frozenset([spec.forward.to]))
                buffer = spec.forward.buffer
                begin = "no buffer" if buffer is None else f"buffering up to {buffer.capacity}"
        elif kind in ("duty_cycle", "clock_skew"):
            chosen = self._targets(where, fault)
            if not chosen <= set(self.devices):
                raise _Unsupported(f"fault {where!r}: {fault.target!r} matches a node not a device")
            sensors = [position for position, name in enumerate(self.devices) if name in chosen]
            if kind == "duty_cycle":
                assert fault.period is not None and fault.awake is not None
                cycle = (fault.period, fault.awake, fault.asleep == "buffer")
                begin = f"{len(sensors)} device(s)"
            else:
                clock = (fault.offset or 0, float(fault.drift_ppm or 0.0))
        head = (*names, _target(fault), fault.duration, begin, end)
        action = (kind_code, cut, gateway, pairs, settings, sensors, cycle, clock, life)
        return head, action

    def _targets(self, where: str, fault: FaultSpec) -> frozenset[str]:
        assert fault.target is not None
        chosen = resolve_nodes(fault.target, self.known)
        if not chosen:
            raise _Unsupported(f"fault {where!r}: {fault.target!r} matches no node")
        return chosen

    def _pairs(
        self, side_a: frozenset[str], side_b: frozenset[str], one_way: bool
    ) -> list[tuple[int, int]]:
        """The links ``network.link_profiles`` opens, in its order (each once)."""
        index = self.index
        pairs = [(src, dst) for src in sorted(side_a) for dst in sorted(side_b) if src != dst]
        if not one_way:
            pairs += [(src, dst) for src in sorted(side_b) for dst in sorted(side_a) if src != dst]
        unique = dict.fromkeys(pairs)
        return [(index[src], index[dst]) for src, dst in unique]

    def trigger(self, where: str, fault: FaultSpec) -> tuple[int, int, int, int, int]:
        if fault.at is not None:
            return (_AT, fault.at, 0, 0, 0)
        if fault.after is not None:
            return (_AFTER, 0, 0, 0, 0)
        assert fault.when is not None
        event, subject = fault.when.event
        count, delay = fault.when.count, fault.when.delay
        nodes = [part.strip() for part in subject.split("->")] if event == "dropped" else [subject]
        for node in nodes:
            if node not in self.index:
                raise _Unsupported(f"fault {where!r}: when: {node!r} is not a node of this run")
        if event == "subscribed":
            # a gateway connected at the start has subscribed once: the first time fires as
            # the schedule is armed; another node never subscribes
            if subject not in self.gateways:
                return (_NEVER, 0, 0, 0, 0)
            if count == 1:
                return (_AT, delay, 0, 0, 0)
            return (_SUBSCRIBED, delay, self.index[subject], 0, count)
        if event == "received":
            return (_RECEIVED, delay, self.index[subject], 0, count)
        return (_DROPPED, delay, self.index[nodes[0]], self.index[nodes[1]], count)


def read_back(
    raw: tuple[list[tuple[int, str, str, str]], list[tuple[int, int, int]], int],
    scenario: Scenario,
    nodes: dict[str, dict[str, Any]],
) -> tuple[AppliedFault, ...]:
    """The faults done, from the native run; ``nodes`` (the nodes' descriptions) gain what
    the pure run's describe (``TopologyRun._describe``): a gateway's buffer and messages
    lost while down, a faulted node's state, restarts and faults."""
    applied, gateways, broker_down = raw
    if broker_down:
        nodes[scenario.spec.broker.name]["dropped_node_down"] = broker_down
    for gateway, (buffered, dropped, down) in zip(scenario.spec.gateways, gateways):
        described = nodes[gateway.name]
        if down:
            described["dropped_node_down"] = down
        if buffered:
            described["buffered"] = buffered
        if dropped:
            described["dropped_storage_full"] = dropped
    faults = tuple(AppliedFault(*record) for record in applied)
    done: dict[str, list[str]] = {}
    for fault in faults:
        done.setdefault(fault.target, []).append(fault.action)
    for name, actions in done.items():
        if name not in nodes:
            continue
        state, disconnected = "running", False
        for action in actions:
            if action in ("stop", "kill"):
                state = "stopped"
            elif action in ("start", "restart", "resume"):
                state = "running"
            elif action == "pause":
                state = "paused"
            elif action in ("disconnect", "reconnect"):
                disconnected = action == "disconnect"
        restarts = sum(action in ("start", "restart") for action in actions)
        nodes[name].update(state=state, restarts=restarts, faults=len(actions))
        if disconnected:
            nodes[name]["disconnected"] = True
    return faults
