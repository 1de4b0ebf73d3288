"""Swarm testing: each run's seed draws its own fault profile from a catalogue.

A fixed fault plan tests the faults someone thought of; swarm testing lets every seed switch
each kind of fault on or off and draw how often and how hard it strikes, within bounds the
user sets, so that many trials cover many mixes (and the mixes that break the system show in
the pass rates by kind). The profile derives from the run's seed only
(``RandomStream(seed, "swarm/<kind>")``, one stream per kind: enabling a kind never shifts
the draws of another), so a run replayed with its seed undergoes the same faults.

The catalogue is a registry, :func:`register_swarm_kind`: a kind is a name and a
:data:`DrawFunction` ``draw(rng, topology, bounds) -> list[SwarmFault]`` that draws one
occurrence; each drawn fault names an action, and :func:`register_swarm_action` says how
an action is put on a run (node faults, partitions and link changes are built in).
:func:`draw_profile` decides, per kind, whether it is on and how many times it strikes,
and drops occurrences that would collide (two life-state faults of one node, two
changes of one link at once). :func:`schedule_profile` puts a profile on a run's queue
through the run's own fault, partition and link controls, so the faults are traced (the
trace digest covers them) like any fault a test does by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_edgesim.core.rng import RandomStream
from pytest_edgesim.core.units import TICKS_PER_SECOND

#: a run a profile applies to (a :class:`~pytest_edgesim.core.run.TopologyRun`; not imported:
#: the run imports this module)
TopologyRun = Any

#: what a drawn fault does: a node fault (``restart``, ``kill`` then ``start``, ``pause``
#: then ``resume``, ``disconnect`` for a while), a partition, or a link change for a while
NODE_ACTIONS = ("restart", "kill", "pause", "disconnect")
_TICKS_PER_MS = TICKS_PER_SECOND // 1000
PARTITION = "partition"
LINK = "link"
#: a fault of the schedule (docs/faults.md), put on the run by ``run.schedule``
SCHEDULED = "schedule"


@dataclass(frozen=True, slots=True)
class SwarmFault:
    """One fault a profile drew: ``action`` on ``targets`` from ``at_ticks`` for
    ``duration_ticks`` (0: instantaneous, a restart), with the link ``settings`` it sets."""

    kind: str
    action: str
    at_ticks: int
    targets: tuple[str, ...]
    duration_ticks: int = 0
    settings: tuple[tuple[str, float], ...] = ()

    @property
    def end_ticks(self) -> int:
        return self.at_ticks + self.duration_ticks

    def __str__(self) -> str:
        start = f"t={self.at_ticks / TICKS_PER_SECOND:g}s"
        if self.duration_ticks:
            start += f"..{self.end_ticks / TICKS_PER_SECOND:g}s"
        joined = " | " if self.action == PARTITION else " <-> "
        text = f"{start} {self.kind} {joined.join(self.targets)}"
        if self.settings:
            text += " " + " ".join(f"{key}={value:g}" for key, value in self.settings)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "action": self.action,
            "at_s": self.at_ticks / TICKS_PER_SECOND,
            "duration_s": self.duration_ticks / TICKS_PER_SECOND,
            "targets": list(self.targets),
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SwarmFault:
        return cls(
            data["kind"],
            data["action"],
            round(data["at_s"] * TICKS_PER_SECOND),
            tuple(data["targets"]),
            round(data.get("duration_s", 0) * TICKS_PER_SECOND),
            tuple(sorted(data.get("settings", {}).items())),
        )


@dataclass(frozen=True)
class SwarmBounds:
    """The bounds a kind draws within (the scenario's ``swarm:`` section, resolved).

    ``probability`` that the kind is on in a run; when on, 1 to ``max_count`` occurrences,
    each starting in ``[start_ticks, end_ticks)`` and lasting ``min_duration_ticks`` to
    ``max_duration_ticks``; a link change sets a loss up to ``max_loss`` or a latency up to
    ``max_latency_ticks``; ``targets``: glob patterns of the nodes it may strike (empty: the
    kind's own choice).
    """

    probability: float = 0.5
    max_count: int = 2
    start_ticks: int = 0
    end_ticks: int = 60 * TICKS_PER_SECOND
    min_duration_ticks: int = 1 * TICKS_PER_SECOND
    max_duration_ticks: int = 10 * TICKS_PER_SECOND
    max_loss: float = 0.5
    max_latency_ticks: int = TICKS_PER_SECOND // 2
    targets: tuple[str, ...] = ()

    def at(self, rng: RandomStream) -> int:
        """A start time within the window, in whole milliseconds (a profile reads easily)."""
        span_ms = max(1, (self.end_ticks - self.start_ticks) // _TICKS_PER_MS)
        return self.start_ticks + rng.below(span_ms) * _TICKS_PER_MS

    def duration(self, rng: RandomStream) -> int:
        """A duration within the bounds, in whole milliseconds (at least one)."""
        low = max(1, self.min_duration_ticks // _TICKS_PER_MS)
        high = max(low, self.max_duration_ticks // _TICKS_PER_MS)
        return (low + rng.below(high - low + 1)) * _TICKS_PER_MS


@dataclass(frozen=True)
class SwarmTopology:
    """What a draw may know of the run: the node names by role, and the faults each node
    supports in this run (a kind draws only targets that can undergo it)."""

    broker: str
    gateways: tuple[str, ...]
    devices: tuple[str, ...]
    supported: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: the conditions each node can take in this run (a gateway's ``uplink``...)
    conditions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def can(self, node: str, *actions: str) -> bool:
        return all(action in self.supported.get(node, ()) for action in actions)

    def takes(self, node: str, condition: str) -> bool:
        return condition in self.conditions.get(node, ())

    @classmethod
    def of(cls, run: TopologyRun) -> SwarmTopology:
        scenario = run.scenario
        return cls(
            broker=run.broker.name,
            gateways=tuple(gateway.name for gateway in scenario.spec.gateways),
            devices=tuple(device.name for device in scenario.devices),
            # (a live run asks its real components what they support)
            supported={name: tuple(run._supported_faults(name)) for name in run.nodes},
            conditions={name: tuple(node.supported_conditions) for name, node in run.nodes.items()},
        )


#: ``draw(rng, topology, bounds)``: one occurrence of a kind (empty: nothing to strike)
DrawFunction = Callable[[RandomStream, SwarmTopology, SwarmBounds], list[SwarmFault]]


@dataclass(frozen=True)
class SwarmKind:
    """A catalogue entry: its name, what it does in a few words, and its draw."""

    name: str
    summary: str
    draw: DrawFunction
    #: drawn when a ``swarm:`` section names no kinds (False: only when named)
    default: bool = True


_CATALOGUE: dict[str, SwarmKind] = {}


def register_swarm_kind(
    name: str, summary: str, draw: DrawFunction, *, default: bool = True
) -> SwarmKind:
    """Add a kind to the catalogue (a name already there is replaced); ``default=False``
    keeps it out of a swarm that names no kinds (so adding it changes no existing profile)."""
    kind = _CATALOGUE[name] = SwarmKind(name, summary, draw, default)
    return kind


def swarm_kinds() -> Mapping[str, SwarmKind]:
    """The catalogue, in registration order."""
    return dict(_CATALOGUE)


def _matching(names: Iterable[str], patterns: Sequence[str]) -> list[str]:
    import fnmatch

    names = list(names)
    if not patterns:
        return names
    return [name for name in names if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def _pick(rng: RandomStream, candidates: Sequence[str]) -> str | None:
    return candidates[rng.below(len(candidates))] if candidates else None


def _one_gateway(
    kind: str, action: str, timed: bool, eligible: Callable[[SwarmTopology, str], bool]
) -> DrawFunction:
    """A kind that strikes one ``eligible`` gateway with ``action`` (for a while if ``timed``)."""

    def draw(rng: RandomStream, topology: SwarmTopology, bounds: SwarmBounds) -> list[SwarmFault]:
        candidates = [
            name
            for name in _matching(topology.gateways, bounds.targets)
            if eligible(topology, name)
        ]
        target = _pick(rng, candidates)
        if target is None:
            return []
        at = bounds.at(rng)
        duration = bounds.duration(rng) if timed else 0
        return [SwarmFault(kind, action, at, (target,), duration)]

    return draw


def _gateway_fault(kind: str, action: str, timed: bool, *needs: str) -> DrawFunction:
    """A kind that strikes one gateway (one that supports ``needs``) with ``action``."""
    return _one_gateway(kind, action, timed, lambda topology, name: topology.can(name, *needs))


def _draw_broker_restart(
    rng: RandomStream, topology: SwarmTopology, bounds: SwarmBounds
) -> list[SwarmFault]:
    if not topology.can(topology.broker, "stop", "start"):
        return []
    return [SwarmFault("broker_restart", "restart", bounds.at(rng), (topology.broker,))]


def _link_ends(rng: RandomStream, topology: SwarmTopology, bounds: SwarmBounds) -> str | None:
    """A node whose link to the broker a network kind strikes: a gateway or a device."""
    return _pick(rng, _matching([*topology.gateways, *topology.devices], bounds.targets))


def _draw_partition(
    rng: RandomStream, topology: SwarmTopology, bounds: SwarmBounds
) -> list[SwarmFault]:
    node = _link_ends(rng, topology, bounds)
    if node is None:
        return []
    at, duration = bounds.at(rng), bounds.duration(rng)
    return [SwarmFault("partition", PARTITION, at, (node, topology.broker), duration)]


def _draw_isolate(
    rng: RandomStream, topology: SwarmTopology, bounds: SwarmBounds
) -> list[SwarmFault]:
    node = _pick(rng, _matching(topology.gateways, bounds.targets))
    if node is None:
        return []
    at, duration = bounds.at(rng), bounds.duration(rng)
    return [SwarmFault("isolate", PARTITION, at, (node, "*"), duration)]


def _draw_link_loss(
    rng: RandomStream, topology: SwarmTopology, bounds: SwarmBounds
) -> list[SwarmFault]:
    node = _link_ends(rng, topology, bounds)
    if node is None:
        return []
    at, duration = bounds.at(rng), bounds.duration(rng)
    loss = round(bounds.max_loss * (0.1 + 0.9 * rng.random()), 3)
    return [SwarmFault("link_loss", LINK, at, (node, topology.broker), duration, (("loss", loss),))]


def _draw_link_latency(
    rng: RandomStream, topology: SwarmTopology, bounds: SwarmBounds
) -> list[SwarmFault]:
    node = _link_ends(rng, topology, bounds)
    if node is None:
        return []
    at, duration = bounds.at(rng), bounds.duration(rng)
    latency_ms = round(bounds.max_latency_ticks * (0.1 + 0.9 * rng.random()) / 1000, 1)
    settings = (("latency_ms", latency_ms),)
    return [SwarmFault("link_latency", LINK, at, (node, topology.broker), duration, settings)]


def _gateway_condition(kind: str, condition: str) -> DrawFunction:
    """A kind of the fault schedule (docs/faults.md) that sets ``condition`` of one gateway
    for a while: drawn as a :data:`SCHEDULED` fault, put on the run by ``run.schedule``."""
    return _one_gateway(
        kind, SCHEDULED, True, lambda topology, name: topology.takes(name, condition)
    )


register_swarm_kind(
    "gateway_restart",
    "a gateway stops and starts at once",
    _gateway_fault("gateway_restart", "restart", False, "stop", "start"),
)
register_swarm_kind(
    "gateway_crash",
    "a gateway is killed, and started again after a while",
    _gateway_fault("gateway_crash", "kill", True, "kill", "start"),
)
register_swarm_kind(
    "gateway_pause",
    "a gateway is paused, and resumed after a while",
    _gateway_fault("gateway_pause", "pause", True, "pause", "resume"),
)
register_swarm_kind(
    "disconnect",
    "a gateway's MQTT connection is cut for a while",
    _gateway_fault("disconnect", "disconnect", True, "disconnect", "reconnect"),
)
register_swarm_kind("broker_restart", "the broker stops and starts at once", _draw_broker_restart)
register_swarm_kind(
    "partition", "a gateway's or device's link to the broker is cut for a while", _draw_partition
)
register_swarm_kind(
    "isolate", "a gateway is cut off from every other node for a while", _draw_isolate
)
register_swarm_kind("link_loss", "a link to the broker loses packets for a while", _draw_link_loss)
register_swarm_kind(
    "link_latency", "a link to the broker slows down for a while", _draw_link_latency
)
register_swarm_kind(
    "backhaul_outage",
    "a gateway's uplink to the cloud is out for a while (it buffers what it forwards)",
    _gateway_condition("backhaul_outage", "uplink"),
    default=False,
)
register_swarm_kind(
    "storage_full",
    "a gateway's store-and-forward buffer takes nothing more for a while",
    _gateway_condition("storage_full", "storage_full"),
    default=False,
)


# --- profiles ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwarmProfile:
    """The faults one seed drew: the kinds that are on (with at least one fault kept) and
    the faults, in time order."""

    seed: int
    kinds: tuple[str, ...]
    faults: tuple[SwarmFault, ...]

    def describe(self) -> str:
        return "; ".join(str(fault) for fault in self.faults) or "no faults"

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "kinds": list(self.kinds),
            "faults": [fault.to_dict() for fault in self.faults],
        }


def _channels(fault: SwarmFault) -> tuple[tuple[str, ...], ...]:
    """What a fault holds while it lasts: a node's life (and connection), or a link."""
    if fault.action in NODE_ACTIONS:
        return (("node", fault.targets[0]),)
    if fault.action == LINK:
        return (("link", *sorted(fault.targets)),)
    if fault.action == SCHEDULED:  # (one outage of a kind at a time per gateway)
        return ((fault.kind, fault.targets[0]),)
    return ()


def draw_profile(
    seed: int, topology: SwarmTopology, kinds: Mapping[str, SwarmBounds]
) -> SwarmProfile:
    """The profile of ``seed``: per kind of ``kinds`` (names in the catalogue), on with its
    ``probability`` and then 1 to ``max_count`` occurrences; colliding occurrences are
    dropped, the earlier one kept."""
    drawn: list[SwarmFault] = []
    for name, bounds in kinds.items():
        kind = _CATALOGUE[name]
        rng = RandomStream(seed, f"swarm/{name}")
        if rng.random() >= bounds.probability:
            continue
        for _ in range(1 + rng.below(bounds.max_count)):
            drawn += kind.draw(rng, topology, bounds)
    drawn.sort(key=lambda fault: (fault.at_ticks, fault.kind, fault.targets))
    busy: dict[tuple[str, ...], int] = {}
    kept: list[SwarmFault] = []
    for fault in drawn:
        channels = _channels(fault)
        if any(busy.get(channel, -1) >= fault.at_ticks for channel in channels):
            continue
        for channel in channels:
            busy[channel] = fault.end_ticks
        kept.append(fault)
    on = tuple(name for name in kinds if any(fault.kind == name for fault in kept))
    return SwarmProfile(int(seed), on, tuple(kept))


def resolve_bounds(swarm: Any, duration_ticks: int) -> dict[str, SwarmBounds]:
    """The bounds of each kind of a scenario's ``swarm:`` section
    (:class:`~pytest_edgesim.core.scenario.schema.SwarmSpec`): per-kind values over the
    section's, over the defaults; every kind of the catalogue when it names none."""
    names = (
        list(swarm.kinds)
        if swarm.kinds is not None
        else [name for name, kind in _CATALOGUE.items() if kind.default]
    )
    end = duration_ticks if swarm.end is None else min(swarm.end, duration_ticks)
    resolved = {}
    for name in names:
        own = swarm.kinds.get(name) if swarm.kinds is not None else None

        def pick(key: str, own: Any = own) -> Any:
            value = getattr(own, key, None) if own is not None else None
            return getattr(swarm, key) if value is None else value

        resolved[name] = SwarmBounds(
            probability=pick("probability"),
            max_count=pick("max_count"),
            start_ticks=swarm.start,
            end_ticks=max(end, swarm.start + 1),
            min_duration_ticks=pick("min_duration"),
            max_duration_ticks=pick("max_duration"),
            max_loss=pick("max_loss"),
            max_latency_ticks=pick("max_latency"),
            targets=tuple(pick("targets") or ()),
        )
    return resolved


# --- applying a profile to a run ----------------------------------------------------------------
#: ``apply(run, fault)``: puts a drawn fault of one action on a run's queue
ApplyFunction = Callable[[TopologyRun, SwarmFault], None]


def _node_fault(then: str | None) -> ApplyFunction:
    """A node fault at ``at_ticks``, and ``then`` (its end) after its duration."""

    def apply(run: TopologyRun, fault: SwarmFault) -> None:
        target = fault.targets[0]
        options = {}
        if fault.action == "disconnect":
            options["duration"] = f"{fault.duration_ticks}us"
        run.schedule_fault(f"{fault.at_ticks}us", fault.action, target, **options)
        if then is not None:
            run.schedule_fault(f"{fault.end_ticks}us", then, target)

    return apply


def _apply_link(run: TopologyRun, fault: SwarmFault) -> None:
    run.coordinator.schedule_at(fault.at_ticks, _link_change, (run, fault))


def _apply_partition(run: TopologyRun, fault: SwarmFault) -> None:
    _schedule_partition(run, fault)


def _apply_scheduled(run: TopologyRun, fault: SwarmFault) -> None:
    entry: dict[str, object] = {
        "kind": fault.kind,
        "target": fault.targets[0],
        "at": f"{fault.at_ticks}us",
    }
    if fault.duration_ticks:
        entry["duration"] = f"{fault.duration_ticks}us"
    run.schedule(entry)


_APPLIERS: dict[str, ApplyFunction] = {
    "restart": _node_fault(None),
    "kill": _node_fault("start"),
    "pause": _node_fault("resume"),
    "disconnect": _node_fault(None),
    PARTITION: _apply_partition,
    LINK: _apply_link,
    SCHEDULED: _apply_scheduled,
}


def register_swarm_action(action: str, apply: ApplyFunction) -> None:
    """Say how a drawn fault whose ``action`` is ``action`` is put on a run (the seam a new
    kind of fault plugs into: its catalogue entry draws faults with that action)."""
    _APPLIERS[action] = apply


def schedule_profile(run: TopologyRun, profile: SwarmProfile) -> None:
    """Put each fault of ``profile`` on ``run``'s queue (call before the run passes its time)."""
    for fault in profile.faults:
        apply = _APPLIERS.get(fault.action)
        assert apply is not None, f"no swarm action {fault.action!r} is registered"
        apply(run, fault)


def _schedule_partition(run: TopologyRun, fault: SwarmFault) -> None:
    network = run.network
    nodes = list(run.nodes)
    side_a = frozenset([fault.targets[0]])
    other = fault.targets[1]
    side_b = frozenset(n for n in nodes if n not in side_a) if other == "*" else frozenset([other])
    cut = network.add_cut(side_a, side_b)
    run.coordinator.schedule_at(fault.at_ticks, _partition_change, (run, fault, cut, True))
    run.coordinator.schedule_at(fault.end_ticks, _partition_change, (run, fault, cut, False))


def _partition_change(item: tuple[TopologyRun, SwarmFault, Any, bool]) -> None:
    run, fault, cut, down = item
    if down:
        run.network.cut_down(cut)
    else:
        run.network.cut_up(cut)
    if run.tracer.enabled:
        a, b = fault.targets
        run.tracer.record(run.now, "fault", a, b, "", fault.kind + ("" if down else " ends"), "")


def _link_change(item: tuple[TopologyRun, SwarmFault]) -> None:
    """A link change begins: set it both ways, and put the old profiles back at its end."""
    run, fault = item
    network = run.network
    a, b = fault.targets
    pairs = [(a, b), (b, a)]
    before = [(pair, network.link(*pair).profile) for pair in pairs]
    settings = dict(fault.settings)
    changes: dict[str, Any] = {}
    if "loss" in settings:
        changes.update(loss="bernoulli" if settings["loss"] > 0 else "none")
        changes["loss_rate"] = settings["loss"]
    if "latency_ms" in settings:
        changes["latency"] = round(settings["latency_ms"] * 1000)
    for pair, profile in before:
        network.link(*pair).profile = replace(profile, **changes)
    if run.tracer.enabled:
        run.tracer.record(run.now, "fault", a, b, "", fault.kind, str(fault))
    run.coordinator.schedule_at(fault.end_ticks, _link_restore, (run, fault, before))


def _link_restore(item: tuple[TopologyRun, SwarmFault, list[tuple[tuple[str, str], Any]]]) -> None:
    run, fault, before = item
    for pair, profile in before:
        run.network.link(*pair).profile = profile
    if run.tracer.enabled:
        a, b = fault.targets
        run.tracer.record(run.now, "fault", a, b, "", f"{fault.kind} ends", "")


# --- pass rates by kind -----------------------------------------------------------------------
#: the row of the trials that drew no fault at all
NO_FAULTS = "(no faults)"


def pass_rates_by_kind(
    trials: Sequence[tuple[Sequence[str], bool]], confidence: float = 0.95
) -> list[dict[str, Any]]:
    """Per kind, over ``trials`` (each: the kinds it had on, whether it passed): the trials
    with it on, how many passed, the rate and its Wilson interval at ``confidence``, and the
    same counts over the trials that had it alone (``alone``, ``alone_passed``). Kinds
    in catalogue order (others after, by name), then the trials with no fault at all."""
    from pytest_edgesim.core.stats import wilson_interval

    seen = {kind for kinds, _ in trials for kind in kinds}
    order = [name for name in _CATALOGUE if name in seen] + sorted(seen - set(_CATALOGUE))
    rows = []
    for kind in [*order, NO_FAULTS]:
        outcomes = [
            passed
            for kinds, passed in trials
            if (kind in kinds if kind != NO_FAULTS else not kinds)
        ]
        if not outcomes:
            continue
        passed = sum(outcomes)
        low, high = wilson_interval(passed, len(outcomes), confidence)
        alone = [ok for kinds, ok in trials if list(kinds) == [kind]]
        rows.append(
            {
                "kind": kind,
                "trials": len(outcomes),
                "passed": passed,
                "rate": passed / len(outcomes),
                "interval": [low, high],
                # the trials with this kind and no other: what it does on its own
                "alone": len(alone) if kind != NO_FAULTS else len(outcomes),
                "alone_passed": sum(alone) if kind != NO_FAULTS else passed,
            }
        )
    return rows
