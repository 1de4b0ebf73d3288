"""Build a scenario in code, without YAML.

    scenario = (
        ScenarioBuilder("demo", seed=1, duration="60s")
        .sensors("temp", count=3, topic="sites/{name}/t", period="1s")
        .gateway("gw", subscribe=["sites/#"], aggregate={"count": 10})
        .link("temp-*", "broker", latency="20ms", loss=0.02)
        .partition("gw", "cloud", start="20s", end="35s")
        .build()
    )

Each call adds to a plain dict shaped like the YAML file; ``build()`` hands it to
:class:`~pytest_edgesim.core.scenario.Scenario`, so a built scenario is validated exactly as a
file is and its problems are the same :class:`~pytest_edgesim.errors.ScenarioError`, naming
the builder call that wrote the field. Values are what the YAML takes: ``"20ms"`` or a
number of seconds, ``0.02`` or a loss mapping, and so on (docs/scenario-reference.md).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_edgesim.core.scenario import Scenario
from pytest_edgesim.errors import ScenarioError

__all__ = ["ScenarioBuilder"]

_UNSET: Any = object()


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that were passed (``_UNSET`` ones left out), in call order."""
    return {key: value for key, value in fields.items() if value is not _UNSET}


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so the dict is exactly what YAML would load."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class ScenarioBuilder:
    """A fluent builder for :class:`~pytest_edgesim.core.scenario.Scenario`.

    Every method returns the builder. ``build()`` validates and returns the scenario;
    ``to_dict()`` returns the dict it would validate (the YAML's shape).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        seed: int = _UNSET,
        duration: int | float | str = _UNSET,
        description: str = _UNSET,
        base_dir: str | Path | None = None,
    ):
        self._data: dict[str, Any] = {"edgesim": 1}
        self._data.update(_given(name=name, description=description, seed=seed))
        if duration is not _UNSET:
            self._data["duration"] = duration
        self._base_dir = Path(base_dir) if base_dir is not None else None
        #: (field path prefix, the call that wrote it), for error messages
        self._calls: list[tuple[str, str]] = []

    # --- nodes ------------------------------------------------------------------------------
    def sensors(
        self,
        name: str,
        count: int = 1,
        *,
        topic: str = _UNSET,
        period: int | float | str = _UNSET,
        jitter: int | float | str = _UNSET,
        offset: int | float | str = _UNSET,
        rate: int | float | str = _UNSET,
        start: int | float | str = _UNSET,
        stop: int | float | str = _UNSET,
        publish: dict[str, Any] = _UNSET,
        value: float | dict[str, Any] = _UNSET,
        qos: int = _UNSET,
        retain: bool = _UNSET,
        payload_bytes: int = _UNSET,
    ) -> ScenarioBuilder:
        """``count`` sensors named from ``name`` (``temp`` -> ``temp-0``, ``temp-1``, ...).

        Periodic publishing takes ``period``, ``jitter`` and ``offset``; ``rate`` (e.g.
        ``"2/s"``) makes it Poisson. ``start``/``stop`` bound either mode. ``publish`` is the
        full mapping instead. ``value`` is a number (constant) or a value-model mapping.
        """
        device = _given(name=name)
        if count != 1:
            device["count"] = count
        device.update(_given(topic=topic, qos=qos, retain=retain, payload_bytes=payload_bytes))
        timing = _given(period=period, jitter=jitter, offset=offset)
        bounds = _given(start=start, stop=stop)
        if publish is not _UNSET:
            if timing or rate is not _UNSET or bounds:
                raise ScenarioError(
                    f"ScenarioBuilder.sensors({name!r}): give either publish={{...}} or "
                    "period/jitter/offset/rate/start/stop, not both"
                )
            device["publish"] = publish
        elif rate is not _UNSET:
            if timing:
                raise ScenarioError(
                    f"ScenarioBuilder.sensors({name!r}): rate= makes publishing Poisson; "
                    f"{', '.join(timing)} belong(s) to periodic publishing"
                )
            device["publish"] = {"mode": "poisson", "rate": rate, **bounds}
        elif timing or bounds:
            device["publish"] = {"mode": "periodic", **timing, **bounds}
        if value is not _UNSET:
            device["value"] = value
        return self._append("devices", device, f".sensors({name!r})")

    def sensor(self, name: str, **fields: Any) -> ScenarioBuilder:
        """One sensor called exactly ``name`` (``sensors(name, count=1, ...)``)."""
        self.sensors(name, 1, **fields)
        key, _ = self._calls[-1]
        self._calls[-1] = (key, f".sensor({name!r})")  # (problems name the call the user made)
        return self

    def gateway(
        self,
        name: str,
        *,
        subscribe: str | Sequence[str | dict[str, Any]],
        aggregate: dict[str, Any] | None = _UNSET,
        processing_delay: int | float | str | dict[str, Any] = _UNSET,
        queue: dict[str, Any] = _UNSET,
        forward: dict[str, Any] = _UNSET,
        forward_to: str = _UNSET,
        forward_topic: str = _UNSET,
        forward_qos: int = _UNSET,
        implementation: str = _UNSET,
        docker: dict[str, Any] = _UNSET,
        logic: str | type = _UNSET,
        config: dict[str, Any] = _UNSET,
        session: dict[str, Any] = _UNSET,
    ) -> ScenarioBuilder:
        """A gateway subscribing to ``subscribe`` (filters), aggregating and forwarding.

        ``forward_to``/``forward_topic``/``forward_qos`` fill ``forward`` field by field.
        ``logic`` (``"module:Name"``, or the class itself) makes it your own logic, run in
        this process unless ``implementation`` says otherwise; ``config`` is its settings.
        ``session`` (``{"clean": False, "keepalive": "2s"}``) models its MQTT session.
        """
        if logic is not _UNSET and not isinstance(logic, str):
            logic = f"{logic.__module__}:{logic.__qualname__}"
            if implementation is _UNSET:
                implementation = "python"
        elif logic is not _UNSET and implementation is _UNSET:
            implementation = "python"
        gateway = _given(name=name, implementation=implementation, subscribe=subscribe)
        gateway.update(_given(logic=logic, config=config))
        gateway.update(_given(aggregate=aggregate, processing_delay=processing_delay, queue=queue))
        forward_fields = _given(to=forward_to, topic=forward_topic, qos=forward_qos)
        if forward is not _UNSET or forward_fields:
            gateway["forward"] = {**(forward if forward is not _UNSET else {}), **forward_fields}
        gateway.update(_given(session=session, docker=docker))
        return self._append("gateways", gateway, f".gateway({name!r})")

    def broker(
        self,
        name: str = _UNSET,
        *,
        processing_delay: int | float | str | dict[str, Any] = _UNSET,
        retry_interval: int | float | str = _UNSET,
        implementation: str = _UNSET,
        docker: dict[str, Any] = _UNSET,
        config: str = _UNSET,
        max_inflight_messages: int = _UNSET,
        max_queued_messages: int = _UNSET,
        queue_qos0_messages: bool = _UNSET,
    ) -> ScenarioBuilder:
        """Settings of the broker (there is always one, called ``broker`` by default)."""
        fields = _given(
            name=name,
            implementation=implementation,
            processing_delay=processing_delay,
            retry_interval=retry_interval,
            max_inflight_messages=max_inflight_messages,
            max_queued_messages=max_queued_messages,
            queue_qos0_messages=queue_qos0_messages,
            docker=docker,
            config=config,
        )
        self._data.setdefault("broker", {}).update(fields)
        self._calls.append(("broker", ".broker(...)"))
        return self

    def cloud(self, name: str) -> ScenarioBuilder:
        """Rename the cloud sink (``cloud`` by default)."""
        self._data["cloud"] = {"name": name}
        self._calls.append(("cloud", f".cloud({name!r})"))
        return self

    # --- network ----------------------------------------------------------------------------
    def network(self, model: str) -> ScenarioBuilder:
        """``"latency"`` (the default) or ``"direct"`` (zero delay, no loss)."""
        self._network()["model"] = model
        self._calls.append(("network.model", f".network({model!r})"))
        return self

    def default_link(
        self,
        *,
        latency: int | float | str = _UNSET,
        jitter: int | float | str | dict[str, Any] = _UNSET,
        loss: float | dict[str, Any] = _UNSET,
        bandwidth: int | float | str = _UNSET,
        reorder: bool = _UNSET,
    ) -> ScenarioBuilder:
        """Impairments of every link that no ``link`` rule matches."""
        settings = _given(
            latency=latency, jitter=jitter, loss=loss, bandwidth=bandwidth, reorder=reorder
        )
        self._network().setdefault("default", {}).update(settings)
        self._calls.append(("network.default", ".default_link(...)"))
        return self

    def link(
        self,
        source: str,
        target: str,
        *,
        latency: int | float | str = _UNSET,
        jitter: int | float | str | dict[str, Any] = _UNSET,
        loss: float | dict[str, Any] = _UNSET,
        bandwidth: int | float | str = _UNSET,
        reorder: bool = _UNSET,
        bidirectional: bool = _UNSET,
    ) -> ScenarioBuilder:
        """Impairments of the links from nodes matching ``source`` to ``target`` (globs)."""
        rule = {"from": source, "to": target}
        rule.update(
            _given(
                latency=latency,
                jitter=jitter,
                loss=loss,
                bandwidth=bandwidth,
                reorder=reorder,
                bidirectional=bidirectional,
            )
        )
        links = self._network().setdefault("links", [])
        links.append(_plain(rule))
        self._calls.append((f"network.links[{len(links) - 1}]", f".link({source!r}, {target!r})"))
        return self

    def partition(
        self,
        side_a: str | Sequence[str],
        side_b: str | Sequence[str],
        *,
        start: int | float | str = _UNSET,
        end: int | float | str | None = _UNSET,
    ) -> ScenarioBuilder:
        """Cut every link between ``side_a`` and ``side_b`` (names or globs) from ``start``
        (default 0) to ``end`` (default: never heals)."""
        cut = {"between": [_side(side_a), _side(side_b)], **_given(start=start, end=end)}
        partitions = self._network().setdefault("partitions", [])
        partitions.append(cut)
        self._calls.append(
            (f"network.partitions[{len(partitions) - 1}]", f".partition({side_a!r}, {side_b!r})")
        )
        return self

    def fault(self, kind: str, **fields: Any) -> ScenarioBuilder:
        """Add a ``faults:`` entry of ``kind`` (see docs/faults.md): its target, settings,
        ``duration`` and one trigger, as the YAML takes them (``at="30s"``,
        ``when={"subscribed": "gw"}``, ``after={"fault": "cut", "delay": "5s"}``)."""
        entry = {"kind": kind, **{key: _plain(value) for key, value in fields.items()}}
        faults = self._data.setdefault("faults", [])
        faults.append(entry)
        self._calls.append((f"faults[{len(faults) - 1}]", f".fault({kind!r}, ...)"))
        return self

    # --- anything else ----------------------------------------------------------------------
    def set(self, path: str, value: Any) -> ScenarioBuilder:
        """Set any field by dotted path, as ``--set`` does (``"devices[0].retain"``)."""
        from pytest_edgesim.core.scenario.overrides import apply_overrides

        self._data = apply_overrides(self._data, [(path, _plain(value))])
        self._calls.append((path, f".set({path!r}, ...)"))
        return self

    # --- results ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The scenario as a dict shaped like the YAML (a copy, fields in the file's order)."""
        data = _in_order(copy.deepcopy(self._data), _TOP_LEVEL_ORDER)
        if isinstance(data.get("network"), dict):
            data["network"] = _in_order(data["network"], _NETWORK_ORDER)
        return data

    def build(self) -> Scenario:
        """Validate and return the :class:`Scenario`; raises :class:`ScenarioError`."""
        label = f"ScenarioBuilder({self._data.get('name', '')!r})"
        base_dir = self._base_dir if self._base_dir is not None else Path.cwd()
        try:
            return Scenario(self.to_dict(), base_dir=base_dir, label=label)
        except ScenarioError as exc:
            raise ScenarioError(
                [self._name_call(problem, label) for problem in exc.problems]
            ) from None

    # --- helpers ----------------------------------------------------------------------------
    def _append(self, key: str, item: dict[str, Any], call: str) -> ScenarioBuilder:
        items = self._data.setdefault(key, [])
        items.append(_plain(item))
        self._calls.append((f"{key}[{len(items) - 1}]", call))
        return self

    def _network(self) -> dict[str, Any]:
        return self._data.setdefault("network", {})

    def _name_call(self, problem: str, label: str) -> str:
        """Append the builder call that wrote the field a problem is about."""
        if not problem.startswith(label + ": "):
            return problem
        field = problem[len(label) + 2 :].partition(": ")[0]
        for prefix, call in reversed(self._calls):
            if field == prefix or field.startswith((prefix + ".", prefix + "[")):
                return f"{problem} (set by {call})"
        return problem

    def __repr__(self) -> str:
        return f"<ScenarioBuilder {self._data.get('name', '')!r}>"


_TOP_LEVEL_ORDER = (
    "edgesim",
    "name",
    "description",
    "seed",
    "duration",
    "broker",
    "cloud",
    "devices",
    "gateways",
    "network",
    "faults",
)
_NETWORK_ORDER = ("model", "default", "links", "partitions")


def _in_order(mapping: dict[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """``mapping`` with the keys in ``order`` first, in that order, then the others."""
    ordered = {key: mapping[key] for key in order if key in mapping}
    ordered.update((key, value) for key, value in mapping.items() if key not in ordered)
    return ordered


def _side(side: str | Sequence[str]) -> str | list[str]:
    return side if isinstance(side, str) else list(side)
