"""Checks across fields, after the schema: names, references, topics, files.

Also expands ``count``: a device with ``count: N`` becomes N devices named from its
``name`` template (``{index}`` with an optional format spec such as ``{index:03d}``; without
it, ``-{index}`` is appended, zero-padded to the width of N-1).
"""

from __future__ import annotations

import difflib
import fnmatch
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_edgesim.core.scenario.schema import DeviceSpec, ReplayValue, ScenarioSpec
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


def _placeholders(template: str) -> list[tuple[str, str]]:
    try:
        return [
            (field, spec or "")
            for _, field, spec, _ in string.Formatter().parse(template)
            if field is not None
        ]
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


def expand_devices(
    spec: ScenarioSpec, where: Where, problems: list[str]
) -> tuple[ExpandedDevice, ...]:
    """Every device after ``count`` expansion. A bad topic is reported once per entry (its
    devices are still named, so the checks that follow can run); an entry whose name
    template is bad has no devices."""
    devices: list[ExpandedDevice] = []
    for position, device in enumerate(spec.devices):
        count = device.count
        template = device.name
        if count > 1 and "{index" not in template:
            width = len(str(count - 1))
            template = f"{template}-{{index:0{width}d}}"
        topic_is_bad = False
        for index in range(count):
            try:
                name = _fill(template, {"index"}, index=index)
            except (ValueError, KeyError) as exc:
                problems.append(f"{where(('devices', position, 'name'))}: {exc}")
                break
            topic = device.topic
            if not topic_is_bad:
                try:
                    topic = _fill(device.topic, {"name", "index"}, name=name, index=index)
                    problem = validate_topic_name(topic)
                except (ValueError, KeyError) as exc:
                    problem = str(exc)
                if problem:
                    problems.append(f"{where(('devices', position, 'topic'))}: {problem}")
                    topic_is_bad = True
            devices.append(ExpandedDevice(name, index, device, topic))
    return tuple(devices)


def _suggest(word: str, names: list[str]) -> str:
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _names_list(names: list[str]) -> str:
    shown = names if len(names) <= 8 else [*names[:8], f"... {len(names) - 8} more"]
    return ", ".join(shown)


def check_references(
    spec: ScenarioSpec,
    devices: tuple[ExpandedDevice, ...],
    where: Where,
    problems: list[str],
    base_dir: Path | None,
) -> tuple[str, ...]:
    """Unique names, patterns that match nodes, topics, forward targets, replay files."""
    named: list[tuple[str, Path_]] = [
        (spec.broker.name, ("broker", "name")),
        (spec.cloud.name, ("cloud", "name")),
    ]
    # name the ``devices`` entry each device came from (an entry with a bad template has none)
    entries = {id(entry): position for position, entry in enumerate(spec.devices)}
    named += [(d.name, ("devices", entries[id(d.spec)], "name")) for d in devices]
    every_device_named = len(devices) == sum(entry.count for entry in spec.devices)
    named += [(g.name, ("gateways", i, "name")) for i, g in enumerate(spec.gateways)]
    seen: dict[str, Path_] = {}
    for name, path in named:
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
            _check_replay(device.value, ("devices", i, "value"), where, problems, base_dir)
    if spec.broker.config is not None:
        problem = config_file_problem(spec.broker.config, base_dir)
        if problem:
            problems.append(f"{where(('broker', 'config'))}: {problem}")
    _check_faults(spec, where, problems)
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


def _check_faults(spec: ScenarioSpec, where: Where, problems: list[str]) -> None:
    """A scheduled fault names a gateway or the broker, within the run, and one it can do."""
    gateways = [gateway.name for gateway in spec.gateways]
    for i, fault in enumerate(spec.faults):
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


def _check_replay(
    value: ReplayValue, path: Path_, where: Where, problems: list[str], base_dir: Path | None
) -> None:
    from pytest_edgesim.core.models.values import read_replay_column
    from pytest_edgesim.errors import ScenarioError

    try:
        read_replay_column(value, base_dir)
    except ScenarioError as exc:
        for problem in exc.problems:
            field, _, message = problem.partition(": ")
            sub = field.split(".", 1)[-1] if "." in field else "file"
            problems.append(f"{where((*path, sub))}: {message}")
