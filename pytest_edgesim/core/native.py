"""The native engine: the same run as :class:`~pytest_edgesim.core.simulation.Simulation`, in Rust.

The pure-Python engine is the reference. The native one (the extension module
``pytest_edgesim.core._native``, built from ``native/`` when a Rust toolchain is present)
runs the built-in models (sensors and their value models, links, partitions, the broker
model, the project's gateway, the cloud) and the scenario's fault schedule
(:mod:`~pytest_edgesim.core.native_faults`) event for event as the pure engine does, hosts
every other gateway as the Python node it is (calling it back, see :mod:`.native_nodes`),
and gives the same trace digest, metrics, deliveries and result. :func:`choose_engine` decides
which engine runs a scenario: the native one when it is built and covers everything the
scenario uses, the pure one otherwise (its ``reason`` says why), unless ``EDGESIM_ENGINE``
forces one (see docs/engine.md).

Python builds the run's plan from the validated scenario (names, link rules, settings) and
reads the raw counters back at the end, into the same ``Metrics`` and ``Deliveries``
values the pure engine makes from its own counters: the summaries are computed by the same
code on both engines.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_edgesim.core.gateway_kinds import gateway_kind
from pytest_edgesim.core.metrics.delivery import (
    Deliveries,
    Delivery,
    DeliveryLedger,
    Received,
    SeqSet,
)
from pytest_edgesim.core.metrics.recorder import FlowCounter, FlowStats, Metrics, MetricsRecorder
from pytest_edgesim.core.metrics.summaries import DropCounts, LatencySummary
from pytest_edgesim.core.models.cloud import Arrival
from pytest_edgesim.core.models.values import read_replay_column
from pytest_edgesim.core.native_nodes import NativeNodes
from pytest_edgesim.core.network import LinkProfile, apply_settings, resolve_nodes
from pytest_edgesim.core.result import RunResult
from pytest_edgesim.core.scenario.schema import check_seed
from pytest_edgesim.core.units import TICKS_PER_SECOND, parse_until, refuse_going_back
from pytest_edgesim.errors import SimulationError, UsageError

if TYPE_CHECKING:
    from pytest_edgesim.core.faults import AppliedFault
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.core.scenario.schema import Delay, LinkRule

try:
    from pytest_edgesim.core import _native  # type: ignore[attr-defined]
except ImportError:  # not built (no Rust toolchain at install): the pure engine runs
    _native = None

#: ``pure``, ``native`` or ``auto`` (the default): which engine runs virtual-time scenarios
ENGINE_ENV = "EDGESIM_ENGINE"
ENGINES = ("auto", "pure", "native")
#: the link rules a native run resolves (one bit each)
MAX_LINK_RULES = 64

_JITTER = {"none": 0, "uniform": 1, "normal": 2}
_LOSS = {"none": 0, "bernoulli": 1, "gilbert_elliott": 2}
_FUNCTIONS = {"mean": 0, "min": 1, "max": 2, "count": 3, "sum": 4, "last": 5}
_GROUP_BY = {"none": 0, "topic": 1, "device": 2}
_DELAYS = {"constant": 0, "uniform": 1, "exponential": 2, "normal": 3}


def native_available() -> bool:
    """Whether the native extension is built and importable."""
    return _native is not None


def requested_engine() -> str:
    """``EDGESIM_ENGINE`` (``auto`` when unset); anything else is a :class:`SimulationError`."""
    value = os.environ.get(ENGINE_ENV, "").strip().lower() or "auto"
    if value not in ENGINES:
        raise SimulationError(
            f"{ENGINE_ENV}={os.environ[ENGINE_ENV]!r}: expected one of {', '.join(ENGINES)}"
        )
    return value


def engine_summary() -> str:
    """Which engine virtual-time runs use here, in a few words (for ``--version`` and the
    pytest header)."""
    try:
        requested = requested_engine()
    except SimulationError as error:
        return f"unknown ({error})"
    if requested == "pure":
        return f"pure ({ENGINE_ENV}=pure)"
    if _native is None:
        return "pure (the native engine is not built)"
    forced = f", {ENGINE_ENV}=native" if requested == "native" else ""
    return f"native {_native.ENGINE_VERSION}{forced} (pure for what it does not cover)"


@dataclass(frozen=True)
class EngineChoice:
    """The engine that runs a scenario and why (``reason`` is empty for the native one)."""

    engine: str
    reason: str = ""

    @property
    def native(self) -> bool:
        return self.engine == "native"


def unsupported(scenario: Scenario, trace: str = "digest") -> str | None:
    """Why the native engine cannot run ``scenario`` (None when it can)."""
    spec = scenario.spec
    if trace not in ("digest", "off"):
        return f"trace={trace!r} keeps every event (the native engine keeps a digest only)"
    if spec.swarm is not None:
        return "the scenario draws a swarm of faults"
    if spec.broker.max_inflight_messages:
        return "broker.max_inflight_messages models per-client sessions"
    if spec.network.model == "latency" and len(spec.network.links) > MAX_LINK_RULES:
        return f"more than {MAX_LINK_RULES} link rules"
    hosted = python_nodes(scenario)
    for gateway in spec.gateways:
        kind = gateway_kind(gateway.kind)
        if gateway.session is not None:
            return f"gateway {gateway.name!r} models its MQTT session"
        if gateway.name in hosted and kind.virtual_time is None:
            return (
                f"gateway {gateway.name!r} is a {kind.name} gateway, which runs on the wall clock"
            )
    if spec.faults:  # (imported here: a run without faults never loads the fault kinds)
        if hosted:
            return (
                f"the scenario schedules faults and gateway {sorted(hosted)[0]!r} runs as a "
                "Python node (native: faults with modelled gateways only)"
            )
        from pytest_edgesim.core.native_faults import unsupported_faults

        return unsupported_faults(scenario)
    return None


def python_nodes(scenario: Scenario) -> frozenset[str]:
    """The gateways of ``scenario`` that run as Python nodes on the native engine, called
    back (see :mod:`.native_nodes`): all but the project's gateways it models, which forward
    to the cloud and read no Python node's forward (whose payload only the pure gateway
    reads), sent to them or through the broker. (A node of a registered kind may publish
    anywhere: a modelled gateway that was to aggregate its payload stops the run, saying so.)"""
    spec = scenario.spec
    hosted: set[str] = set()
    for gateway in spec.gateways:
        kind = gateway_kind(gateway.kind)
        native = kind.native is not None and kind.native()
        if not native or gateway.forward.to != spec.cloud.name:
            hosted.add(gateway.name)
    grown = True
    while grown:  # what a Python node's forwards reach is one too
        grown = False
        for gateway in spec.gateways:
            if gateway.name in hosted:
                continue
            for sender in spec.gateways:
                if sender.name in hosted and _reaches(sender, gateway, spec.broker.name):
                    hosted.add(gateway.name)
                    grown = True
                    break
    return frozenset(hosted)


def _reaches(sender: Any, gateway: Any, broker: str) -> bool:
    """Whether ``sender``'s forwards may reach ``gateway`` and be read there: sent to it, or
    through the broker to a gateway that aggregates (a logic chooses its topics)."""
    target = sender.forward.to
    return target == gateway.name or (target == broker and gateway.aggregate is not None)


def choose_engine(scenario: Scenario, trace: str = "digest") -> EngineChoice:
    """The engine for ``scenario`` under ``EDGESIM_ENGINE`` (see the module)."""
    requested = requested_engine()
    if requested == "pure":
        return EngineChoice("pure", f"{ENGINE_ENV}=pure")
    reason = "the native engine is not built" if _native is None else unsupported(scenario, trace)
    if reason is None:
        return EngineChoice("native")
    if requested == "native":
        raise SimulationError(
            f"{ENGINE_ENV}=native, but the native engine cannot run this: {reason}"
        )
    return EngineChoice("pure", reason)


# --- the plan ---------------------------------------------------------------------------------
def _delay(spec: Delay) -> tuple[int, int, int]:
    kind = _DELAYS[spec.distribution]
    if spec.distribution == "constant":
        return kind, spec.value, 0
    if spec.distribution == "uniform":
        return kind, spec.low, spec.high
    if spec.distribution == "exponential":
        return kind, spec.mean, 0
    return kind, spec.mean, spec.stddev


def _profile_fields(profile: LinkProfile) -> tuple[Any, ...]:
    return (
        profile.latency,
        _JITTER[profile.jitter],
        profile.jitter_ticks,
        _LOSS[profile.loss],
        float(profile.loss_rate),
        float(profile.p_good_to_bad),
        float(profile.p_bad_to_good),
        float(profile.loss_good),
        float(profile.loss_bad),
        profile.bandwidth_bps,
        profile.reorder,
    )


class _Profiles:
    """A link's profile from the indices of the rules that match it (as
    ``LatencyNetworkModel.profile_for`` applies them)."""

    def __init__(self, default: LinkProfile, rules: Sequence[LinkRule]):
        self.default = default
        self.rules = rules

    def __call__(self, indices: list[int]) -> tuple[Any, ...]:
        profile = self.default
        for index in indices:
            profile = apply_settings(profile, self.rules[index])
        return _profile_fields(profile)


def _value_plan(device: Any, base_dir: Any) -> tuple[Any, ...]:
    value = device.value
    if value.model == "constant":
        return (0, value.value, 0.0, 0.0, 0.0, None, None, 0, [], False, "%.12g" % value.value)
    if value.model == "random_walk":
        return (1, value.start, value.step, 0.0, 0.0, value.min, value.max, 0, [], False, "")
    if value.model == "sine":
        omega = 2.0 * math.pi / (value.period / TICKS_PER_SECOND)
        sine = (value.mean, value.amplitude, omega, value.noise)
        return (2, *sine, None, None, value.phase, [], False, "")
    values = read_replay_column(value, base_dir)
    return (3, 0.0, 0.0, 0.0, 0.0, None, None, 0, values, value.loop, "")


def _sensor_plan(device: Any) -> tuple[Any, ...]:
    publish = device.publish
    if publish.mode == "periodic":
        offset = None if publish.offset == "random" else publish.offset
        return (device.qos, device.retain, device.payload_bytes, True, publish.period,
                publish.jitter, offset, publish.start, publish.stop, 0.0)  # fmt: skip
    return (device.qos, device.retain, device.payload_bytes, False, 0, 0, None, publish.start,
            publish.stop, float(publish.rate))  # fmt: skip


def _build(
    scenario: Scenario, seed: int, trace: bool, record_limit: int
) -> tuple[Any, NativeNodes | None]:
    """The native run of ``scenario`` (nodes in the pure engine's order: broker, cloud,
    devices, gateways), and its Python nodes (None: it has none)."""
    spec = scenario.spec
    devices = scenario.devices
    names = [spec.broker.name, spec.cloud.name, *(d.name for d in devices)]
    names += [g.name for g in spec.gateways]
    index = {name: position for position, name in enumerate(names)}
    network = spec.network
    direct = network.model == "direct"
    rule_from = [0] * len(names)
    rule_to = [0] * len(names)
    rules = [] if direct else list(network.links)
    # (the names by position: a name that is not a glob is looked up, not matched with all)
    for bit, rule in enumerate(rules):
        for name in resolve_nodes(rule.from_, index):
            rule_from[index[name]] |= 1 << bit
        for name in resolve_nodes(rule.to, index):
            rule_to[index[name]] |= 1 << bit
    default = apply_settings(LinkProfile(), network.default) if network.default else LinkProfile()
    cuts = [
        (
            sorted(index[n] for n in resolve_nodes(partition.between[0], index)),
            sorted(index[n] for n in resolve_nodes(partition.between[1], index)),
            partition.start,
            partition.end,
        )
        for partition in network.partitions
    ]
    sensor_specs: list[tuple[Any, ...]] = []
    value_specs: list[tuple[Any, ...]] = []
    spec_index: dict[int, int] = {}
    value_index: dict[int, int] = {}
    sensors = []
    for position, device in enumerate(devices, start=2):
        key = id(device.spec)
        if key not in spec_index:
            spec_index[key] = len(sensor_specs)
            sensor_specs.append(_sensor_plan(device.spec))
            value_index[key] = len(value_specs)
            value_specs.append(_value_plan(device.spec, scenario.base_dir))
        sensors.append((position, device.topic, spec_index[key], value_index[key]))
    hosted = python_nodes(scenario)
    gateways: list[tuple[Any, ...] | None] = []
    for gateway in spec.gateways:
        if gateway.name in hosted:
            gateways.append(None)
            continue
        aggregate = gateway.aggregate
        gateways.append(
            (
                index[gateway.name],
                [(s.filter, s.qos) for s in gateway.subscribe],
                index[gateway.forward.to],
                gateway.forward_topic,
                gateway.forward.qos,
                gateway.forward.payload_bytes,
                gateway.queue.capacity,
                gateway.queue.drop == "newest",
                _delay(gateway.processing_delay),
                None
                if aggregate is None
                else (
                    aggregate.count,
                    aggregate.window,
                    [_FUNCTIONS[f] for f in aggregate.functions],
                    _GROUP_BY[aggregate.group_by],
                ),
            )
        )
    run = _native.NativeRun(
        str(int(seed)),
        names,
        0,
        1,
        trace,
        record_limit,
        spec.broker.retry_interval,
        _delay(spec.broker.processing_delay),
        direct,
        rule_from,
        rule_to,
        [rule.bidirectional for rule in rules],
        _Profiles(default, rules),
        cuts,
        sensor_specs,
        value_specs,
        sensors,
        [] if hosted else gateways,
    )
    if spec.faults:  # (armed where the pure run arms them: after every node's first event)
        from pytest_edgesim.core.native_faults import fault_plan

        assert not hosted  # (unsupported() said so)
        run.arm_faults(*fault_plan(scenario, names))
    if not hosted:
        return run, None
    # Some gateways are Python nodes: made first, then every gateway bound in order (each
    # binding may queue events, numbered in that order)
    nodes = NativeNodes(run, scenario, seed, names, trace)
    for gateway in spec.gateways:
        if gateway.name in hosted:
            factory = gateway_kind(gateway.kind).virtual_time
            assert factory is not None  # (unsupported() said so)
            nodes.make(gateway, factory)
    nodes.ledger.made.append((spec.cloud.name, None, False))
    for gateway, plan in zip(spec.gateways, gateways):
        if plan is None:
            nodes.bind(gateway.name)
        else:
            nodes.ledger.made.append(
                (gateway.name, tuple(s.filter for s in gateway.subscribe), True)
            )
            run.add_gateway(plan)
    return run, nodes


# --- reading the run back -------------------------------------------------------------------------
_new = object.__new__
_set = object.__setattr__
_NO_LATENCY = LatencySummary(0)


def _latency_summary(
    count: int, low: float, mean: float, p50: float, p95: float, p99: float, high: float
) -> LatencySummary:
    """``LatencySummary(count, min=low, ...)`` without checking the keys (they are these)."""
    summary = _new(LatencySummary)
    _set(summary, "count", count)
    _set(summary, "min", low)
    _set(summary, "mean", mean)
    _set(summary, "p50", p50)
    _set(summary, "p95", p95)
    _set(summary, "p99", p99)
    _set(summary, "max", high)
    return summary


class _Freezer:
    """``FlowCounter.freeze`` of a counter the native engine summed up (its latency summary
    computed there, as ``LatencySketch.summary_ms`` computes it); equal drop counts shared."""

    def __init__(self, duration_s: float):
        self.duration_s = duration_s
        self.drops: dict[tuple[int, ...], DropCounts] = {}

    def __call__(self, raw: tuple[Any, ...], share: bool = True) -> FlowStats:
        sent, delivered, dropped, redelivered, size, summary = raw
        counts = self.drops.get(dropped) if share else None
        if counts is None:
            counts = DropCounts(*dropped)
            if share:
                self.drops[dropped] = counts
        duration_s = self.duration_s
        return FlowStats(
            sent,
            delivered,
            counts,
            redelivered,
            size,
            _NO_LATENCY if summary is None else _latency_summary(*summary),
            round(delivered / duration_s, 6) if duration_s > 0 else 0.0,
        )


def _with_hosted(
    metrics: MetricsRecorder,
    names: Sequence[str],
    node_counters: list[tuple[Any, ...]],
    topic_counters: list[tuple[str, tuple[Any, ...]]],
    totals: tuple[Any, ...],
) -> tuple[list[tuple[Any, ...]], list[tuple[str, tuple[Any, ...]]], tuple[Any, ...]]:
    """The native counters with what the Python nodes counted in their own (their drops,
    their forwards), as if both had counted in one recorder."""
    position = {name: index for index, name in enumerate(names)}
    node_counters = list(node_counters)
    for name, counter in metrics.nodes.items():
        node_counters[position[name]] = _added(node_counters[position[name]], counter)
    topics = dict(topic_counters)
    for topic, counter in metrics.topics.items():
        topics[topic] = _added(topics.get(topic, _EMPTY), counter)
        totals = _added(totals, counter)
    return node_counters, list(topics.items()), totals


_EMPTY: tuple[Any, ...] = (0, 0, (0, 0, 0, 0, 0), 0, 0, None)


def _added(raw: tuple[Any, ...], counter: FlowCounter) -> tuple[Any, ...]:
    sent, delivered, dropped, redelivered, size, summary = raw
    if counter.latency.count:
        raise SimulationError(
            "a Python node on the native engine recorded latencies itself (only the network "
            "does there); EDGESIM_ENGINE=pure runs it on the pure engine"
        )
    dropped = (
        dropped[0] + counter.dropped_loss,
        dropped[1] + counter.dropped_partition,
        dropped[2] + counter.dropped_overflow,
        dropped[3] + counter.dropped_rejected,
        dropped[4] + counter.dropped_node_down,
        *dropped[5:],
    )
    if counter.dropped_session is not None:
        extra = list(dropped[5:]) or [0] * len(counter.dropped_session)
        dropped = (*dropped[:5], *(a + b for a, b in zip(extra, counter.dropped_session)))
    return (
        sent + counter.sent,
        delivered + counter.delivered,
        dropped,
        redelivered + counter.redelivered,
        size + counter.bytes,
        summary,
    )


def _seqs(runs: list[tuple[int, int]]) -> SeqSet:
    seqs = SeqSet()
    seqs.starts = [first for first, _ in runs]
    seqs.ends = [last for _, last in runs]
    return seqs


def _metrics(run: Any, names: list[str], duration_s: float) -> Metrics:
    """The run's metrics; equal flows share one (immutable) ``FlowStats``."""
    order, nodes, link_keys, links, topic_keys, topics, distinct, totals = run.metrics()
    freeze = _Freezer(duration_s)
    stats = [freeze(raw) for raw in distinct]
    pick = stats.__getitem__
    return Metrics(
        duration_s=duration_s,
        nodes=dict(zip(map(names.__getitem__, order), map(pick, nodes))),
        links=dict(zip(link_keys, map(pick, links))),
        topics=dict(zip(topic_keys, map(pick, topics))),
        totals=freeze(totals, share=False),
    )


def _deliveries(run: Any, names: list[str]) -> Deliveries:
    """``DeliveryLedger.snapshot()`` of the run's ledger, summed up natively; equal flows
    share one ``Delivery`` (a value)."""
    distinct, tables, sources, reached = run.deliveries()
    flows = [
        Delivery(sent, delivered, lost, duplicated, reordered, dict(causes))
        for sent, delivered, lost, duplicated, reordered, causes in distinct
    ]
    pick = flows.__getitem__
    gateways: dict[tuple[int, ...], tuple[str, ...]] = {}
    for nodes in reached:
        key = tuple(nodes)
        if key not in gateways:
            gateways[key] = tuple(names[node] for node in nodes)
    return Deliveries(
        flows={
            names[node]: dict(zip(map(names.__getitem__, origins), map(pick, positions)))
            for node, origins, positions in tables
        },
        reached=dict(
            zip(map(names.__getitem__, sources), (gateways[tuple(nodes)] for nodes in reached))
        ),
        without_lineage={},
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while a result is built: it makes a few objects per node, link
    and topic (hundreds of thousands for a big fleet), none in a cycle, and each collection
    the allocations set off would walk all of them again."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


class NativeSimulation:
    """A scenario run on the native engine: ``run``, ``run_to_tick``, ``run_in_steps`` and
    ``result`` as :class:`~pytest_edgesim.core.simulation.Simulation` has them.

    It is not steerable: a test that partitions, injects or faults nodes between runs
    holds a ``Simulation`` (the ``edge_scenario`` fixture does).
    """

    noun = "simulation"
    engine = "native"

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        *,
        trace: str = "digest",
        record_limit: int = 100_000,
    ):
        if _native is None:
            raise SimulationError("the native engine is not built (see docs/engine.md)")
        reason = unsupported(scenario, trace)
        if reason is not None:
            raise SimulationError(f"the native engine cannot run this: {reason}")
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else check_seed(seed)
        self._trace = trace != "off"
        self._wall_time = 0.0
        self._closed = False
        started = time.perf_counter()
        self._run, self._nodes = _build(scenario, self.seed, self._trace, max(0, record_limit))
        self._wall_time += time.perf_counter() - started

    @property
    def now(self) -> int:
        """Virtual time, in ticks (microseconds)."""
        return int(self._run.now)

    def run(self, until: int | float | str | None = None) -> RunResult:
        """Run to virtual time ``until`` (None: the scenario's duration) and pause there."""
        if self._closed:
            raise UsageError(f"this {self.noun} is closed")
        target = self.scenario.duration_ticks if until is None else parse_until(until)
        self.run_to_tick(target, shown=until)
        return self.result()

    def run_to_tick(self, target: int, shown: object = None) -> None:
        refuse_going_back(self.now, target, shown)
        started = time.perf_counter()
        try:
            self._run.run(target)
        finally:
            self._wall_time += time.perf_counter() - started
        if self._nodes is None:
            return
        self._nodes.coordinator.sync()
        if self._run.object_aggregated:
            raise SimulationError(
                "a gateway modelled by the native engine was to aggregate a payload a Python "
                "node made (only the pure gateway reads any payload but a float); run this "
                "scenario with EDGESIM_ENGINE=pure"
            )

    def run_in_steps(self, target_ticks: int | None = None, steps: int = 100) -> Iterator[int]:
        target = self.scenario.duration_ticks if target_ticks is None else target_ticks
        start = self.now
        for step in range(1, steps + 1):
            self.run_to_tick(start + (target - start) * step // steps)
            yield self.now

    def result(self) -> RunResult:
        """The result so far, as the pure engine makes it."""
        with _collector_paused():
            return self._result()

    def _result(self) -> RunResult:
        run = self._run
        now = self.now
        spec = self.scenario.spec
        devices = self.scenario.devices
        names = [spec.broker.name, spec.cloud.name, *(d.name for d in devices)]
        names += [g.name for g in spec.gateways]
        hosted = self._nodes
        if hosted is None:
            metrics = _metrics(run, names, now / TICKS_PER_SECOND)
        else:  # what the Python nodes counted themselves, added to the native counters
            metrics = self._metrics_with_hosted(names, hosted.metrics, now)
        sensors, broker, cloud_received, gateways = run.nodes()
        nodes: dict[str, dict[str, Any]] = {
            spec.broker.name: {
                "name": spec.broker.name,
                "implementation": "python_model",
                "routed": broker[0],
                "retained": broker[1],
                "inflight": broker[2],
            },
            spec.cloud.name: {
                "name": spec.cloud.name,
                "implementation": "python_model",
                "received": cloud_received,
            },
        }
        nodes.update(
            (
                device.name,
                {
                    "name": device.name,
                    "implementation": "python_model",
                    "topic": device.topic,
                    "published": published,
                    "inflight": inflight,
                },
            )
            for device, (published, inflight) in zip(devices, sensors)
        )
        modelled = [
            gateway for gateway in spec.gateways if gateway.name not in python_nodes(self.scenario)
        ]
        for gateway, numbers in zip(modelled, gateways):
            received, forwarded, overflow, rejected, _inflight, logic = numbers
            nodes[gateway.name] = {
                "name": gateway.name,
                "implementation": "python_model",
                "received": received,
                "processed": logic[1],
                "forwarded": forwarded,
                "queued": logic[2],
                "dropped_overflow": overflow,
                "dropped_rejected": rejected,
                "pending_in_aggregate": logic[5],
            }
        if hosted is not None:
            for gateway in spec.gateways:
                node = hosted.nodes.get(gateway.name)
                if node is not None:
                    nodes[gateway.name] = dict(node.describe())
            nodes = {name: nodes[name] for name in names}  # (the pure engine's order)
        applied = run.faults()
        faults: tuple[AppliedFault, ...] = ()
        if applied is not None:
            from pytest_edgesim.core.native_faults import read_back

            faults = read_back(applied, self.scenario, nodes)
        return RunResult(
            scenario=self.scenario.name,
            seed=self.seed,
            virtual_time_ticks=now,
            metrics=metrics,
            trace_digest=run.digest(),
            events=run.events,
            nodes=nodes,
            arrivals=tuple(map(Arrival._make, run.arrivals())),
            trace=None,
            wall_time_s=self._wall_time,
            deliveries=(
                _deliveries(run, names)
                if hosted is None
                else self._ledger(names, devices, sensors).snapshot()
            ),
            faults=faults,
            assertions=() if hosted is None else hosted.assertions.records(),
        )

    def _metrics_with_hosted(self, names: list[str], counted: MetricsRecorder, now: int) -> Metrics:
        """The metrics of a run with Python nodes: the native counters, with what the Python
        nodes counted in their own (their drops, their forwards) added."""
        order, nodes, link_keys, links, topic_keys, topics, distinct, totals = self._run.metrics()
        node_counters: list[tuple[Any, ...]] = [()] * len(names)
        for node, position in zip(order, nodes):
            node_counters[node] = distinct[position]
        topic_counters = [
            (topic, distinct[position]) for topic, position in zip(topic_keys, topics)
        ]
        node_counters, topic_counters, totals = _with_hosted(
            counted, names, node_counters, topic_counters, totals
        )
        duration_s = now / TICKS_PER_SECOND
        freeze = _Freezer(duration_s)
        return Metrics(
            duration_s=duration_s,
            nodes={name: freeze(raw) for name, raw in sorted(zip(names, node_counters))},
            links={key: freeze(distinct[position]) for key, position in zip(link_keys, links)},
            topics={topic: freeze(raw) for topic, raw in sorted(topic_counters)},
            totals=freeze(totals, share=False),
        )

    def _ledger(
        self, names: list[str], devices: Sequence[Any], sensors: list[tuple[int, int]]
    ) -> DeliveryLedger:
        """The delivery ledger of a run with Python nodes (the Python nodes' sources and
        destinations with the native records); a run without is summed up natively."""
        spec = self.scenario.spec
        ledger = DeliveryLedger()
        for device, (published, _) in zip(devices, sensors):
            ledger.source(device.name, device.topic).sent = published
        if self._nodes is not None:  # the sources Python nodes declared (their drops are native)
            for name, declared in self._nodes.ledger.sources.items():
                source = ledger.source(name, declared.topic)
                source.sent += declared.sent
                source.publisher = declared.publisher
        drops, destinations = self._run.ledger()
        for origin, causes in drops:
            source = ledger.source(names[origin])
            for cause, runs in causes:
                source.dropped[cause] = _seqs(runs)
        hosted = self._nodes
        if hosted is None:
            ledger.destination(spec.cloud.name)
            for gateway in spec.gateways:
                ledger.destination(
                    gateway.name, [s.filter for s in gateway.subscribe], gateway=True
                )
        else:
            for name, filters, gateway_node in hosted.ledger.made:
                ledger.destination(name, filters, gateway=gateway_node)
            for node, counts in self._run.without_lineage():
                without = ledger.destinations[names[node]].without_lineage
                for origin, count in counts:
                    without[names[origin]] = count
        for node, records in destinations:
            destination = ledger.destinations[names[node]]
            for origin, runs, highest, duplicated, reordered in records:
                record = Received(ledger.sources.get(names[origin]))
                record.seqs = _seqs(runs)
                record.highest = highest
                record.duplicated = duplicated
                record.reordered = reordered
                destination.received[names[origin]] = record
        return ledger

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._nodes is not None:
            self._nodes.close()

    def __enter__(self) -> NativeSimulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
