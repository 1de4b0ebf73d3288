"""A steerable scenario run that remembers what was done to it, so it can be replayed.

:class:`EdgeScenario` is what the ``edge_scenario`` fixture hands a test, but it needs no
pytest: it wraps a :class:`~pytest_edgesim.core.simulation.Simulation` and logs every action
(run, partition, heal, set_link, inject, and the faults: stop, start, restart, kill, pause,
resume, disconnect, reconnect, at) with the virtual time it happened at.
:meth:`EdgeScenario.replay_mismatch` performs the same actions on a fresh simulation and says
where the two traces first differ, which is how ``deterministic(replay_check=True)`` works.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_edgesim.core.assertions import Assertions
from pytest_edgesim.core.faults import FAULT_ACTIONS, FaultControls
from pytest_edgesim.core.gateway_kinds import gateway_kind
from pytest_edgesim.core.units import TICKS_PER_SECOND, parse_until

if TYPE_CHECKING:
    from pytest_edgesim.core.assertions import AssertionLog
    from pytest_edgesim.core.faults import AppliedFault
    from pytest_edgesim.core.models.cloud import Arrival
    from pytest_edgesim.core.network import Cut, NetworkModel
    from pytest_edgesim.core.node import Node
    from pytest_edgesim.core.packet import Message
    from pytest_edgesim.core.result import RunResult
    from pytest_edgesim.core.run import ScenarioRun
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.core.swarm import SwarmProfile
    from pytest_edgesim.core.trace import TraceEvent

#: The scenario an unmarked test gets: 3 sensors -> broker -> one gateway -> cloud, 10 s.
MINIMAL_SCENARIO: dict[str, Any] = {
    "edgesim": 1,
    "name": "edgesim-minimal",
    "description": "3 sensors, one broker, one gateway aggregating every 10 readings, the cloud",
    "seed": 0,
    "duration": "10s",
    "devices": [
        {
            "name": "sensor",
            "count": 3,
            "topic": "sensors/{name}",
            "publish": {"mode": "periodic", "period": "1s"},
            "value": {"model": "random_walk", "start": 20.0, "step": 0.5},
        }
    ],
    "gateways": [
        {"name": "gateway", "subscribe": ["sensors/#"], "aggregate": {"count": 10}},
    ],
    "network": {"model": "latency", "default": {"latency": "1ms"}},
}


def minimal_scenario() -> Scenario:
    """The built-in minimal scenario (see :data:`MINIMAL_SCENARIO`)."""
    from pytest_edgesim.core.scenario import Scenario

    return Scenario.from_dict(MINIMAL_SCENARIO)


def wall_clock_components(scenario: Scenario) -> list[str]:
    """Field paths of the components that run on the wall clock (real MQTT in containers).

    A Docker broker always does; a gateway does when its kind cannot run in virtual time
    (``implementation: docker`` unless ``docker.mode`` is ``lockstep``, a container driven
    in virtual time, which deterministic tests may use).
    """
    spec = scenario.spec
    found = []
    if spec.broker.implementation == "docker":
        found.append("broker.implementation: docker")
    for index, gateway in enumerate(spec.gateways):
        if not gateway_kind(gateway.kind).runs_in_virtual_time:
            found.append(
                f"gateways[{index}] ({gateway.name}): implementation: {gateway.implementation}"
                f" ({gateway.kind})"
            )
    return found


def docker_components(scenario: Scenario) -> list[str]:
    """Field paths of every component that needs a container."""
    spec = scenario.spec
    found = ["broker"] if spec.broker.implementation == "docker" else []
    found += [
        f"gateways[{index}] ({gateway.name})"
        for index, gateway in enumerate(spec.gateways)
        if gateway_kind(gateway.kind).needs_docker
    ]
    return found


@dataclass(frozen=True)
class Action:
    """One thing done to a paused run: ``name`` with ``args``/``kwargs`` at ``time_ticks``."""

    time_ticks: int
    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        when = f"t={self.time_ticks / TICKS_PER_SECOND:g}s"
        if self.name == "run":
            return f"{when} run(until='{self.args[0] / TICKS_PER_SECOND:g}s')"
        if self.name == "at":
            at_ticks, action, node = self.args
            options = "".join(f", {key}={value!r}" for key, value in self.kwargs.items())
            return f"{when} at('{at_ticks / TICKS_PER_SECOND:g}s', {action!r}, {node!r}{options})"
        arguments = [repr(arg) for arg in self.args]
        arguments += [f"{key}={value!r}" for key, value in self.kwargs.items()]
        return f"{when} {self.name}({', '.join(arguments)})"


class RecordedNetwork:
    """The live network of an :class:`EdgeScenario`; changes made through it are logged.

    ``partition``, ``heal`` and ``set_link`` act from the current virtual time on; everything
    else (``is_partitioned``, ``links``, ...) is the network's own attribute.
    """

    def __init__(self, owner: EdgeScenario):
        self._owner = owner

    @property
    def _network(self) -> NetworkModel:
        return self._owner.simulation.network

    def partition(self, a: str | Sequence[str], b: str | Sequence[str]) -> Cut:
        """Cut every link between ``a`` and ``b`` (node names or globs) now, until healed."""
        return self._owner._act("partition", (a, b), {})

    def heal(
        self, a: str | Sequence[str] | None = None, b: str | Sequence[str] | None = None
    ) -> int:
        """Heal the cuts between ``a`` and ``b`` (every cut when both are None)."""
        return self._owner._act("heal", (a, b), {})

    def set_link(self, a: str | Sequence[str], b: str | Sequence[str], **settings: Any) -> None:
        """Change the links between ``a`` and ``b`` from now on (``latency_ms``, ``jitter_ms``,
        ``loss``, ``bandwidth_bps``, ``reorder``, ``bidirectional``)."""
        self._owner._act("set_link", (a, b), settings)

    def is_partitioned(self, src: str, dst: str) -> bool:
        return self._network.is_partitioned(src, dst)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._network, name)


class EdgeScenario(FaultControls, Assertions):
    """A scenario run a test can pause, steer and inspect; see the ``edge_scenario`` fixture.

    The simulation is built on first use. ``seed`` is the seed it runs with; ``trace`` is
    ``"digest"`` or ``"full"`` (keep every event, needed to locate a replay divergence).
    ``on_record(name, value)`` receives per-trial metrics given to :meth:`record`.
    ``simulation_factory(scenario, seed, trace)`` builds what runs instead of a
    :class:`~pytest_edgesim.core.simulation.Simulation` (a live run on real components).
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        *,
        trace: str = "digest",
        on_record: Callable[[str, float], None] | None = None,
        simulation_factory: Callable[[Scenario, int, str], Any] | None = None,
    ):
        self.scenario = scenario
        self._simulation_factory = simulation_factory
        self.seed = int(scenario.seed if seed is None else seed)
        self.trace = trace
        self.actions: list[Action] = []
        self.runs: list[RunResult] = []
        self.recorded: dict[str, list[float]] = {}
        self._on_record = on_record
        self._simulation: ScenarioRun | None = None
        self._network = RecordedNetwork(self)

    # --- the simulation -------------------------------------------------------------------
    @property
    def simulation(self) -> ScenarioRun:
        """The underlying simulation. Changes made on it directly are not logged or replayed."""
        if self._simulation is None:
            from pytest_edgesim.core.simulation import Simulation

            factory = self._simulation_factory
            if factory is not None:
                self._simulation = factory(self.scenario, self.seed, self.trace)
            else:
                self._simulation = Simulation(self.scenario, self.seed, trace=self.trace)
        return self._simulation

    @property
    def built(self) -> bool:
        """Whether the simulation has been built (anything was asked of it)."""
        return self._simulation is not None

    def _act(self, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """Perform one action on the simulation and log it (only if it succeeded)."""
        simulation = self.simulation
        time_ticks = simulation.now
        outcome = _perform(simulation, name, args, kwargs)
        self.actions.append(Action(time_ticks, name, args, dict(kwargs)))
        return outcome

    def run(self, until: int | float | str | None = None) -> RunResult:
        """Run to virtual time ``until`` (seconds, or ``"500ms"``; None: the scenario's
        duration) and pause there. ``until`` is absolute: each call continues the same run."""
        from pytest_edgesim.errors import UsageError

        target = self.scenario.duration_ticks if until is None else parse_until(until)
        if target < self.now:
            raise UsageError(
                f"cannot run until {until!r} ({target / TICKS_PER_SECOND:g}s): virtual time is "
                f"already {self.now_s:g}s (until is absolute; each run() continues the same run)"
            )
        result: RunResult = self._act("run", (target,), {})
        self.runs.append(result)
        return result

    @property
    def network(self) -> RecordedNetwork:
        """The live network: ``partition``, ``heal``, ``set_link`` act from now on."""
        return self._network

    def node(self, name: str) -> Node:
        """The node called ``name`` (a model: read its state; changes to it are not replayed)."""
        return self.simulation.node(name)

    @property
    def nodes(self) -> Mapping[str, Node]:
        return self.simulation.nodes

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
        """Publish a message now, from node ``source`` over its link or straight into the broker."""
        options = {"source": source, "qos": qos, "retain": retain, "size_bytes": size_bytes}
        message: Message = self._act("inject", (topic, payload), options)
        return message

    # --- faults: restarts, crashes and disconnects ----------------------------------------
    def at(self, when: int | float | str, action: str, node: str, **options: Any) -> None:
        """Schedule fault ``action`` (``"restart"``, ``"kill"``...) on ``node`` at virtual
        time ``when`` (absolute: ``"30s"``); it happens while a later :meth:`run` runs.
        ``options``: ``duration`` for ``"disconnect"``."""
        self._act("at", (parse_until(when), action, node), options)

    def schedule(self, fault: Any) -> Any:
        """Add a fault to the run's schedule, as a ``faults:`` entry of the scenario file
        (a mapping, or a :class:`~pytest_edgesim.core.scenario.schema.FaultSpec`):
        ``edge_scenario.schedule({"kind": "restart", "target": "gw", "when": {"subscribed":
        "gw"}})``. Recorded, so that ``replay_check`` schedules it too; see docs/faults.md."""
        from pytest_edgesim.core.run import _fault_spec
        from pytest_edgesim.core.scenario.schema import FaultSpec

        spec = fault if isinstance(fault, FaultSpec) else _fault_spec(fault)
        return self._act("schedule", (spec,), {})

    def fault(self, action: str, node: str, *, duration: Any = None) -> AppliedFault:
        """Do fault ``action`` to ``node`` now, and record it (``replay_check`` does it too)."""
        options = {} if duration is None else {"duration": duration}
        applied: AppliedFault = self._act(action, (node,), options)
        return applied

    @property
    def faults(self) -> tuple[AppliedFault, ...]:
        """The faults done so far (scheduled ones once they happened), in order."""
        return self.simulation.faults

    # --- assertions over runs, swarm testing ------------------------------------------------
    def _assertion_log(self) -> tuple[AssertionLog, int]:
        simulation = self.simulation
        return simulation.assertions, simulation.now

    @property
    def swarm_profile(self) -> SwarmProfile | None:
        """The faults this run's seed drew from the swarm catalogue (None without ``swarm:``)."""
        return self.simulation.swarm_profile

    @property
    def cloud_arrivals(self) -> list[Arrival]:
        """What reached the cloud so far, in arrival order."""
        return list(self.simulation.cloud.arrivals)

    @property
    def now(self) -> int:
        """Virtual time in ticks (microseconds)."""
        return self.simulation.now

    @property
    def now_s(self) -> float:
        """Virtual time in seconds."""
        return self.simulation.now / TICKS_PER_SECOND

    @property
    def result(self) -> RunResult | None:
        """The result of the latest :meth:`run`, or None before the first."""
        return self.runs[-1] if self.runs else None

    def record(self, name: str, value: float) -> None:
        """Record a per-trial metric (statistical tests report its mean and interval); a
        value that is not a finite number is a :class:`~pytest_edgesim.errors.UsageError`."""
        from pytest_edgesim.errors import UsageError

        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise UsageError(f"record({name!r}, {value!r}): expected a finite number")
        self.recorded.setdefault(name, []).append(float(value))
        if self._on_record is not None:
            self._on_record(name, float(value))

    def close(self) -> None:
        if self._simulation is not None:
            self._simulation.close()

    # --- replay -----------------------------------------------------------------------------
    def replay(self) -> RunResult:
        """Perform the logged actions on a fresh simulation (same scenario and seed)."""
        from pytest_edgesim.core.simulation import Simulation

        with Simulation(self.scenario, self.seed, trace=self.trace) as fresh:
            for action in self.actions:
                _perform(fresh, action.name, action.args, action.kwargs)
            return fresh.result()

    def replay_mismatch(self) -> str | None:
        """Replay and compare with this run: None when the traces agree, else a report naming
        the first event where they diverge and both digests. Needs ``trace="full"`` to name
        the event; with a digest only it reports the digests."""
        if not self.runs:
            return None
        original = self.simulation.result()
        replayed = self.replay()
        if original.trace_digest == replayed.trace_digest:
            return None
        lines = [
            f"replay check failed: scenario {self.scenario.name!r} with seed {self.seed} "
            "ran twice with the same actions and the runs differ",
        ]
        if original.trace is not None and replayed.trace is not None:
            from pytest_edgesim.core.trace import first_divergence

            divergence = first_divergence(original.trace, replayed.trace)
            if divergence is not None:
                index, first, second = divergence
                agree = f"events #0 to #{index - 1} agree" if index else "no event agrees"
                lines.append(f"the runs first differ at event #{index} ({agree}):")
                lines.append(f"  first run: {_describe_event(first)}")
                lines.append(f"  replay:    {_describe_event(second)}")
        lines.append(f"digests: first run {original.trace_digest}")
        lines.append(f"         replay    {replayed.trace_digest}")
        if self.actions:
            lines.append("actions replayed: " + "; ".join(str(action) for action in self.actions))
        return "\n".join(lines)


def _perform(
    simulation: ScenarioRun, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> Any:
    """Do one recorded action; ``run`` takes its target in ticks."""
    if name == "run":
        return simulation.run(f"{args[0]}us")
    if name == "inject":
        return simulation.inject(*args, **kwargs)
    if name == "schedule":
        return simulation.schedule(*args)
    if name == "at":
        at_ticks, action, node = args
        return simulation.schedule_fault(f"{at_ticks}us", action, node, **kwargs)
    if name in FAULT_ACTIONS:
        return getattr(simulation, name)(*args, **kwargs)
    assert name in ("partition", "heal", "set_link"), name
    return getattr(simulation.network, name)(*args, **kwargs)


def _describe_event(event: TraceEvent | None) -> str:
    if event is None:
        return "(no event: this trace ended here)"
    # read forwards: when, the node the event happens at, what it does, to whom
    time, kind, node, peer, topic, message, detail = event
    text = f"t={time / TICKS_PER_SECOND:.6f}s at {node}: {kind}"
    text += f" -> {peer}" if peer else ""
    text += f" topic {topic}" if topic else ""
    text += f" message {message}" if message else ""
    return text + (f" ({detail})" if detail else "")
