"""The built-in fault kinds (registered by :mod:`pytest_edgesim.core.fault_kinds`).

Each is a declaration (name, target, settings, how long it lasts, which tiers cannot apply
it and why) and what it does to a run: through the run's fault controls (a node's life), its
network (cuts and link profiles), or a node condition (:meth:`Node.set_condition
<pytest_edgesim.core.node.Node.set_condition>`: a gateway's uplink and storage, a device's
duty cycle and clock). docs/faults.md lists them with what each tier can do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from pytest_edgesim.core.network import resolve_nodes

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario.schema import FaultSpec


class FaultRun(Protocol):
    """What a fault kind may use of the run it is done to (a
    :class:`~pytest_edgesim.core.run.TopologyRun`)."""

    scenario: Any

    @property
    def now(self) -> int: ...

    @property
    def network(self) -> Any: ...

    @property
    def nodes(self) -> Mapping[str, Any]: ...

    #: "virtual_time" or "live"
    tier: str

    def fault(self, action: str, node: str, *, duration: Any = None) -> Any: ...

    def change_real_links(self, fault: Any, action: str) -> str: ...

    def node_condition(self, node: str, condition: str, setting: Any) -> str: ...


@dataclass(frozen=True)
class _Kind:
    """The built-in kinds' shared shape: the declaration, ``begin`` and ``end`` as functions."""

    name: str
    description: str
    target: str
    settings: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    lasting: str = "optional"
    #: tier -> why it cannot (a tier not named can)
    limits: Mapping[str, str] = field(default_factory=dict)

    def check(self, fault: FaultSpec) -> str | None:
        return None

    def unsupported(self, tier: str, fault: FaultSpec, run: FaultRun) -> str | None:
        return self.limits.get(tier)

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        raise NotImplementedError

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        return ""


_LINK_SETTINGS: Final = ("latency", "jitter", "loss", "bandwidth")


@dataclass(frozen=True)
class DutyCycle:
    """A device asleep except ``awake`` ticks of every ``period``, from ``since``; a reading
    due while asleep is kept until it wakes (``buffer``) or lost (``drop``)."""

    since: int
    period: int
    awake: int
    buffer: bool

    def wakes_at(self, now: int) -> int:
        """``now`` if awake then, else when it next wakes."""
        phase = (now - self.since) % self.period
        return now if phase < self.awake else now + self.period - phase


@dataclass(frozen=True)
class Clock:
    """A node's clock from ``since``: ``offset`` ahead of virtual time, running
    ``drift_ppm`` parts per million fast (negative: behind, slow)."""

    since: int
    offset: int
    drift_ppm: float

    def reads(self, now: int) -> int:
        """What the node's clock reads at virtual time ``now``."""
        return now + self.offset + round((now - self.since) * self.drift_ppm / 1e6)

    def when_it_reads(self, reading: int) -> int:
        """The virtual time at which the node's clock reads ``reading``."""
        rate = 1.0 + self.drift_ppm / 1e6
        return self.since + round((reading - self.offset - self.since) / rate)


# --- a node's life -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Instant(_Kind):
    """One of the first form's actions, done at once (``stop``, ``start``, ``kill``, ...)."""

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        assert fault.target is not None
        return _detail(run.fault(fault.fault_kind, fault.target)), None


@dataclass(frozen=True)
class _Lasting(_Kind):
    """``begin_action`` now and, after ``duration`` (when given), ``end_action``."""

    begin_action: str = ""
    end_action: str = ""

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        assert fault.target is not None
        return _detail(run.fault(self.begin_action, fault.target)), None

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        assert fault.target is not None
        return _detail(run.fault(self.end_action, fault.target))


@dataclass(frozen=True)
class _Restart(_Kind):
    """Down (a clean stop) and up again: at once, or after ``duration``."""

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        assert fault.target is not None
        action = "restart" if fault.duration is None else "stop"
        return _detail(run.fault(action, fault.target)), None

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        assert fault.target is not None
        return _detail(run.fault("start", fault.target))


@dataclass(frozen=True)
class _BrokerRestart(_Kind):
    def unsupported(self, tier: str, fault: FaultSpec, run: FaultRun) -> str | None:
        return _LIVE_PERSISTENCE if tier == "live" and fault.persistence else None

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        broker = run.scenario.spec.broker.name
        if fault.target != broker:
            from pytest_edgesim.errors import FaultError

            raise FaultError(
                f"broker_restart targets the broker ({broker!r}), not {fault.target!r}"
            )
        if fault.persistence:
            run.node_condition(broker, "persistence", True)
        action = "restart" if fault.duration is None else "stop"
        return _detail(run.fault(action, broker)), None

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        return _detail(run.fault("start", run.scenario.spec.broker.name))


# --- the network ---------------------------------------------------------------------------
def _sides(run: FaultRun, fault: FaultSpec) -> tuple[frozenset[str], frozenset[str]]:
    assert fault.between is not None
    side_a = resolve_nodes(fault.between[0], run.nodes)
    side_b = resolve_nodes(fault.between[1], run.nodes)
    if fault.bridge is not None:  # the bridge reaches both sides: it is cut from neither
        side_a, side_b = side_a - {fault.bridge}, side_b - {fault.bridge}
    return side_a, side_b


@dataclass(frozen=True)
class _Partition(_Kind):
    def check(self, fault: FaultSpec) -> str | None:
        if fault.bridge is not None and fault.one_way:
            return "a bridge joins both sides both ways: give bridge or one_way, not both"
        return None

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        side_a, side_b = _sides(run, fault)
        cut = run.network.cut_between(side_a, side_b, fault.one_way)
        run.network.cut_down(cut)
        return run.change_real_links(fault, "cut"), cut

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        run.network.cut_up(token)
        real = run.change_real_links(fault, "heal")
        return f"healed; {real}" if real else "healed"


@dataclass(frozen=True)
class _Isolate(_Kind):
    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        assert fault.target is not None
        alone = resolve_nodes(fault.target, run.nodes)
        cut = run.network.cut_between(alone, frozenset(run.nodes) - alone)
        run.network.cut_down(cut)
        return "", cut

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        run.network.cut_up(token)
        return "healed"


@dataclass(frozen=True)
class _LinkChange(_Kind):
    def check(self, fault: FaultSpec) -> str | None:
        if not any(getattr(fault, name) is not None for name in _LINK_SETTINGS):
            return "a link_change fault changes at least one of latency, jitter, loss, bandwidth"
        return None

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        side_a, side_b = _sides(run, fault)
        network = run.network
        before = network.link_profiles(side_a, side_b)
        if not fault.one_way:
            before.update(network.link_profiles(side_b, side_a))
        network.set_link(
            sorted(side_a),
            sorted(side_b),
            latency=None if fault.latency is None else f"{fault.latency}us",
            jitter=None if fault.jitter is None else f"{fault.jitter}us",
            loss=fault.loss,
            bandwidth_bps=fault.bandwidth,
            bidirectional=not fault.one_way,
        )
        real = run.change_real_links(fault, "change")
        return "; ".join(part for part in (_link_detail(fault), real) if part), before

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        run.network.restore_profiles(token)
        run.change_real_links(fault, "restore")
        return "restored"


def _link_detail(fault: FaultSpec) -> str:
    parts = []
    if fault.latency is not None:
        parts.append(f"latency {fault.latency / 1000:g}ms")
    if fault.jitter is not None:
        parts.append(f"jitter {fault.jitter / 1000:g}ms")
    if fault.loss is not None:
        parts.append(f"loss {fault.loss:g}")
    if fault.bandwidth is not None:
        parts.append(f"bandwidth {fault.bandwidth}bps")
    return ", ".join(parts)


# --- node conditions -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Backhaul(_Kind):
    """The gateway's uplink (to ``forward.to``) is cut, and the gateway knows it: it keeps
    what it forwards in its store-and-forward buffer (``forward.buffer``) until the uplink
    is back, or, without one, loses it (``partition``)."""

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        gateway = _gateway(run, fault)
        cut = run.network.cut_between(frozenset([gateway.name]), frozenset([gateway.forward.to]))
        run.network.cut_down(cut)
        return run.node_condition(gateway.name, "uplink", False), cut

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        run.network.cut_up(token)
        return run.node_condition(_gateway(run, fault).name, "uplink", True)


@dataclass(frozen=True)
class _StorageFull(_Kind):
    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        return run.node_condition(_gateway(run, fault).name, "storage_full", True), None

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        return run.node_condition(_gateway(run, fault).name, "storage_full", False)


@dataclass(frozen=True)
class _DutyCycle(_Kind):
    def check(self, fault: FaultSpec) -> str | None:
        if fault.awake is not None and fault.period is not None and fault.awake >= fault.period:
            return "awake must be shorter than period (the device sleeps for the rest)"
        return None

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        assert fault.period is not None and fault.awake is not None
        cycle = DutyCycle(run.now, fault.period, fault.awake, fault.asleep == "buffer")
        devices = _devices(run, fault)
        for device in devices:
            run.node_condition(device, "duty_cycle", cycle)
        return f"{len(devices)} device(s)", devices

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        for device in token:
            run.node_condition(device, "duty_cycle", None)
        return ""


@dataclass(frozen=True)
class _ClockSkew(_Kind):
    def check(self, fault: FaultSpec) -> str | None:
        if fault.offset is None and fault.drift_ppm is None:
            return "a clock_skew fault needs offset, drift_ppm, or both"
        return None

    def begin(self, run: FaultRun, fault: FaultSpec) -> tuple[str, Any]:
        clock = Clock(run.now, fault.offset or 0, fault.drift_ppm or 0.0)
        devices = _devices(run, fault)
        for device in devices:
            run.node_condition(device, "clock", clock)
        return "", devices

    def end(self, run: FaultRun, fault: FaultSpec, token: Any) -> str:
        for device in token:
            run.node_condition(device, "clock", None)
        return ""


def _gateway(run: FaultRun, fault: FaultSpec) -> Any:
    from pytest_edgesim.errors import FaultError

    for gateway in run.scenario.spec.gateways:
        if gateway.name == fault.target:
            return gateway
    raise FaultError(f"{fault.fault_kind}: {fault.target!r} is not a gateway")


def _devices(run: FaultRun, fault: FaultSpec) -> tuple[str, ...]:
    from pytest_edgesim.errors import FaultError

    assert fault.target is not None
    chosen = resolve_nodes(fault.target, run.nodes)
    devices = tuple(device.name for device in run.scenario.devices if device.name in chosen)
    if not devices:
        raise FaultError(f"{fault.fault_kind}: {fault.target!r} matches no device")
    return devices


def _detail(applied: Any) -> str:
    return str(getattr(applied, "detail", "") or "")


_LIVE_PERSISTENCE: Final = (
    "a real broker restarts as its configuration says; persistence: true needs the "
    "broker's own mosquitto.conf (persistence true), which this tier does not write"
)

#: the built-in kinds, in the order docs/faults.md lists them
BUILTIN_KINDS: Final = (
    _Partition(
        "partition",
        "cut the links between two groups of nodes (both ways, one way, or around a bridge)",
        target="link",
        settings=("between", "one_way", "bridge"),
        required=("between",),
    ),
    _Isolate("isolate", "cut one node (or a glob's nodes) off from every other node", "node"),
    _LinkChange(
        "link_change",
        "change latency, jitter, loss or bandwidth of the links between two groups",
        target="link",
        settings=("between", "one_way", *_LINK_SETTINGS),
        required=("between",),
    ),
    _Lasting(
        "crash",
        "kill a node (what it held is lost); with a duration, start it again after",
        "node",
        begin_action="kill",
        end_action="start",
    ),
    _Restart(
        "restart",
        "stop a node cleanly and start it afresh, at once or after a duration down",
        "node",
    ),
    _Lasting(
        "pause",
        "freeze a node (it keeps its state; what reaches it waits); resumed after a duration",
        "node",
        begin_action="pause",
        end_action="resume",
    ),
    _Lasting(
        "disconnect",
        "cut a gateway's MQTT connection to the broker; reconnected after a duration",
        "gateway",
        begin_action="disconnect",
        end_action="reconnect",
    ),
    _BrokerRestart(
        "broker_restart",
        "restart the broker, losing its sessions and retained messages unless persistence",
        "broker",
        settings=("persistence",),
    ),
    _Backhaul(
        "backhaul_outage",
        "cut a gateway's uplink to the cloud; it buffers what it forwards (forward.buffer)",
        "gateway",
    ),
    _StorageFull(
        "storage_full",
        "a gateway's store-and-forward buffer takes nothing more (drops: storage_full)",
        "gateway",
    ),
    _DutyCycle(
        "duty_cycle",
        "devices sleep except `awake` of every `period`; readings buffered or dropped asleep",
        "device",
        settings=("period", "awake", "asleep"),
        required=("period", "awake"),
    ),
    _ClockSkew(
        "clock_skew",
        "a device's clock runs ahead/behind (offset) and fast/slow (drift_ppm)",
        "device",
        settings=("offset", "drift_ppm"),
    ),
    _Instant("stop", "stop a node cleanly (the first form's action)", "node", lasting="never"),
    _Instant("start", "start a stopped node (the first form's action)", "node", lasting="never"),
    _Instant("kill", "kill a node (the first form's action)", "node", lasting="never"),
    _Instant("resume", "resume a paused node (the first form's action)", "node", lasting="never"),
    _Instant(
        "reconnect",
        "reconnect a disconnected gateway (the first form's action)",
        "gateway",
        lasting="never",
    ),
)
