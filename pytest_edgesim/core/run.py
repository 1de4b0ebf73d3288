"""One run interface for every tier: :class:`ScenarioRun`, and :class:`TopologyRun`, which
implements it once over a built :class:`~pytest_edgesim.core.topology.Topology`.

A virtual-time run (:class:`~pytest_edgesim.core.simulation.Simulation`) and a wall-clock
run on real components (:class:`~pytest_edgesim.live.run.LiveRun`) differ only in how time
advances and what the result can promise (a trace digest, or none); the ``edge_scenario``
handle (:class:`~pytest_edgesim.core.edge_scenario.EdgeScenario`) drives either through this
interface.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pytest_edgesim.core.assertions import AssertionLog, Assertions
from pytest_edgesim.core.faults import (
    FAULT_ACTIONS,
    STOPPED,
    AppliedFault,
    FaultControls,
    LifeStates,
)
from pytest_edgesim.core.injection import Injections
from pytest_edgesim.core.metrics.timeline import RunProfile, TimelineRecorder, latency_histograms
from pytest_edgesim.core.result import RunResult
from pytest_edgesim.core.swarm import SwarmProfile, SwarmTopology, draw_profile, resolve_bounds
from pytest_edgesim.core.swarm import schedule_profile as _schedule_profile
from pytest_edgesim.core.units import (
    TICKS_PER_SECOND,
    parse_duration,
    parse_until,
    refuse_going_back,
)
from pytest_edgesim.errors import FaultUsageError, UsageError

if TYPE_CHECKING:
    from pytest_edgesim.core.engine import Coordinator
    from pytest_edgesim.core.metrics.recorder import MetricsRecorder
    from pytest_edgesim.core.models.cloud import CloudSink
    from pytest_edgesim.core.network import NetworkModel
    from pytest_edgesim.core.node import Node
    from pytest_edgesim.core.packet import Message
    from pytest_edgesim.core.rng import StreamFactory
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.core.scenario.schema import FaultSpec
    from pytest_edgesim.core.topology import Topology
    from pytest_edgesim.core.trace import TraceRecorder


_Run = TypeVar("_Run", bound="TopologyRun")


class ScenarioRun(Protocol):
    """What every run of a scenario offers, whatever runs it."""

    scenario: Scenario
    seed: int

    @property
    def now(self) -> int:
        """Virtual time, in ticks (microseconds)."""

    @property
    def network(self) -> NetworkModel:
        """The network: ``partition``, ``heal``, ``set_link`` act from now on."""

    @property
    def nodes(self) -> Mapping[str, Node]: ...

    @property
    def cloud(self) -> CloudSink:
        """The cloud sink: what reached the cloud, in arrival order (``arrivals``)."""

    def run(self, until: int | float | str | None = None) -> RunResult: ...

    def result(self) -> RunResult: ...

    def node(self, name: str) -> Node: ...

    def inject(
        self,
        topic: str,
        payload: Any,
        *,
        source: str | None = None,
        qos: int = 0,
        retain: bool = False,
        size_bytes: int = 64,
    ) -> Message: ...

    def close(self) -> None: ...

    def stop(self, node: str) -> AppliedFault: ...

    def start(self, node: str) -> AppliedFault: ...

    def restart(self, node: str) -> AppliedFault: ...

    def kill(self, node: str) -> AppliedFault: ...

    def pause(self, node: str) -> AppliedFault: ...

    def resume(self, node: str) -> AppliedFault: ...

    def disconnect(self, node: str, duration: int | float | str | None = None) -> AppliedFault: ...

    def reconnect(self, node: str) -> AppliedFault: ...

    def schedule_fault(
        self, at: int | float | str, action: str, node: str, **options: Any
    ) -> None: ...

    def schedule(self, fault: Any) -> Any: ...

    @property
    def faults(self) -> tuple[AppliedFault, ...]: ...

    @property
    def swarm_profile(self) -> SwarmProfile | None:
        """The faults this run's seed drew (a scenario with a ``swarm:`` section), or None."""

    @property
    def assertions(self) -> AssertionLog:
        """The run's ``always``/``sometimes``/``reachable``/``unreachable`` statements."""

    def always(self, condition: object, label: str) -> bool: ...

    def sometimes(self, condition: object, label: str) -> bool: ...

    def reachable(self, label: str) -> None: ...

    def unreachable(self, label: str) -> None: ...


class TopologyRun(FaultControls, Assertions):
    """A run over a built topology: pausable, steerable between runs, closed once.

    Subclasses say how time advances (:meth:`_advance`) and whether the result carries a
    trace digest (:attr:`bit_exact`).
    """

    #: whether runs repeat to the bit (the result then carries the trace digest)
    bit_exact = True
    #: "simulation" or "live run": how errors name this run
    noun = "run"
    #: which tier applies the run's faults (see :data:`~pytest_edgesim.core.fault_kinds.TIERS`)
    tier = "virtual_time"

    def __init__(self, topology: Topology):
        self.topology = topology
        self.scenario = topology.scenario
        self.seed = topology.seed
        self._injections = Injections()
        self._wall_time = 0.0
        self._closed = False
        self._life = LifeStates()
        self._faults: list[AppliedFault] = []
        self._scenario_faults_due = bool(self.scenario.spec.faults)
        self._started = False
        #: faults of the schedule (``where``, spec) not armed yet (``schedule`` adds to it)
        self._schedule: list[tuple[str, FaultSpec]] = []
        self._subscription_watchers: dict[str, list[Callable[[int], None]]] = {}
        self._subscriptions: dict[str, int] = {}
        self._timeline = TimelineRecorder(self.scenario.duration_ticks)
        self._timeline.watch(topology.network.cuts)
        topology.network.watch_cuts(lambda: self._timeline.cuts_changed(self.now))
        self._swarm_profile: SwarmProfile | None = None
        if self.scenario.spec.swarm is not None:
            self._scenario_faults_due = True

    # --- the parts ----------------------------------------------------------------------------
    @property
    def coordinator(self) -> Coordinator:
        return self.topology.coordinator

    @property
    def streams(self) -> StreamFactory:
        return self.topology.streams

    @property
    def metrics(self) -> MetricsRecorder:
        return self.topology.metrics

    @property
    def tracer(self) -> TraceRecorder:
        return self.topology.tracer

    @property
    def broker(self) -> Any:
        return self.topology.broker

    @property
    def cloud(self) -> CloudSink:
        return self.topology.cloud

    @property
    def network(self) -> NetworkModel:
        return self.topology.network

    @property
    def nodes(self) -> Mapping[str, Node]:
        return self.topology.nodes

    # --- running ------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Virtual time, in ticks (microseconds)."""
        return self.topology.coordinator.now

    def run(self, until: int | float | str | None = None) -> RunResult:
        """Run to virtual time ``until`` (seconds, or a string such as ``"500ms"``; None: the
        scenario's duration) and pause there.

        Events at times before ``until`` run; the clock then reads ``until`` and events due
        exactly then wait for the next call (as in SimPy), so a 10 s run of a sensor
        publishing every second from 0 s gives 10 readings, and whatever a test does while
        paused at ``until`` happens before them.
        """
        if self._closed:
            raise UsageError(f"this {self.noun} is closed")
        target = self.scenario.duration_ticks if until is None else parse_until(until)
        self.run_to_tick(target, shown=until)
        return self.result()

    def run_to_tick(self, target: int, shown: object = None) -> None:
        """Run to ``target`` ticks (``shown``: how the caller wrote it, for the error)."""
        refuse_going_back(self.now, target, shown)
        if self._scenario_faults_due:  # (scheduled once every node is there: at the first run)
            self._scenario_faults_due = False
            for index, fault in enumerate(self.scenario.spec.faults):
                if fault.action is None:  # a fault of the schedule (kind and trigger)
                    self._schedule.append((f"faults[{index}]", fault))
                    continue
                options = {} if fault.duration is None else {"duration": f"{fault.duration}us"}
                assert fault.at is not None and fault.target is not None
                self.schedule_fault(f"{fault.at}us", fault.action, fault.target, **options)
            profile = self.swarm_profile
            if profile is not None:
                _schedule_profile(self, profile)
        self._started = True
        if self._schedule:
            self._arm_schedule()
        started = time.perf_counter()
        try:
            # slice by slice, sampling the timeline between slices: the events run in the
            # same order as in one call (a user's coordinator.stop() ends the run early)
            timeline = self._timeline
            while timeline.next_sample() <= target:
                due = timeline.next_sample()
                if due > self.now:
                    self._advance(due)
                    if self.now != due:
                        return
                timeline.sample(self.metrics)
            if target > self.now:
                self._advance(target)
        finally:
            self._wall_time += time.perf_counter() - started

    def _advance(self, target: int) -> None:
        raise NotImplementedError

    # --- the fault schedule -----------------------------------------------------------------
    def schedule(self, fault: FaultSpec | Mapping[str, Any]) -> FaultSpec:
        """Add a fault to the schedule: a :class:`FaultSpec` or the mapping a ``faults:``
        entry is (``{"kind": "backhaul_outage", "target": "gw", "when": {"subscribed":
        "gw"}, "duration": "30min"}``). Before the first run it joins the scenario's own
        faults (an ``after:`` may name any of them); later it is armed at once. Either way
        this run's tier is asked first whether it can apply it."""
        from pytest_edgesim.core.scenario.schema import FaultSpec

        if self._closed:
            raise UsageError(f"this {self.noun} is closed")
        spec = fault if isinstance(fault, FaultSpec) else _fault_spec(fault)
        check_fault(spec)
        where = f"schedule({spec.describe()})"
        if spec.action is not None:
            raise FaultUsageError(
                f"{where}: give kind: {spec.action} (action: is the scenario file's first form)"
            )
        self._schedule.append((where, spec))
        if self._started:
            self._arm_schedule()
        return spec

    def _arm_schedule(self) -> None:
        from pytest_edgesim.core.fault_schedule import FaultSchedule

        pending, self._schedule = self._schedule, []
        schedule = FaultSchedule(self, pending)
        schedule.check()
        schedule.arm()

    def node_condition(self, node: str, condition: str, setting: Any) -> str:
        """Set ``condition`` of ``node`` now (a gateway's ``uplink``, a device's
        ``duty_cycle``...: see :meth:`Node.set_condition
        <pytest_edgesim.core.node.Node.set_condition>`); what it did, in a few words."""
        problem = self.condition_problem(node, condition)
        if problem:
            raise FaultUsageError(problem)
        return self.nodes[node].set_condition(condition, setting)

    def condition_problem(self, node: str, condition: str) -> str | None:
        """Why ``node`` cannot take ``condition`` in this run (``None``: it can)."""
        known = self.nodes.get(node)
        if known is None:
            return f"{node!r} is not a node of this {self.noun}"
        if condition not in known.supported_conditions:
            return (
                f"a {known.implementation} node ({node!r}) of this {self.noun} has no "
                f"{condition} to change"
            )
        return None

    def live_link_problem(self, fault: FaultSpec) -> str | None:
        """Why this run cannot change the links ``fault`` names (a live run's real links)."""
        return None

    def change_real_links(self, fault: FaultSpec, action: str) -> str:
        """Cut, heal, change or restore (``action``) the real links ``fault`` names: a live
        run's proxied gateway connections; a virtual-time run has none (its links are the
        network model's)."""
        return ""

    def watch_subscriptions(self, node: str, callback: Callable[[int], None]) -> None:
        """Call ``callback(count)`` each time ``node`` has subscribed at the broker (every
        one of its filters); a gateway connected when the run starts has done so once."""
        first = not self._subscription_watchers
        self._subscription_watchers.setdefault(node, []).append(callback)
        if first:
            self._watch_broker_subscriptions()
        if node not in self._subscriptions:
            self._subscriptions[node] = int(self._connected_at_start(node))
        if self._subscriptions[node]:
            callback(self._subscriptions[node])

    def _connected_at_start(self, node: str) -> bool:
        gateways = {gateway.name for gateway in self.scenario.spec.gateways}
        return (
            node in gateways
            and self._life.state(node) == "running"
            and not self._life.disconnected(node)
        )

    def _watch_broker_subscriptions(self) -> None:
        """Have the broker model report each subscription (a live run: its own way)."""
        broker = self.broker
        if hasattr(broker, "subscription_watcher"):
            broker.subscription_watcher = self._filter_subscribed

    def _filter_subscribed(self, subscriber: str, topic_filter: str) -> None:
        for gateway in self.scenario.spec.gateways:
            if gateway.name == subscriber and gateway.subscribe[-1].filter != topic_filter:
                return  # (a gateway has subscribed once its last filter is)
        self._subscribed(subscriber)

    def _subscribed(self, node: str) -> None:
        count = self._subscriptions[node] = self._subscriptions.get(node, 0) + 1
        for watcher in tuple(self._subscription_watchers.get(node, ())):
            watcher(count)

    def result(self) -> RunResult:
        """The result so far (metrics over virtual time 0..now)."""
        now = self.now
        tracer = self.tracer
        return RunResult(
            scenario=self.scenario.name,
            seed=self.seed,
            virtual_time_ticks=now,
            metrics=self.metrics.snapshot(now),
            trace_digest=tracer.digest if self.bit_exact else None,
            events=self.coordinator.events_processed,
            nodes=self._describe_nodes(),
            arrivals=tuple(self.cloud.arrivals),
            trace=tracer.kept() if tracer.keep else None,
            wall_time_s=self._wall_time,
            deliveries=self.metrics.delivery.snapshot(),
            faults=tuple(self._faults),
            profile=RunProfile(
                self._timeline.timeline(self.metrics, now), latency_histograms(self.metrics)
            ),
            swarm_profile=self.swarm_profile,
            assertions=self.topology.assertions.records(),
        )

    def _describe_nodes(self) -> dict[str, dict[str, Any]]:
        done: dict[str, list[str]] = {}
        for fault in self._faults:  # (once: a schedule of a thousand faults, a thousand nodes)
            done.setdefault(fault.target, []).append(fault.action)
        return {name: self._describe(name, node, done) for name, node in self.nodes.items()}

    def _describe(self, name: str, node: Node, faults: Mapping[str, list[str]]) -> dict[str, Any]:
        description = dict(node.describe())
        done = faults.get(name, ())
        if done:  # a node that underwent a fault says so (never one that did not)
            description["state"] = self._life.state(name)
            description["restarts"] = sum(action in ("start", "restart") for action in done)
            description["faults"] = len(done)
            if self._life.disconnected(name):
                description["disconnected"] = True
        return description

    # --- acting on a paused run -----------------------------------------------------------------
    def node(self, name: str) -> Node:
        return self.topology.node(name)

    def inject(
        self,
        topic: str,
        payload: Any,
        *,
        source: str | None = None,
        qos: int = 0,
        retain: bool = False,
        size_bytes: int = 64,
    ) -> Message:
        """Publish a message now: from node ``source`` over its link, or straight to the broker."""
        node = self.node(source) if source is not None else None
        if source is not None and self._life.state(source) == STOPPED:
            raise FaultUsageError(f"cannot inject from {source!r}: it is stopped (start it first)")
        now = self.now
        message = self._injections.message(
            self.metrics,
            topic,
            payload,
            source=node,
            now=now,
            qos=qos,
            retain=retain,
            size_bytes=size_bytes,
        )
        broker = self.broker
        if node is None and self._life.state(broker.name) != "running":
            raise FaultUsageError(
                f"cannot inject straight into the broker: it is {self._life.state(broker.name)} "
                "(inject from a node, source=..., to have the message take its link and session)"
            )
        if self.tracer.enabled:
            self.tracer.record(
                now, "inject", message.origin, broker.name, topic, message.message_id, repr(payload)
            )
        if node is None:
            broker.route(message)
        else:
            Injections.send_from(node, broker.name, message)
        return message

    # --- assertions over the run and swarm testing ------------------------------------------------
    @property
    def assertions(self) -> AssertionLog:
        return self.topology.assertions

    def _assertion_log(self) -> tuple[AssertionLog, int]:
        return self.topology.assertions, self.now

    @property
    def swarm_profile(self) -> SwarmProfile | None:
        """The faults this run's seed drew (a scenario with a ``swarm:`` section), or None:
        drawn from the seed and the scenario alone (see :mod:`~pytest_edgesim.core.swarm`),
        once every node is there (a live run's gateways start after the run is built)."""
        swarm = self.scenario.spec.swarm
        if self._swarm_profile is None and swarm is not None:
            bounds = resolve_bounds(swarm, self.scenario.duration_ticks)
            self._swarm_profile = draw_profile(self.seed, SwarmTopology.of(self), bounds)
        return self._swarm_profile

    # --- faults: restarts, crashes and disconnects --------------------------------------------
    @property
    def faults(self) -> tuple[AppliedFault, ...]:
        """The faults done so far, in order."""
        return tuple(self._faults)

    def fault(self, action: str, node: str, *, duration: Any = None) -> AppliedFault:
        """Do fault ``action`` to ``node`` now (one of
        :data:`~pytest_edgesim.core.faults.FAULT_ACTIONS`)."""
        if self._closed:
            raise UsageError(f"this {self.noun} is closed")
        if action not in FAULT_ACTIONS:
            raise FaultUsageError(f"unknown fault {action!r} (known: {', '.join(FAULT_ACTIONS)})")
        if duration is not None and action != "disconnect":
            raise FaultUsageError(f"{action} takes no duration (only disconnect does)")
        self._check_target(action, node)
        self._life.check(action, node)
        reconnect_at = None
        if duration is not None:
            reconnect_at = self.now + _duration_ticks(duration)
        if action == "restart":
            details = [self._apply_fault(node, "stop"), self._apply_fault(node, "start")]
            detail = "; ".join(part for part in details if part)
        else:
            detail = self._apply_fault(node, action)
        number = self._life.enter(action, node)  # (a cut connection stays cut across a restart)
        if reconnect_at is not None:
            self.coordinator.schedule_at(reconnect_at, self._timed_reconnect, (node, number))
            detail = f"{detail}; reconnects at t={reconnect_at / TICKS_PER_SECOND:g}s".lstrip("; ")
        applied = self._applied(action, node, detail)
        ready_again = action in ("start", "restart", "reconnect")  # (a real gateway is ready)
        if ready_again and not self.bit_exact and node in self._subscription_watchers:
            self._subscribed(node)
        return applied

    def schedule_fault(self, at: int | float | str, action: str, node: str, **options: Any) -> None:
        """Do fault ``action`` to ``node`` at virtual time ``at`` (absolute: seconds or
        ``"30s"``), while the run runs. The node and action are checked now; the transition
        (starting a running node) when it falls due."""
        at_ticks = parse_until(at)
        if at_ticks < self.now:
            raise FaultUsageError(
                f"cannot schedule {action} {node!r} at {at!r}: virtual time is already "
                f"{self.now / TICKS_PER_SECOND:g}s"
            )
        if action not in FAULT_ACTIONS:
            raise FaultUsageError(f"unknown fault {action!r} (known: {', '.join(FAULT_ACTIONS)})")
        self._check_target(action, node)
        self.coordinator.schedule_at(at_ticks, self._scheduled_fault, (action, node, options))

    def _scheduled_fault(self, item: tuple[str, str, dict[str, Any]]) -> None:
        action, node, options = item
        self.fault(action, node, **options)

    def _timed_reconnect(self, item: tuple[str, int]) -> None:
        node, number = item
        if self._life.disconnection(node) == number:  # not reconnected (or cut again) since
            self.fault("reconnect", node)

    def _check_target(self, action: str, node: str) -> None:
        """Raise :class:`FaultError` for an unknown node or one that cannot undergo ``action``."""
        known = self.nodes.get(node)
        if known is None:
            names = ", ".join(sorted(self.nodes))
            raise FaultUsageError(f"cannot {action} {node!r}: no such node (nodes: {names})")
        needed = ("stop", "start") if action == "restart" else (action,)
        supported = self._supported_faults(node)
        if not all(step in supported for step in needed):
            can = ", ".join(supported) or "no faults"
            raise FaultUsageError(
                f"cannot {action} {node!r}: a {known.implementation} node of this {self.noun} "
                f"supports {can}{self._fault_hint(node)}"
            )

    def _supported_faults(self, node: str) -> tuple[str, ...]:
        """The faults ``node`` can undergo in this run (live runs ask their real components)."""
        return self.nodes[node].supported_faults

    def _fault_hint(self, node: str) -> str:
        """What to do instead, when ``node`` supports no faults in this run (or ``""``)."""
        return ""

    def _apply_fault(self, node: str, action: str) -> str:
        """Make ``node`` undergo ``action`` (a model: its own hook; live runs override)."""
        detail = self.nodes[node].apply_fault(action)
        if action == "start" and node == self.broker.name:
            for other in self.nodes.values():
                if other.name != node and self._life.state(other.name) != STOPPED:
                    other.broker_restarted()
        return detail

    def _applied(self, action: str, node: str, detail: str) -> AppliedFault:
        applied = AppliedFault(self.now, action, node, detail)
        self._faults.append(applied)
        if self.tracer.enabled:
            self.tracer.record(self.now, "fault", node, "", "", action, detail)
        return applied

    def close(self) -> None:
        """Close every node (and whatever the run holds); a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        for node in self.nodes.values():
            node.close()

    def __enter__(self: _Run) -> _Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fault_spec(data: Mapping[str, Any]) -> FaultSpec:
    """A ``faults:`` entry given in code, checked as the scenario file's are."""
    from pydantic import ValidationError

    from pytest_edgesim.core.scenario.problems import format_validation_error
    from pytest_edgesim.core.scenario.schema import FaultSpec

    try:
        spec = FaultSpec.model_validate(dict(data))
    except ValidationError as error:
        lines = format_validation_error(error, FaultSpec, dict(data), "schedule", None)
        raise FaultUsageError(
            "; ".join(line.removeprefix("schedule: ") for line in lines)
        ) from None
    check_fault(spec)
    return spec


def check_fault(spec: FaultSpec) -> None:
    """Raise :class:`FaultError` when ``spec`` does not fit its kind (given in code)."""
    from pytest_edgesim.core.fault_kinds import fault_problems

    wrong = fault_problems(spec)
    if wrong:
        raise FaultUsageError("; ".join(f"{field}: {message}" for field, message in wrong))


def _duration_ticks(duration: int | float | str) -> int:
    """A fault's duration (seconds, or ``"5s"``) in ticks; it must be positive."""
    try:
        ticks = parse_duration(duration)
    except ValueError as error:
        raise FaultUsageError(f"disconnect duration: {error}") from None
    if ticks <= 0:
        raise FaultUsageError(f"a disconnection lasts a positive time, not {duration!r}")
    return ticks
