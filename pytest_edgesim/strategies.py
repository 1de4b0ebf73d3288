"""Hypothesis strategies for property tests of edge systems.

    from hypothesis import given
    from pytest_edgesim import simulate
    from pytest_edgesim.strategies import small_scenarios, seeds

    @given(scenario=small_scenarios(link=link_configs(max_loss=0)), seed=seeds())
    def test_nothing_is_lost_on_lossless_links(scenario, seed):
        result = simulate(scenario, seed=seed)
        ...

Generated scenarios are ordinary :class:`~pytest_edgesim.core.scenario.Scenario` objects whose
``repr`` is their YAML, so a failing example is shown as a scenario file that can be saved
and run with ``edgesim run``. Link configurations are dicts in the YAML's shape, ready for
``ScenarioBuilder.link(..., **config)`` or a ``network.links`` entry.

Importing this module registers the Hypothesis settings profile ``edgesim-ci``
(``pytest --hypothesis-profile=edgesim-ci``; see :func:`register_profiles`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context

from pytest_edgesim.core.scenario import Scenario
from pytest_edgesim.core.scenario.builder import ScenarioBuilder
from pytest_edgesim.core.units import TICKS_PER_MS, parse_duration

__all__ = [
    "CI_PROFILE",
    "SCHEDULE_KINDS",
    "FaultList",
    "fault_schedules",
    "link_configs",
    "register_profiles",
    "seeds",
    "small_scenarios",
    "topic_filters",
    "topic_names",
]

#: the settings profile for CI: the same examples on every run, no deadline
CI_PROFILE = "edgesim-ci"


def register_profiles() -> None:
    """Register ``edgesim-ci``: derandomized (every CI run tries the same examples, so a
    failure is reproducible and a pass is not luck), no deadline (shared CI machines are
    slow and uneven), 50 examples, and the reproduction blob printed on failure."""
    settings.register_profile(
        CI_PROFILE,
        derandomize=True,
        deadline=None,
        max_examples=50,
        print_blob=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


register_profiles()


# --- topics -------------------------------------------------------------------------------
#: levels that make names and filters collide often enough for matching to be tested
_COMMON_LEVELS = ("", "a", "b", "sensors", "temp", "x y", "é", "$", "a$", "$SYS", "$data")
_FREE_LEVEL = st.text(
    # no separators or wildcards, no control characters (NUL, tabs, line breaks), no
    # lone surrogates (a topic is UTF-8)
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/+#"),
    max_size=6,
)


def _levels(system_topics: bool) -> st.SearchStrategy[str]:
    common = (
        _COMMON_LEVELS
        if system_topics
        else tuple(level for level in _COMMON_LEVELS if not level.startswith("$"))
    )
    free = _FREE_LEVEL if system_topics else _FREE_LEVEL.filter(lambda s: not s.startswith("$"))
    return st.one_of(st.sampled_from(common), free)


def topic_names(*, max_levels: int = 6, system_topics: bool = True) -> st.SearchStrategy[str]:
    """Valid MQTT topic names (what a client publishes to).

    Levels may be empty (``a//b``, ``/a``, ``a/``), hold spaces and any Unicode but the
    wildcards, ``/``, control characters and surrogates; with ``system_topics`` some start
    with ``$`` (``$SYS/...``), which wildcards at the first level must not match.
    """
    inner = _levels(system_topics=False)
    first = _levels(system_topics)
    return st.builds(
        lambda head, tail: "/".join([head, *tail]),
        first,
        st.lists(inner, max_size=max(max_levels - 1, 0)),
    ).filter(bool)


def topic_filters(*, max_levels: int = 6, system_topics: bool = True) -> st.SearchStrategy[str]:
    """Valid MQTT subscription filters: levels as in :func:`topic_names`, ``+`` for any
    level, and a trailing ``#`` (``#`` alone, ``a/#``, ``+/+/#``)."""
    first = st.one_of(_levels(system_topics), st.just("+"))
    inner = st.one_of(_levels(system_topics=False), st.just("+"))

    def join(head: str, tail: list[str], multi_level: bool) -> str:
        levels = [head, *tail]
        if multi_level:
            levels = [*levels[: max_levels - 1], "#"]
        return "/".join(levels)

    return st.one_of(
        st.just("#"),
        st.builds(
            join, first, st.lists(inner, max_size=max(max_levels - 1, 0)), st.booleans()
        ).filter(bool),
    )


# --- links --------------------------------------------------------------------------------
def _ms(bound: int | float | str, what: str) -> int:
    try:
        return parse_duration(bound) // TICKS_PER_MS
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _probability(max_rate: float) -> st.SearchStrategy[float]:
    """A probability in [0, max_rate], on a 0.001 grid (readable numbers in a failing example)."""
    return st.integers(0, int(max_rate * 1000 + 1e-9)).map(lambda k: k / 1000)


def link_configs(
    *,
    min_latency: int | float | str = 0,
    max_latency: int | float | str = "200ms",
    max_jitter: int | float | str = "50ms",
    jitter: Sequence[str] = ("uniform", "normal"),
    max_loss: float = 0.3,
    loss: Sequence[str] = ("bernoulli", "gilbert_elliott"),
    bandwidth: bool = True,
    min_bandwidth_kbps: int = 10,
    max_bandwidth_kbps: int = 10_000,
    reorder: bool | None = False,
) -> st.SearchStrategy[dict[str, Any]]:
    """Settings of a network link, as a dict in the scenario's shape::

        {"latency": "35ms", "jitter": {"distribution": "normal", "stddev": "4ms"},
         "loss": {"model": "gilbert_elliott", ...}, "bandwidth": "250kbps"}

    Durations take the scenario's units (``"200ms"``, or seconds as a number). ``jitter``
    and ``loss`` name the distributions and loss models to draw from (empty: none); each may
    also be left out of a config. ``max_loss`` bounds every loss probability, so
    ``max_loss=0`` gives lossless links. ``bandwidth=False`` leaves links unlimited.
    ``reorder``: ``False`` keeps links FIFO, ``True`` lets them reorder, ``None`` draws it.
    """
    low_ms = _ms(min_latency, "link_configs: min_latency")
    high_ms = _ms(max_latency, "link_configs: max_latency")
    if high_ms < low_ms:
        raise ValueError(f"link_configs: max_latency {max_latency!r} is below min_latency")
    if not 0.0 <= max_loss <= 1.0:
        raise ValueError(f"link_configs: max_loss must be between 0 and 1, got {max_loss!r}")
    jitter_ms = _ms(max_jitter, "link_configs: max_jitter")
    if bandwidth and not (
        isinstance(min_bandwidth_kbps, int)
        and isinstance(max_bandwidth_kbps, int)
        and 1 <= min_bandwidth_kbps <= max_bandwidth_kbps
    ):
        # (a link's bandwidth is positive: 0 would be refused when the scenario is built,
        # at draw time, far from this call)
        raise ValueError(
            f"link_configs: expected whole numbers 1 <= min_bandwidth_kbps <= "
            f"max_bandwidth_kbps, got {min_bandwidth_kbps!r} and {max_bandwidth_kbps!r} "
            "(bandwidth=False leaves links unlimited)"
        )
    unknown = set(jitter) - {"uniform", "normal"} | set(loss) - {"bernoulli", "gilbert_elliott"}
    if unknown:
        raise ValueError(f"link_configs: unknown jitter or loss kind(s) {sorted(unknown)}")

    jitters: list[st.SearchStrategy[Any]] = []
    if "uniform" in jitter:
        jitters.append(
            st.integers(0, jitter_ms).map(lambda ms: {"distribution": "uniform", "max": f"{ms}ms"})
        )
    if "normal" in jitter:
        jitters.append(
            st.integers(0, jitter_ms).map(
                lambda ms: {"distribution": "normal", "stddev": f"{ms}ms"}
            )
        )
    losses: list[st.SearchStrategy[Any]] = []
    if "bernoulli" in loss:
        losses.append(_probability(max_loss))
    if "gilbert_elliott" in loss:
        losses.append(
            st.fixed_dictionaries(
                {
                    "model": st.just("gilbert_elliott"),
                    "p_good_to_bad": _probability(1.0),
                    "p_bad_to_good": _probability(1.0).filter(lambda p: p > 0),
                    "loss_good": _probability(max_loss),
                    "loss_bad": _probability(max_loss),
                }
            )
        )

    optional: dict[str, st.SearchStrategy[Any]] = {}
    if jitters:
        optional["jitter"] = st.one_of(jitters)
    if losses:
        optional["loss"] = st.one_of(losses)
    if bandwidth:
        optional["bandwidth"] = st.integers(min_bandwidth_kbps, max_bandwidth_kbps).map(
            lambda kbps: f"{kbps}kbps"
        )
    if reorder is None:
        optional["reorder"] = st.booleans()
    elif reorder:
        optional["reorder"] = st.just(True)
    return st.fixed_dictionaries(
        {"latency": st.integers(low_ms, high_ms).map(lambda ms: f"{ms}ms")}, optional=optional
    ).map(_link_in_order)


_LINK_ORDER = ("latency", "jitter", "loss", "bandwidth", "reorder")
_GILBERT_ELLIOTT_ORDER = ("model", "p_good_to_bad", "p_bad_to_good", "loss_good", "loss_bad")


def _link_in_order(config: dict[str, Any]) -> dict[str, Any]:
    """The fields in the order people write them (Hypothesis draws optional keys in any)."""
    ordered = {key: config[key] for key in _LINK_ORDER if key in config}
    if isinstance(ordered.get("loss"), dict):
        loss = ordered["loss"]
        ordered["loss"] = {key: loss[key] for key in _GILBERT_ELLIOTT_ORDER}
    return ordered


def seeds() -> st.SearchStrategy[int]:
    """Root seeds for a run (any seed a scenario accepts; shrinks towards 0)."""
    return st.integers(min_value=0, max_value=2**63 - 1)


# --- scenarios ----------------------------------------------------------------------------
class GeneratedScenario(Scenario):
    """A :class:`Scenario` drawn by :func:`small_scenarios`.

    Its ``repr`` is one line: Hypothesis prints the falsifying example inside the
    exception's notes, which pytest shows on ``E`` lines, where YAML cannot be copied as
    it is. The scenarios of the falsifying example are kept instead
    (:func:`falsifying_scenarios`): the pytest plugin shows each as a YAML file in the
    failing test's report, and ``scenario.to_yaml()`` gives it anywhere."""

    def __repr__(self) -> str:
        return (
            f"<generated scenario {self.name!r}: {len(self.node_names)} nodes; its YAML: "
            "scenario.to_yaml(), and in a failing test's report>"
        )

    def with_overrides(self, overrides: Any) -> Scenario:
        """As :meth:`Scenario.with_overrides`; the result still shows itself as YAML."""
        changed = super().with_overrides(overrides)
        if changed is self:
            return self
        return GeneratedScenario(changed.raw, source=changed.source, base_dir=changed.base_dir)


_GROUP_NAMES = ("temp", "humidity", "door", "light", "power")
_GATEWAY_NAMES = ("edge-a", "edge-b")

# Built once: building strategies inside a draw makes every example (and every shrink
# step) pay for their construction and validation.
_PERIOD_MS = st.integers(1, 10).map(lambda k: k * 100)
_JITTER_PERCENT = st.integers(0, 25)
_OFFSET = st.sampled_from(["random", "zero", "half"])
_RATE = st.integers(1, 10).map(lambda n: f"{n}/s")
_VALUE = st.one_of(
    st.integers(-40, 100),
    st.builds(
        lambda start, step: {"model": "random_walk", "start": start, "step": step},
        st.integers(0, 50),
        st.sampled_from([0.1, 0.5, 1.0]),
    ),
    st.builds(
        lambda mean, amplitude: {
            "model": "sine",
            "mean": mean,
            "amplitude": amplitude,
            "period": "10s",
        },
        st.integers(0, 50),
        st.integers(0, 10),
    ),
)
_PAYLOAD_BYTES = st.sampled_from([16, 64, 256])
_AGGREGATE = st.one_of(
    st.none(),
    st.integers(1, 10).map(lambda n: {"count": n}),
    st.integers(1, 4).map(lambda k: {"window": f"{k * 500}ms"}),
)
_PROCESSING_DELAY = st.integers(0, 5).map(lambda ms: f"{ms}ms")
_QUEUE = st.fixed_dictionaries(
    {"capacity": st.integers(1, 100), "drop": st.sampled_from(["newest", "oldest"])}
)
_PERCENT = st.integers(0, 99)


@st.composite
def _scenario(
    draw: st.DrawFn,
    *,
    group_count: st.SearchStrategy[int],
    gateway_count: st.SearchStrategy[int],
    sensors_per_group: st.SearchStrategy[int],
    duration_ms: st.SearchStrategy[int],
    partition_count: st.SearchStrategy[int],
    qos: st.SearchStrategy[int],
    link: st.SearchStrategy[dict[str, Any]],
    name: str,
) -> GeneratedScenario:
    duration = draw(duration_ms)
    builder = ScenarioBuilder(name, seed=draw(seeds()), duration=f"{duration}ms")

    groups = _GROUP_NAMES[: draw(group_count)]
    for group in groups:
        fields: dict[str, Any] = {
            "count": draw(sensors_per_group),
            "topic": f"site/{group}/{{name}}",
            "qos": draw(qos),
        }
        if draw(st.booleans()):
            period_ms = draw(_PERIOD_MS)
            fields["period"] = f"{period_ms}ms"
            fields["jitter"] = f"{period_ms * draw(_JITTER_PERCENT) // 100}ms"
            offset = draw(_OFFSET)
            fields["offset"] = {"random": "random", "zero": "0ms", "half": f"{period_ms // 2}ms"}[
                offset
            ]
        else:
            fields["rate"] = draw(_RATE)
        fields["value"] = draw(_VALUE)
        fields["payload_bytes"] = draw(_PAYLOAD_BYTES)
        builder.sensors(group, **fields)
        builder.link(f"{group}*", "broker", **draw(link))

    gateway_names = _GATEWAY_NAMES[: draw(gateway_count)]
    for gateway in gateway_names:
        watched = [group for group in groups if draw(st.booleans())] or [groups[0]]
        if len(watched) == len(groups) and draw(st.booleans()):
            subscribe = ["site/#"]
        else:
            subscribe = [f"site/{group}/+" for group in watched]
        aggregate = draw(_AGGREGATE)
        optional: dict[str, Any] = {} if aggregate is None else {"aggregate": aggregate}
        builder.gateway(
            gateway,
            subscribe=subscribe,
            **optional,
            processing_delay=draw(_PROCESSING_DELAY),
            queue=draw(_QUEUE),
            forward_topic="cloud/{gateway}",
            forward_qos=draw(qos),
        )
        builder.link(gateway, "cloud", **draw(link))
    builder.default_link(**draw(link))

    sides = [f"{group}*" for group in groups] + list(gateway_names)
    for _ in range(draw(partition_count)):
        side = sides[draw(_PERCENT) % len(sides)]
        other = "broker" if draw(st.booleans()) else "cloud"
        # on a 100 ms grid: start in [0, duration), end in (start, duration] or never
        steps = duration // 100
        start_step = draw(_PERCENT) * steps // 100
        heals = draw(st.booleans())
        end_step = start_step + 1 + draw(_PERCENT) * (steps - start_step) // 100
        builder.partition(
            side,
            other,
            start=f"{start_step * 100}ms",
            **({"end": f"{end_step * 100}ms"} if heals else {}),
        )

    scenario = GeneratedScenario(builder.to_dict(), label=f"small_scenarios() {name!r}")
    if current_build_context().is_final:  # the falsifying example, run for the report
        _falsifying.append(scenario)
    return scenario


#: the scenarios drawn for the falsifying example of the latest failing ``@given`` test
_falsifying: list[GeneratedScenario] = []


def falsifying_scenarios() -> list[GeneratedScenario]:
    """The scenarios :func:`small_scenarios` drew for the falsifying example Hypothesis
    ran last (its final, reported run), and forget them. (The pytest plugin asks after each
    failing test and shows them as YAML files; it empties the list before each test.)"""
    found = list(_falsifying)
    _falsifying.clear()
    return found


def small_scenarios(
    *,
    sensor_groups: tuple[int, int] = (1, 5),
    gateways: tuple[int, int] = (1, 2),
    max_sensors_per_group: int = 3,
    link: st.SearchStrategy[dict[str, Any]] | None = None,
    partitions: bool = True,
    qos: Sequence[int] = (0, 1),
    max_duration: int | float | str = "3s",
    name: str = "generated",
) -> st.SearchStrategy[Scenario]:
    """Small valid scenarios that run in milliseconds of wall time.

    Between ``sensor_groups`` (min, max) groups of 1..``max_sensors_per_group`` sensors
    (named ``temp``, ``humidity``, ``door``, ``light``, ``power``; topics
    ``site/GROUP/NAME``), periodic or Poisson at up to 10 readings a second; ``gateways``
    (min, max) gateways (``edge-a``, ``edge-b``) subscribing to some groups, aggregating by
    count, by window or not at all, forwarding to the cloud; every sensor uplink, gateway
    uplink and the default link drawn from ``link`` (default :func:`link_configs`); with
    ``partitions``, up to two scheduled cuts; a duration from 1 s to ``max_duration`` (on a
    500 ms grid); QoS levels drawn from ``qos``. The scenario's own seed is drawn too.
    """
    low, high = sensor_groups
    if not 1 <= low <= high <= len(_GROUP_NAMES):
        raise ValueError(f"small_scenarios: sensor_groups must be within (1, 5), got {low, high}")
    if not 1 <= gateways[0] <= gateways[1] <= len(_GATEWAY_NAMES):
        raise ValueError(f"small_scenarios: gateways must be within (1, 2), got {gateways}")
    if max_sensors_per_group < 1:
        raise ValueError("small_scenarios: max_sensors_per_group must be at least 1")
    max_duration_ms = _ms(max_duration, "small_scenarios: max_duration")
    if max_duration_ms < 1000:
        raise ValueError(f"small_scenarios: max_duration must be at least 1s, got {max_duration!r}")
    if not qos or set(qos) - {0, 1}:
        raise ValueError(f"small_scenarios: qos must name levels 0 and/or 1, got {qos!r}")
    return _scenario(
        group_count=st.integers(low, high),
        gateway_count=st.integers(*gateways),
        sensors_per_group=st.integers(1, max_sensors_per_group),
        duration_ms=st.integers(2, max_duration_ms // 500).map(lambda k: k * 500),
        partition_count=st.integers(0, 2) if partitions else st.just(0),
        qos=st.sampled_from(sorted(set(qos))),
        link=link if link is not None else link_configs(),
        name=name,
    )


# --- fault schedules ------------------------------------------------------------------------
class FaultList(list[dict[str, Any]]):
    """A drawn fault schedule: a list of ``faults:`` entries whose ``repr`` is their YAML, so
    a shrunk counterexample shows the smallest schedule as it would be written in a scenario."""

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump({"faults": list(self)}, sort_keys=False, default_flow_style=None)

    def __repr__(self) -> str:
        # (as GeneratedScenario's: the comment lines survive Hypothesis's trailing comma)
        return "# fault schedule as YAML\n" + self.to_yaml().rstrip("\n") + "\n# end of faults"


#: the kinds :func:`fault_schedules` draws from by default
SCHEDULE_KINDS = (
    "partition",
    "isolate",
    "link_change",
    "crash",
    "restart",
    "pause",
    "disconnect",
    "broker_restart",
    "backhaul_outage",
    "storage_full",
    "duty_cycle",
    "clock_skew",
)
_LIFE_KINDS = {"crash", "restart", "pause", "disconnect", "broker_restart"}


def _roles(scenario_or_nodes: Scenario | Any) -> dict[str, list[str]]:
    if isinstance(scenario_or_nodes, Scenario):
        spec = scenario_or_nodes.spec
        return {
            "gateways": [gateway.name for gateway in spec.gateways],
            "devices": [device.name for device in scenario_or_nodes.devices],
            "broker": [spec.broker.name],
        }
    roles = {key: list(scenario_or_nodes.get(key, ())) for key in ("gateways", "devices")}
    broker = scenario_or_nodes.get("broker", "broker")
    roles["broker"] = [broker] if isinstance(broker, str) else list(broker)
    return roles


def fault_schedules(
    scenario_or_nodes: Scenario | Any,
    *,
    kinds: Sequence[str] = SCHEDULE_KINDS,
    max_faults: int = 4,
    max_time: int | float | str = "3s",
    max_duration: int | float | str = "1s",
    triggers: Sequence[str] = ("at", "after", "when"),
) -> st.SearchStrategy[FaultList]:
    """Fault schedules for a scenario's nodes: up to ``max_faults`` ``faults:`` entries of
    ``kinds``, each with a trigger drawn from ``triggers`` (``at`` up to ``max_time``, on a
    100 ms grid; ``after`` an earlier fault of the schedule; ``when`` a gateway subscribed or
    a node received some messages) and, for the kinds that last, a ``duration`` up to
    ``max_duration``. ``scenario_or_nodes`` is a :class:`Scenario` or a mapping with
    ``gateways``, ``devices`` and ``broker`` (names). Each node undergoes at most one fault
    of its life (crash, restart, pause, disconnect, broker_restart), always with a
    duration, so every drawn schedule can be applied. Use it as
    ``scenario.with_overrides({"faults": schedule})``, or ``run.schedule(fault)`` for each.
    """
    roles = _roles(scenario_or_nodes)
    unknown = set(kinds) - set(SCHEDULE_KINDS)
    if unknown:
        raise ValueError(f"fault_schedules: unknown kinds {sorted(unknown)}")
    if set(triggers) - {"at", "after", "when"} or not triggers:
        raise ValueError(f"fault_schedules: triggers are at, after and when, got {triggers!r}")
    gateways, devices, broker = roles["gateways"], roles["devices"], roles["broker"][0]
    usable = [
        kind
        for kind in kinds
        if (kind not in ("disconnect", "backhaul_outage", "storage_full") or gateways)
        and (kind not in ("duty_cycle", "clock_skew") or devices)
        and (kind not in ("crash", "restart", "pause") or gateways or broker)
    ]
    if not usable:
        raise ValueError("fault_schedules: no kind of fault fits these nodes")
    time_steps = max(1, _ms(max_time, "fault_schedules: max_time") // 100)
    duration_steps = max(1, _ms(max_duration, "fault_schedules: max_duration") // 100)
    nodes = [*devices, *gateways, broker]

    @st.composite
    def draw_schedule(draw: st.DrawFn) -> FaultList:
        count = draw(st.integers(0, max_faults))
        faults = FaultList()
        lives: set[str] = set()
        for index in range(count):
            kind = draw(st.sampled_from(usable))
            entry: dict[str, Any] = {"name": f"f{index}", "kind": kind}
            if kind in ("partition", "link_change"):
                first = draw(st.sampled_from(nodes))
                second = draw(st.sampled_from([n for n in nodes if n != first] or [broker]))
                if first == second:
                    continue
                entry["between"] = [first, second]
                if draw(st.booleans()):
                    entry["one_way"] = True
                if kind == "link_change":
                    entry["latency"] = f"{draw(st.integers(0, 20)) * 10}ms"
                    entry["loss"] = draw(_probability(0.5))
            elif kind == "isolate":
                entry["target"] = draw(st.sampled_from(nodes))
            elif kind in _LIFE_KINDS:
                if kind == "broker_restart":
                    target = broker
                    entry["persistence"] = draw(st.booleans())
                elif kind == "disconnect":
                    target = draw(st.sampled_from(gateways))
                else:
                    target = draw(st.sampled_from([*gateways, broker]))
                if target in lives:
                    continue
                lives.add(target)
                entry["target"] = target
            elif kind in ("backhaul_outage", "storage_full"):
                entry["target"] = draw(st.sampled_from(gateways))
            elif kind == "duty_cycle":
                entry["target"] = draw(st.sampled_from(devices))
                period = draw(st.integers(2, 10))
                entry["period"] = f"{period * 100}ms"
                entry["awake"] = f"{draw(st.integers(1, period - 1)) * 100}ms"
                entry["asleep"] = draw(st.sampled_from(["buffer", "drop"]))
            else:  # clock_skew
                entry["target"] = draw(st.sampled_from(devices))
                entry["drift_ppm"] = draw(st.integers(-1000, 1000))
            trigger = draw(st.sampled_from([t for t in triggers if t != "after" or faults]))
            if trigger == "at":
                entry["at"] = f"{draw(st.integers(0, time_steps - 1)) * 100}ms"
            elif trigger == "after":
                earlier = draw(st.sampled_from([fault["name"] for fault in faults]))
                delay = draw(st.integers(0, time_steps - 1)) * 100
                entry["after"] = {"fault": earlier, "delay": f"{delay}ms"}
            elif bool(gateways) and draw(st.booleans()):
                entry["when"] = {"subscribed": draw(st.sampled_from(gateways))}
            else:
                receiver = draw(st.sampled_from([*gateways, broker]))
                entry["when"] = {"received": receiver, "count": draw(st.integers(1, 20))}
            if kind in _LIFE_KINDS or draw(st.booleans()):
                entry["duration"] = f"{draw(st.integers(1, duration_steps)) * 100}ms"
            faults.append(entry)
        return faults

    return draw_schedule()
