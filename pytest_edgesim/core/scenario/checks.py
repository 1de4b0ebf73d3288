"""Checks across fields, after the schema: names, references, topics, files.

Also expands ``count``: a device with ``count: N`` becomes N devices named from its
``name`` template (``{index}`` with an optional format spec such as ``{index:03d}``; without
it, ``-{index}`` is appended, zero-padded to the width of N-1).
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_edgesim.core.limits import Limits
from pytest_edgesim.core.scenario.schema import DeviceSpec, FaultSpec, ReplayValue, ScenarioSpec
from pytest_edgesim.core.scenario.yaml_source import Path_
from pytest_edgesim.core.topics import validate_topic_filter, validate_topic_name

Where = Callable[[Path_], str]


@dataclass(frozen=True, slots=True)
class ExpandedDevice:
    """One concrete device: its name, its index within its entry, its spec, its topic."""

    name: str
    index: int
    spec: DeviceSpec
    topic: str


@functools.lru_cache(maxsize=4096)
def _placeholders(template: str) -> tuple[tuple[str, str], ...]:
    try:
        return tuple(
            (field, spec or "")
            for _, field, spec, _ in string.Formatter().parse(template)
            if field is not None
        )
    except ValueError as exc:
        raise ValueError(f"is not a valid template: {exc}") from None


def _fill(template: str, allowed: set[str], **values: object) -> str:
    for field, spec in _placeholders(template):
        if field not in allowed:
            known = ", ".join("{" + name + "}" for name in sorted(allowed))
            raise ValueError(f"unknown placeholder {{{field}}} (use {known})")
        try:
            format(values[field], spec)
        except ValueError:
            kind = "a number" if isinstance(values[field], int) else "a name"
            example = "{index:03d} pads to three digits" if kind == "a number" else "{name}"
            raise ValueError(
                f"{{{field}:{spec}}}: {spec!r} is not a format for {kind} (e.g. {example})"
            ) from None
    return template.format(**values)


def _name_template(device: DeviceSpec) -> str:
    if device.count > 1 and "{index" not in device.name:
        width = len(str(device.count - 1))
        return f"{device.name}-{{index:0{width}d}}"
    return device.name


def device_names(spec: ScenarioSpec, where: Where, problems: list[str]) -> list[list[str]]:
    """The names of every ``devices`` entry's devices after ``count`` expansion (an entry
    whose name template is bad has none), checking every device's topic as it goes. A bad
    topic is reported once per entry. Linear in the devices, and nothing per device is kept
    but its name: a fleet of a million is validated without building a million objects."""
    entries: list[list[str]] = []
    for position, device in enumerate(spec.devices):
        names: list[str] = []
        entries.append(names)
        template = _name_template(device)
        try:
            _fill(template, {"index"}, index=0)
            names.extend(template.format(index=index) for index in range(device.count))
        except (ValueError, KeyError, OverflowError) as exc:
            problems.append(f"{where(('devices', position, 'name'))}: {exc}")
            names.clear()
            continue
        problem = _first_topic_problem(device, names)
        if problem:
            problems.append(f"{where(('devices', position, 'topic'))}: {problem}")
    return entries


def _first_topic_problem(device: DeviceSpec, names: list[str]) -> str | None:
    try:
        _fill(device.topic, {"name", "index"}, name=names[0], index=0)
        if not _placeholders(device.topic):
            return validate_topic_name(device.topic)
        topic_format = device.topic.format
        for index, name in enumerate(names):
            problem = validate_topic_name(topic_format(name=name, index=index))
            if problem:
                return problem
    except (ValueError, KeyError, OverflowError) as exc:
        return str(exc)
    return None


def expand_devices(spec: ScenarioSpec, names: list[list[str]]) -> tuple[ExpandedDevice, ...]:
    """Every device after ``count`` expansion (from :func:`device_names` of a valid
    scenario): its name, index, spec and topic."""
    devices: list[ExpandedDevice] = []
    for device, entry_names in zip(spec.devices, names, strict=True):
        topic_format = device.topic.format
        devices += [
            ExpandedDevice(name, index, device, topic_format(name=name, index=index))
            for index, name in enumerate(entry_names)
        ]
    return tuple(devices)


def _twice(names: list[str]) -> str:
    met: set[str] = set()
    for name in names:
        if name in met:
            return name
        met.add(name)
    raise AssertionError("no name is used twice")


def _suggest(word: str, names: list[str]) -> str:
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _names_list(names: list[str]) -> str:
    shown = names if len(names) <= 8 else [*names[:8], f"... {len(names) - 8} more"]
    return ", ".join(shown)


def check_references(
    spec: ScenarioSpec,
    device_names: list[list[str]],
    where: Where,
    problems: list[str],
    base_dir: Path | None,
    limits: Limits | None = None,
) -> tuple[str, ...]:
    """Unique names, patterns that match nodes, topics, forward targets, replay files."""
    named: list[tuple[str, Path_]] = [
        (spec.broker.name, ("broker", "name")),
        (spec.cloud.name, ("cloud", "name")),
    ]
    # name the ``devices`` entry each device came from (an entry with a bad template has none)
    every_device_named = all(
        len(names) == entry.count for names, entry in zip(device_names, spec.devices, strict=True)
    )
    named += [(g.name, ("gateways", i, "name")) for i, g in enumerate(spec.gateways)]
    seen: dict[str, Path_] = {}
    for name, path in named[:2]:
        seen.setdefault(name, path)
    for position, names in enumerate(device_names):
        path = ("devices", position, "name")
        fresh = dict.fromkeys(names, path)
        clashing = seen.keys() & fresh.keys()
        if clashing or len(fresh) < len(names):  # said once per entry, not once per device
            twice = next(name for name in names if name in clashing) if clashing else _twice(names)
            problems.append(f"{where(path)}: the node name {twice!r} is used twice")
            for name in clashing:
                del fresh[name]
        seen.update(fresh)
    for name, path in named[2:]:
        if name in seen:
            problems.append(f"{where(path)}: the node name {name!r} is used twice")
        seen.setdefault(name, path)
    node_names = list(seen)

    def check_pattern(pattern: str, path: Path_) -> None:
        if not every_device_named:
            return  # the pattern may name a device whose name could not be made
        if not any(n == pattern or fnmatch.fnmatchcase(n, pattern) for n in node_names):
            problems.append(
                f"{where(path)}: {pattern!r} matches no node{_suggest(pattern, node_names)}; "
                f"nodes are: {_names_list(node_names)}"
            )

    for i, rule in enumerate(spec.network.links):
        check_pattern(rule.from_, ("network", "links", i, "from"))
        check_pattern(rule.to, ("network", "links", i, "to"))
    for i, partition in enumerate(spec.network.partitions):
        for side_index, side in enumerate(partition.between):
            for pattern in side:
                check_pattern(pattern, ("network", "partitions", i, "between", side_index))
    for i, partition in enumerate(spec.network.partitions):
        if every_device_named:
            _check_sides(
                partition.between, node_names, ("network", "partitions", i), where, problems
            )
    for i, gateway in enumerate(spec.gateways):
        if gateway.forward.to == gateway.name:
            problems.append(
                f"{where(('gateways', i, 'forward', 'to'))}: a gateway cannot forward to itself "
                f"({gateway.name!r}); name the cloud or another gateway"
            )
        elif gateway.forward.to not in seen and every_device_named:
            problems.append(
                f"{where(('gateways', i, 'forward', 'to'))}: {gateway.forward.to!r} is not a node"
                f"{_suggest(gateway.forward.to, node_names)}"
            )
        for j, subscription in enumerate(gateway.subscribe):
            problem = validate_topic_filter(subscription.filter)
            if problem:
                problems.append(f"{where(('gateways', i, 'subscribe', j))}: {problem}")
        try:
            topic = _fill(gateway.forward.topic, {"gateway"}, gateway=gateway.name)
            problem = validate_topic_name(topic)
            if problem:
                problems.append(f"{where(('gateways', i, 'forward', 'topic'))}: {problem}")
        except (ValueError, KeyError) as exc:
            problems.append(f"{where(('gateways', i, 'forward', 'topic'))}: {exc}")
    for i, device in enumerate(spec.devices):
        if isinstance(device.value, ReplayValue):
            _check_replay(device.value, ("devices", i, "value"), where, problems, base_dir, limits)
    if spec.broker.config is not None:
        problem = config_file_problem(spec.broker.config, base_dir)
        if problem:
            problems.append(f"{where(('broker', 'config'))}: {problem}")
    device_list = [name for names in device_names for name in names]
    _check_faults(spec, where, problems, device_list)
    _check_swarm(spec, where, problems)
    return tuple(node_names)


def config_file_problem(config: str, base_dir: Path | None) -> str | None:
    """Why the broker's configuration file cannot be used, or None. It is opened to see that
    it can be read; its content is never quoted (it may hold secrets)."""
    path = Path(base_dir or ".", config)
    where = f"{config!r}" if Path(config) == path else f"{config!r} ({path})"
    if not path.exists():
        return f"the broker configuration {where} does not exist"
    if not path.is_file():
        return f"the broker configuration {where} is not a file"
    try:
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as error:
        return f"the broker configuration {where} cannot be read: {error.strerror or error}"
    return None


def _check_faults(
    spec: ScenarioSpec, where: Where, problems: list[str], node_names: list[str] | None = None
) -> None:
    """A scheduled fault names nodes of the scenario, within the run, and one it can do."""
    gateways = [gateway.name for gateway in spec.gateways]
    named: dict[str, int] = {}
    for i, fault in enumerate(spec.faults):
        if fault.name is not None:
            if fault.name in named:
                problems.append(
                    f"{where(('faults', i, 'name'))}: {fault.name!r} already names "
                    f"faults[{named[fault.name]}]; each fault's name is its own"
                )
            named.setdefault(fault.name, i)
    devices = node_names or []
    for i, fault in enumerate(spec.faults):
        if fault.action is not None:
            _check_first_form(spec, fault, i, where, problems, gateways)
            continue
        _check_fault(spec, fault, i, where, problems, gateways, devices, named)


def _check_first_form(
    spec: ScenarioSpec,
    fault: FaultSpec,
    i: int,
    where: Where,
    problems: list[str],
    gateways: list[str],
) -> None:
    assert fault.at is not None and fault.target is not None
    if fault.target == spec.broker.name:
        if fault.action in ("disconnect", "reconnect"):
            problems.append(
                f"{where(('faults', i, 'action'))}: the broker cannot {fault.action} (a "
                "gateway's connection to it can)"
            )
    elif fault.target not in gateways:
        problems.append(
            f"{where(('faults', i, 'target'))}: {fault.target!r} is not a gateway or the "
            f"broker{_suggest(fault.target, [*gateways, spec.broker.name])}; faults can "
            f"target: {_names_list([*gateways, spec.broker.name])}"
        )
    if fault.at >= spec.duration:
        problems.append(
            f"{where(('faults', i, 'at'))}: {fault.at / 1e6:g}s is not before the end of "
            f"the run (duration {spec.duration / 1e6:g}s)"
        )


def _check_fault(
    spec: ScenarioSpec,
    fault: FaultSpec,
    i: int,
    where: Where,
    problems: list[str],
    gateways: list[str],
    devices: list[str],
    named: dict[str, int],
) -> None:
    from pytest_edgesim.core.fault_kinds import fault_kind, fault_problems

    wrong = fault_problems(fault)
    for field, message in wrong:
        problems.append(f"{where(('faults', i, field))}: {message}")
    if wrong:
        return
    kind = fault_kind(fault.fault_kind)
    nodes = [spec.broker.name, spec.cloud.name, *devices, *gateways]
    if fault.at is not None and fault.at >= spec.duration:
        problems.append(
            f"{where(('faults', i, 'at'))}: {fault.at / 1e6:g}s is not before the end of "
            f"the run (duration {spec.duration / 1e6:g}s)"
        )
    if fault.after is not None:
        if fault.after.fault not in named:
            problems.append(
                f"{where(('faults', i, 'after', 'fault'))}: no fault is named "
                f"{fault.after.fault!r}{_suggest(fault.after.fault, list(named))}"
            )
        elif named[fault.after.fault] == i:
            problems.append(
                f"{where(('faults', i, 'after', 'fault'))}: a fault cannot follow itself"
            )
    if fault.when is not None:
        event, subject = fault.when.event
        for node in subject.split("->") if event == "dropped" else [subject]:
            if node.strip() not in nodes:
                problems.append(
                    f"{where(('faults', i, 'when', event))}: {node.strip()!r} is not a node"
                    f"{_suggest(node.strip(), nodes)}"
                )
    if fault.target is not None:
        choices = {
            "gateway": gateways,
            "broker": [spec.broker.name],
            "device": devices,
            "node": [n for n in nodes if n != spec.cloud.name],
        }[kind.target]
        matched = [n for n in choices if fnmatch.fnmatchcase(n, fault.target)]
        if not matched:
            problems.append(
                f"{where(('faults', i, 'target'))}: {fault.target!r} is not a {kind.target} of "
                f"the scenario{_suggest(fault.target, choices)} ({kind.name} faults target "
                f"{_names_list(choices) if choices else f'a {kind.target}, and there is none'})"
            )
        elif kind.name == "backhaul_outage" and fault.target in gateways:
            forward_to = next(g.forward.to for g in spec.gateways if g.name == fault.target)
            if forward_to not in nodes:
                problems.append(
                    f"{where(('faults', i, 'target'))}: {fault.target!r} forwards to "
                    f"{forward_to!r}, which is not a node: it has no uplink to cut"
                )
    if fault.between is not None:
        _check_sides(fault.between, nodes, ("faults", i), where, problems)
        for side_index, side in enumerate(fault.between):
            if not any(fnmatch.fnmatchcase(n, p) for n in nodes for p in side):
                problems.append(
                    f"{where(('faults', i, 'between', side_index))}: {side!r} matches no node"
                )
        if fault.bridge is not None and fault.bridge not in nodes:
            problems.append(
                f"{where(('faults', i, 'bridge'))}: {fault.bridge!r} is not a node"
                f"{_suggest(fault.bridge, nodes)}"
            )


def _check_swarm(spec: ScenarioSpec, where: Where, problems: list[str]) -> None:
    """Every kind a ``swarm:`` section names is in the catalogue; its window is in the run."""
    from pytest_edgesim.core.swarm import swarm_kinds

    swarm = spec.swarm
    if swarm is None:
        return
    known = list(swarm_kinds())
    for name in swarm.kinds or {}:
        if name not in known:
            problems.append(
                f"{where(('swarm', 'kinds', name))}: unknown swarm kind {name!r}"
                f"{_suggest(name, known)}; the catalogue has: {', '.join(known)}"
            )
    if swarm.start >= spec.duration:
        problems.append(
            f"{where(('swarm', 'start'))}: {swarm.start / 1e6:g}s is not before the end of "
            f"the run (duration {spec.duration / 1e6:g}s)"
        )


def _check_sides(
    between: tuple[list[str], list[str]],
    node_names: list[str],
    path: Path_,
    where: Where,
    problems: list[str],
) -> None:
    """A partition cuts one group of nodes from another: no node may be on both sides."""
    if between[0] == between[1]:
        problems.append(f"{where((*path, 'between'))}: both sides are {between[0]!r}")
        return
    first, second = (
        {name for name in node_names if any(fnmatch.fnmatchcase(name, p) for p in side)}
        for side in between
    )
    both = [name for name in node_names if name in first and name in second]
    if both:
        problems.append(
            f"{where((*path, 'between'))}: {both[0]!r} is on both sides"
            + (f" (and {len(both) - 1} more)" if len(both) > 1 else "")
            + "; a node cannot be cut off from itself"
        )


def _check_replay(
    value: ReplayValue,
    path: Path_,
    where: Where,
    problems: list[str],
    base_dir: Path | None,
    limits: Limits | None,
) -> None:
    from pytest_edgesim.core.models.values import read_replay_column
    from pytest_edgesim.errors import ScenarioError

    try:
        read_replay_column(value, base_dir, limits.file_bytes if limits else None)
    except ScenarioError as exc:
        for problem in exc.problems:
            field, _, message = problem.partition(": ")
            sub = field.split(".", 1)[-1] if "." in field else "file"
            problems.append(f"{where((*path, sub))}: {message}")
