"""Overrides by dotted path: ``network.default.latency=50ms``, ``devices[0].count=5``,
``gateways.gw-1.aggregate.count=20`` (lists of named items can be indexed by name)."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from pytest_edgesim.core.limits import Limits, check_data
from pytest_edgesim.errors import ScenarioError

_TOKEN = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def parse_path(path: str) -> list[str | int]:
    """``devices[0].publish.period`` -> ``["devices", 0, "publish", "period"]``."""
    parts: list[str | int] = []
    position = 0
    text = path.strip()
    while position < len(text):
        if text[position] == ".":
            position += 1
            continue
        match = _TOKEN.match(text, position)
        if not match:
            raise ScenarioError(f"override {path!r}: cannot read the path at {text[position:]!r}")
        token = match.group(1) if match.group(1) is not None else match.group(2)
        parts.append(int(token) if token.isdigit() else token)
        position = match.end()
    if not parts:
        raise ScenarioError(f"override {path!r}: the path is empty")
    return parts


def parse_value(text: str, limits: Limits | None = None) -> Any:
    """A command-line value, read as YAML (``0.05`` -> float, ``[a, b]`` -> list).

    Text that is not YAML stays a string (``a: b: c``), except where it starts as a list,
    a mapping or a quoted string: ``[sites/#`` is a list with its ``]`` missing, and
    reading it as the string "[sites/#" would hide the mistake (``ValueError``)."""
    from pytest_edgesim.core.scenario.yaml_source import load_value

    try:
        return load_value(text, limits) if text.strip() else ""
    except yaml.YAMLError as exc:
        if text.lstrip()[:1] in ("[", "{", "'", '"'):
            problem = getattr(exc, "problem", None) or "not valid YAML"
            raise ValueError(f"the value {text!r} is not valid YAML: {problem}") from None
        return text


def normalise(
    overrides: Mapping[str, Any] | Iterable[str], limits: Limits | None = None
) -> list[tuple[str, Any]]:
    """Dict of path -> value, or ``"path=value"`` strings (values parsed as YAML)."""
    if isinstance(overrides, Mapping):
        pairs = list(overrides.items())
        for path, value in pairs:
            # (a value from code may be anything: a generator, a cycle, a 5,000-deep dict)
            check_data(value, limits or Limits(), functools.partial(_where, path))
        return pairs
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, Iterable):
        hint = f" (for one override write [{overrides!r}])" if isinstance(overrides, str) else ""
        raise TypeError(
            "overrides must be a mapping of paths to values or a list of 'PATH=VALUE' "
            f"strings, got {type(overrides).__name__} {overrides!r}{hint}"
        )
    pairs = []
    for item in overrides:
        path, sep, value = str(item).partition("=")
        if not sep:
            raise ScenarioError(f"override {item!r}: expected PATH=VALUE, e.g. duration=30s")
        try:
            pairs.append((path.strip(), parse_value(value, limits)))
        except (ValueError, ScenarioError) as exc:
            raise ScenarioError(f"override {path.strip()!r}: {exc}") from None
    return pairs


def _where(path: object, sub: tuple[str | int, ...]) -> str:
    from pytest_edgesim.core.scenario.yaml_source import render_path

    return f"override {path!r}" + (f" at {render_path(sub)}" if sub else "")


def apply_overrides(raw: Mapping[str, Any], overrides: list[tuple[str, Any]]) -> dict[str, Any]:
    """A deep copy of ``raw`` with every override applied (intermediate mappings created)."""
    data = copy.deepcopy(dict(raw))
    for path, value in overrides:
        parts = parse_path(path)
        node: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = f"override {path!r}"
            if isinstance(node, list):
                index = _list_index(node, part, where, parts[:depth])
                if last:
                    node[index] = copy.deepcopy(value)
                else:
                    node = node[index]
            elif isinstance(node, dict):
                key = str(part)
                if last:
                    node[key] = copy.deepcopy(value)
                else:
                    if key not in node or node[key] is None:
                        node[key] = [] if isinstance(parts[depth + 1], int) else {}
                    node = node[key]
            else:
                raise ScenarioError(
                    f"{where}: {'.'.join(map(str, parts[:depth]))} is not a mapping or list"
                )
    return data


def _list_index(items: list[Any], part: str | int, where: str, before: list[str | int]) -> int:
    label = ".".join(map(str, before)) or "the list"
    if isinstance(part, int):
        if part >= len(items):
            raise ScenarioError(f"{where}: {label} has {len(items)} item(s)")
        return part
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return index
    names = [str(item.get("name")) for item in items if isinstance(item, dict)]
    raise ScenarioError(f"{where}: {label} has no item named {part!r} (names: {', '.join(names)})")
