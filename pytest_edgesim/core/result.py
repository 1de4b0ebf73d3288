"""The result of a run: a value (no live handles), safe to compare, serialise and merge."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from pytest_edgesim.core.assertions import AssertionRecord
from pytest_edgesim.core.faults import AppliedFault
from pytest_edgesim.core.metrics.delivery import Deliveries, Delivery
from pytest_edgesim.core.metrics.recorder import Metrics
from pytest_edgesim.core.metrics.timeline import RunProfile
from pytest_edgesim.core.models.cloud import Arrival
from pytest_edgesim.core.swarm import SwarmFault, SwarmProfile
from pytest_edgesim.core.trace import TraceEvent, write_jsonl
from pytest_edgesim.core.units import TICKS_PER_SECOND


@dataclass(frozen=True)
class RunResult:
    """What a run produced.

    ``trace_digest`` identifies the run's trace: equal digests mean event-for-event equal
    runs (``None`` for a wall-clock run on real components, which is not bit-exact).
    ``trace`` holds the events only when the run kept them (``trace="full"``).
    ``wall_time_s`` is how long the run took; it is informative and not compared.
    ``deliveries`` says which readings reached the cloud and each gateway (see
    :meth:`delivery`).
    ``faults`` lists the restarts, crashes, pauses and disconnects done during the run, in
    order (empty for a clean run); ``describe_faults()`` says them in one line.
    ``profile`` is the run over time and its latencies' spread, in fixed-size summaries (a
    :class:`~pytest_edgesim.core.metrics.timeline.Timeline` of messages per slice of virtual
    time with the partitions, and a latency histogram per flow): what reports chart. It is
    not compared.
    ``to_dict``/``to_json`` leave out ``arrivals`` and ``trace`` (they can be large; see
    :meth:`write_trace`), so a result read back with ``from_dict`` has neither.
    """

    scenario: str
    seed: int
    virtual_time_ticks: int
    metrics: Metrics
    trace_digest: str | None
    events: int
    nodes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    arrivals: tuple[Arrival, ...] = ()
    trace: tuple[TraceEvent, ...] | None = field(default=None, repr=False)
    wall_time_s: float = field(default=0.0, compare=False)
    deliveries: Deliveries = field(default_factory=Deliveries, repr=False)

    def delivery(self, sources: str | Iterable[str], destination: str) -> Delivery:
        """How many readings of ``sources`` (an origin's name, a glob such as
        ``"sensor-*"``, or several) reached ``destination`` (the cloud's name, or a
        gateway's): sent, delivered, lost by cause, duplicated, reordered."""
        return self.deliveries.delivery(sources, destination)

    faults: tuple[AppliedFault, ...] = ()
    profile: RunProfile = field(default_factory=RunProfile, repr=False, compare=False)
    #: the faults the run's seed drew (a scenario with a ``swarm:`` section), or None
    swarm_profile: SwarmProfile | None = None
    #: the run's ``always``/``sometimes``/``reachable``/``unreachable`` statements
    assertions: tuple[AssertionRecord, ...] = ()

    @property
    def virtual_time_s(self) -> float:
        return self.virtual_time_ticks / TICKS_PER_SECOND

    def describe_faults(self) -> str:
        """The faults done during the run in one line (``""`` for a clean run)."""
        return "; ".join(str(fault) for fault in self.faults)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "virtual_time_s": self.virtual_time_s,
            "trace_digest": self.trace_digest,
            "events": self.events,
            "wall_time_s": round(self.wall_time_s, 6),
            "nodes": {name: dict(info) for name, info in self.nodes.items()},
            "metrics": self.metrics.to_dict(),
            "deliveries": self.deliveries.to_dict(),
            "faults": [fault.to_dict() for fault in self.faults],
            "profile": self.profile.to_dict(),
            # (only when there are any: a result without them reads as it always did)
            **({"swarm": self.swarm_profile.to_dict()} if self.swarm_profile is not None else {}),
            **(
                {"assertions": [record.to_dict() for record in self.assertions]}
                if self.assertions
                else {}
            ),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        return cls(
            scenario=data["scenario"],
            seed=data["seed"],
            virtual_time_ticks=round(data["virtual_time_s"] * TICKS_PER_SECOND),
            metrics=Metrics.from_dict(data["metrics"]),
            trace_digest=data["trace_digest"],
            events=data["events"],
            nodes=data.get("nodes", {}),
            wall_time_s=data.get("wall_time_s", 0.0),
            deliveries=Deliveries.from_dict(data.get("deliveries", {})),
            faults=tuple(AppliedFault.from_dict(item) for item in data.get("faults", ())),
            profile=RunProfile.from_dict(data.get("profile", {})),
            swarm_profile=_profile(data.get("swarm")),
            assertions=tuple(
                AssertionRecord.from_dict(item) for item in data.get("assertions", ())
            ),
        )

    def write_trace(self, target: IO[str] | str | os.PathLike[str]) -> int:
        """Write the kept trace as JSON Lines to an open text stream or a file path
        (requires ``trace="full"``); returns the number of events written."""
        if self.trace is None:
            raise ValueError("this run kept no trace: run it with trace='full'")
        if isinstance(target, (str, os.PathLike)):
            with open(target, "w", encoding="utf-8") as stream:
                return write_jsonl(self.trace, stream)
        return write_jsonl(self.trace, target)


def _profile(data: Mapping[str, Any] | None) -> SwarmProfile | None:
    if data is None:
        return None
    faults = tuple(SwarmFault.from_dict(item) for item in data.get("faults", ()))
    return SwarmProfile(int(data["seed"]), tuple(data.get("kinds", ())), faults)
