"""Scenarios: load (YAML or dict), validate, override; then hand to ``Simulation``.

    scenario = Scenario.from_yaml("scenarios/basic.yaml")
    faster = scenario.with_overrides({"network.default.latency": "5ms"})

Every mistake in a scenario raises :class:`~pytest_edgesim.errors.ScenarioError`, whose
lines each name the file, the line and the field path, and say what would be right.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pytest_edgesim.core.files import FileProblem, read_text_file
from pytest_edgesim.core.limits import Limits, check_data, resolve_limits
from pytest_edgesim.core.scenario.checks import (
    ExpandedDevice,
    check_references,
    device_names,
    expand_devices,
)
from pytest_edgesim.core.scenario.overrides import apply_overrides, normalise
from pytest_edgesim.core.scenario.problems import format_validation_error
from pytest_edgesim.core.scenario.schema import GatewaySpec, ScenarioSpec
from pytest_edgesim.core.scenario.yaml_source import Path_, line_of, load_yaml, render_path
from pytest_edgesim.errors import ScenarioError

__all__ = ["ExpandedDevice", "Limits", "Scenario", "ScenarioSpec"]

_FILE_LIMIT_HINT = Limits.hint("file_bytes")


class Scenario:
    """A validated scenario. Immutable: ``with_overrides`` returns a new one."""

    def __init__(
        self,
        raw: Mapping[str, Any],
        *,
        source: str | None = None,
        base_dir: Path | None = None,
        lines: dict[Path_, int] | None = None,
        label: str | None = None,
        limits: Limits | None = None,
        owned: bool = False,
    ):
        self.limits = resolve_limits(limits)
        self.source = source
        self.base_dir = base_dir
        label = label or source or "<dict>"
        where_lines = lines or {}

        def where(path: Path_) -> str:
            line = line_of(path, where_lines) if where_lines else None
            location = f"{label}:{line}" if line is not None else label
            return f"{location}: {render_path(path)}"

        try:
            check_data(raw, self.limits, where)
            # (data this class has just made, from a file or an override, is not copied)
            self.raw: dict[str, Any] = dict(raw) if owned else copy.deepcopy(dict(raw))
        except ScenarioError as exc:
            raise ScenarioError(sorted(exc.problems, key=lambda p: _line_in(p, label))) from None
        try:
            self.spec = ScenarioSpec.model_validate(self.raw)
        except ValidationError as exc:
            raise ScenarioError(
                format_validation_error(exc, ScenarioSpec, self.raw, label, where_lines)
            ) from None
        _check_fleet_size(self.spec, self.limits, where)
        problems: list[str] = []
        self._device_names = device_names(self.spec, where, problems)
        # independent problems are all reported at once, in the order of the file
        names = check_references(
            self.spec, self._device_names, where, problems, base_dir, self.limits
        )
        if problems:
            raise ScenarioError(sorted(problems, key=lambda problem: _line_in(problem, label)))
        gateways = [g.name for g in self.spec.gateways]
        self.node_names = (
            self.spec.broker.name,
            self.spec.cloud.name,
            *(name for names in self._device_names for name in names),
            *gateways,
        )
        assert len(names) == len(self.node_names)

    @functools.cached_property
    def devices(self) -> tuple[ExpandedDevice, ...]:
        """Every device after ``count`` expansion (made when first asked for: validating a
        fleet needs only its names)."""
        return expand_devices(self.spec, self._device_names)

    @property
    def gateways(self) -> tuple[GatewaySpec, ...]:
        """Every gateway, as the scenario declares it (a gateway is one node: no ``count``)."""
        return tuple(self.spec.gateways)

    # --- constructors ----------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], *, limits: Limits | None = None) -> Scenario:
        """Load a scenario file (``edgesim: 1``), within ``limits`` (default: ``Limits()``
        with any ``EDGESIM_LIMIT_*`` environment variable applied)."""
        limits = resolve_limits(limits)
        file = Path(path)
        try:
            text = read_text_file(file, limits.file_bytes, limit_hint=_FILE_LIMIT_HINT)
        except FileProblem as exc:
            if exc.message == "no such file":
                raise ScenarioError(f"{path}: no such scenario file") from None
            line = f":{exc.line}" if exc.line is not None else ""
            raise ScenarioError(f"{path}{line}: the scenario file {exc.message}") from None
        data, lines = load_yaml(text, str(path), limits)
        return cls(
            data,
            source=str(path),
            base_dir=file.resolve().parent,
            lines=lines,
            limits=limits,
            owned=True,
        )

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        base_dir: str | Path | None = None,
        limits: Limits | None = None,
    ) -> Scenario:
        """A scenario from a dict shaped like the YAML (e.g. from ``yaml.safe_load`` or code)."""
        if not isinstance(data, Mapping):
            raise ScenarioError(f"<dict>: a scenario must be a mapping, got {type(data).__name__}")
        return cls(
            data, base_dir=Path(base_dir) if base_dir is not None else Path.cwd(), limits=limits
        )

    def notes(self) -> list[str]:
        """What is allowed but usually a mistake (a subscription no published topic matches);
        ``edgesim validate`` and ``edgesim run`` print these."""
        from pytest_edgesim.core.scenario.notes import scenario_notes

        topics = (
            entry.topic.format(name=name, index=index)
            for entry, names in zip(self.spec.devices, self._device_names, strict=True)
            for index, name in enumerate(names)
        )
        return scenario_notes(self.spec, topics)

    def with_gateways(self, implementation: str, *, mode: str | None = None) -> Scenario:
        """A new scenario in which every gateway has ``implementation``: the same system
        over another implementation of its gateways.

        ``implementation`` is ``python_model`` (the project's gateway), ``python`` (each
        gateway's own ``logic:`` in this process), ``docker``, or ``docker:lockstep`` /
        ``docker:mqtt`` (a Docker gateway in that mode). ``mode`` (``mqtt`` or ``lockstep``)
        is the ``docker.mode`` of each Docker gateway whose scenario leaves its mode open; a
        mode the scenario sets is kept, unless ``implementation`` names one.
        ``scenario.with_gateways("docker", mode="lockstep")`` runs the gateway image in
        virtual time, and should give the Python model's trace digest.
        """
        implementation, _, named_mode = implementation.partition(":")
        if implementation not in ("python_model", "python", "docker") or (
            named_mode and implementation != "docker"
        ):
            raise ScenarioError(
                "with_gateways: implementation must be 'python_model', 'python', 'docker', "
                f"'docker:lockstep' or 'docker:mqtt', got {implementation!r}"
            )
        if named_mode:
            mode = named_mode
        if mode not in (None, "mqtt", "lockstep"):
            raise ScenarioError(f"with_gateways: mode must be 'mqtt' or 'lockstep', got {mode!r}")
        overrides: dict[str, Any] = {}
        for index, gateway in enumerate(self.spec.gateways):
            overrides[f"gateways.{index}.implementation"] = implementation
            mode_is_open = gateway.docker is None or "mode" not in gateway.docker.model_fields_set
            if implementation == "docker" and mode is not None and (mode_is_open or named_mode):
                overrides[f"gateways.{index}.docker.mode"] = mode
        return self.with_overrides(overrides)

    def with_overrides(self, overrides: Mapping[str, Any] | Iterable[str]) -> Scenario:
        """A new scenario with fields replaced by dotted path.

        ``{"network.default.latency": "50ms", "devices[0].count": 5}`` or a list of
        ``"path=value"`` strings (values read as YAML). Problems name the override.
        """
        # an override's problem names the scenario it was applied to, then the override
        where = f"{self.source}: " if self.source else ""
        try:
            pairs = normalise(overrides, self.limits)
            if not pairs:
                return self
            data = apply_overrides(self.raw, pairs)
        except ScenarioError as exc:
            raise ScenarioError([where + problem for problem in exc.problems]) from None
        label = "override " + ", ".join(repr(path) for path, _ in pairs)
        try:
            return Scenario(
                data,
                source=self.source,
                base_dir=self.base_dir,
                label=label,
                limits=self.limits,
                owned=True,
            )
        except ScenarioError as exc:
            problems = []
            for problem in exc.problems:
                # name the override that caused it when the path says so
                _, _, rest = problem.partition(": ")
                culprit = next((p for p, _ in pairs if rest.startswith(_canonical(p) + ":")), None)
                if culprit:
                    cause = rest[len(_canonical(culprit)) + 2 :]
                    problems.append(f"{where}override {culprit!r}: {cause}")
                else:
                    problems.append(where + problem)
            raise ScenarioError(problems) from None

    # --- views -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        if self.spec.name:
            return self.spec.name
        if self.source:
            return Path(self.source).stem
        return "scenario"

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def duration_ticks(self) -> int:
        return self.spec.duration

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)

    def to_yaml(self) -> str:
        """The scenario as YAML that loads back to an equal scenario (fields as written)."""
        return yaml.dump(
            _TopLevel(self.raw),
            Dumper=_ReadableDumper,
            sort_keys=False,
            width=100,
            allow_unicode=True,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scenario) and self.raw == other.raw

    def __hash__(self) -> int:  # scenarios are used as values; hash by content
        return hash(yaml.safe_dump(self.raw, sort_keys=True))

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"<Scenario {self.name!r}{where}: {len(self.node_names)} nodes>"


class _TopLevel(dict):
    """The root mapping: always written in block style."""


class _ReadableDumper(yaml.SafeDumper):
    """Block style, except mappings and lists of plain values, which go on one line
    (``publish: {mode: periodic, period: 1s}``), as people write scenario files."""


def _represent_mapping(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    flow = not isinstance(data, _TopLevel) and _flat(data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _represent_sequence(dumper: yaml.SafeDumper, data: list[Any] | tuple[Any, ...]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_flat(data))


def _flat(values: Iterable[Any]) -> bool:
    return not any(isinstance(value, (dict, list, tuple)) for value in values)


_ReadableDumper.add_representer(_TopLevel, _represent_mapping)
_ReadableDumper.add_representer(dict, _represent_mapping)
_ReadableDumper.add_representer(list, _represent_sequence)
_ReadableDumper.add_representer(tuple, _represent_sequence)


def _check_fleet_size(spec: ScenarioSpec, limits: Limits, where: Callable[[Path_], str]) -> None:
    """Refuse more devices than ``limits.devices`` before any is named."""
    total = 0
    for position, entry in enumerate(spec.devices):
        total += entry.count
        if total > limits.devices:
            raise ScenarioError(
                f"{where(('devices', position, 'count'))}: "
                + limits.exceeded("devices", f"the scenario has {total:,} devices by this entry")
            )


def _line_in(problem: str, label: str) -> int:
    """The line number a problem names (``file.yaml:12: ...``), 0 for none."""
    line = problem[len(label) :].partition(": ")[0].lstrip(":")
    return int(line) if line.isdigit() else 0


def _canonical(path: str) -> str:
    from pytest_edgesim.core.scenario.overrides import parse_path

    return render_path(tuple(parse_path(path)))
