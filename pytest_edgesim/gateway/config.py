"""The gateway's configuration: the JSON every host of the gateway logic reads.

:func:`config_from_spec` makes it from a scenario's ``GatewaySpec``; :func:`validate_config`
checks one that arrives from elsewhere (an environment variable in a container, a file on an
edge box) with one line naming every problem. Standard library only: the gateway image
reads it without pydantic.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pytest_edgesim.core.aggregation import FUNCTIONS, VALUE_FIELD, is_value_field
from pytest_edgesim.core.units import TICKS_PER_SECOND
from pytest_edgesim.errors import EdgesimError


class GatewayConfigError(EdgesimError, ValueError):
    """A gateway configuration the service cannot run; the message says which key and why."""


def validate_config(config: Any) -> None:
    """Raise :class:`GatewayConfigError`, one line naming every problem, unless the service
    can run ``config``: the JSON of :func:`config_from_spec`, in which ``name``,
    ``subscribe`` and ``forward`` are required and every other key is optional."""
    problems = _ConfigProblems()
    problems.check_config(config)
    if problems:
        raise GatewayConfigError("; ".join(problems))


_MISSING: Any = object()
_QOS = "0, 1 or 2"


class _ConfigProblems(list[str]):
    """The problems found so far, each "where is what: expected what"."""

    def check(self, where: str, value: Any, ok: bool, expected: str) -> bool:
        if not ok:
            found = "missing" if value is _MISSING else describe_value(value)
            self.append(f"{where} is {found}: expected {expected}")
        return ok

    def check_config(self, config: Any) -> None:
        if not self.check("the configuration", config, isinstance(config, dict), "an object"):
            return
        name = config.get("name", _MISSING)
        self.check("name", name, isinstance(name, str) and bool(name), "a non-empty string")
        subscribe = config.get("subscribe", _MISSING)
        entry_form = '{"filter": "sensors/#", "qos": 0}'
        ok = isinstance(subscribe, list) and bool(subscribe)
        if self.check("subscribe", subscribe, ok, f"a non-empty list of {entry_form}"):
            for index, entry in enumerate(subscribe):
                where = f"subscribe[{index}]"
                if self.check(where, entry, isinstance(entry, dict), entry_form):
                    value = entry.get("filter", _MISSING)
                    self.check(f"{where}.filter", value, _is_filter(value), "an MQTT topic filter")
                    value = entry.get("qos", 0)
                    self.check(f"{where}.qos", value, _is_qos(value), _QOS)
        forward = config.get("forward", _MISSING)
        if self.check("forward", forward, isinstance(forward, dict), '{"topic": "cloud/out"}'):
            topic = forward.get("topic", _MISSING)
            ok = _is_filter(topic) and not {"+", "#"} & set(topic)
            self.check("forward.topic", topic, ok, "an MQTT topic (no wildcards)")
            value = forward.get("qos", 0)
            self.check("forward.qos", value, _is_qos(value), _QOS)
        logic = config.get("logic")
        ok = logic is None or (isinstance(logic, str) and ":" in logic)
        self.check("logic", logic, ok, "'module:Name' (your gateway logic)")
        value = config.get("logic_config", {})
        self.check("logic_config", value, isinstance(value, dict), "an object")
        for key in ("topic_prefix", "control_topic"):
            value = config.get(key)
            self.check(key, value, value is None or isinstance(value, str), "a string")
        self.check_aggregate(config.get("aggregate"))
        self.check_delay(config.get("processing_delay_us"))
        self.check_session(config.get("session"))
        queue_config = config.get("queue") or {}
        if self.check("queue", queue_config, isinstance(queue_config, dict), "an object"):
            value = queue_config.get("capacity", 1000)
            self.check("queue.capacity", value, _is_int(value) and value >= 1, "an integer >= 1")
            value = queue_config.get("drop", "newest")
            self.check("queue.drop", value, value in ("newest", "oldest"), '"newest" or "oldest"')

    def check_aggregate(self, aggregate: Any) -> None:
        if not aggregate or not self.check(
            "aggregate", aggregate, isinstance(aggregate, dict), "an object"
        ):
            return
        count, window = aggregate.get("count"), aggregate.get("window_us")
        for key, value in (("count", count), ("window_us", window)):
            ok = value is None or (_is_int(value) and value >= 1)
            self.check(f"aggregate.{key}", value, ok, "an integer >= 1 or null")
        if count is None and window is None:
            self.append("aggregate has neither count nor window_us: expected one or both")
        functions = aggregate.get("functions", ["mean"])
        ok = (
            isinstance(functions, list)
            and bool(functions)
            and all(isinstance(name, str) and name in FUNCTIONS for name in functions)
        )
        self.check(
            "aggregate.functions", functions, ok, f"a non-empty list of {', '.join(FUNCTIONS)}"
        )
        value = aggregate.get("group_by", "none")
        ok = value in ("none", "topic", "device")
        self.check("aggregate.group_by", value, ok, '"none", "topic" or "device"')
        value = aggregate.get("value_field", VALUE_FIELD)
        ok = is_value_field(value)
        self.check("aggregate.value_field", value, ok, 'a field name or dotted path ("value")')

    def check_session(self, session: Any) -> None:
        if session is None or not self.check(
            "session", session, isinstance(session, dict), '{"clean": false, "keepalive_s": 60}'
        ):
            return
        value = session.get("clean", True)
        self.check("session.clean", value, isinstance(value, bool), "true or false")
        value = session.get("keepalive_s", 60)
        ok = _is_int(value) and 1 <= value <= 65535
        self.check("session.keepalive_s", value, ok, "an integer from 1 to 65535 (seconds)")
        value = session.get("expiry_s")
        ok = value is None or (_is_int(value) and 0 <= value <= 0xFFFFFFFF)
        self.check("session.expiry_s", value, ok, "null or an integer >= 0 (seconds)")

    def check_delay(self, delay: Any) -> None:
        where = "processing_delay_us"
        if not delay or not self.check(where, delay, isinstance(delay, dict), "an object"):
            return
        distribution = delay.get("distribution", "constant")
        parameters = _DELAY_PARAMETERS.get(distribution) if isinstance(distribution, str) else None
        if parameters is None:
            expected = ", ".join(f'"{name}"' for name in _DELAY_PARAMETERS)
            self.check(f"{where}.distribution", distribution, False, f"one of {expected}")
            return
        for key in parameters:
            value = delay.get(key, 0 if distribution == "constant" else _MISSING)
            if distribution == "exponential":
                ok, expected = is_number(value) and value > 0, "a number > 0 (microseconds)"
            else:
                ok, expected = is_number(value) and value >= 0, "a number >= 0 (microseconds)"
            self.check(f"{where}.{key}", value, ok, expected)


_DELAY_PARAMETERS = {
    "constant": ("value",),
    "uniform": ("low", "high"),
    "exponential": ("mean",),
    "normal": ("mean", "stddev"),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_qos(value: Any) -> bool:
    return _is_int(value) and value in (0, 1, 2)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_filter(value: Any) -> bool:
    """An MQTT topic filter: '+' and '#' only as whole levels, '#' only last."""
    if not isinstance(value, str) or not value:
        return False
    levels = value.split("/")
    for index, level in enumerate(levels):
        if ("+" in level or "#" in level) and len(level) > 1:
            return False
        if level == "#" and index != len(levels) - 1:
            return False
    return True


def describe_value(value: Any, limit: int = 40) -> str:
    """A value as a log or error message shows it: JSON, cut to ``limit`` characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def config_from_spec(spec: Any, topic_prefix: str = "") -> dict[str, Any]:
    """The JSON configuration of a gateway from its validated ``GatewaySpec``."""
    aggregate = spec.aggregate
    delay = spec.processing_delay
    return {
        "name": spec.name,
        "topic_prefix": topic_prefix,
        "subscribe": [{"filter": s.filter, "qos": s.qos} for s in spec.subscribe],
        "aggregate": None
        if aggregate is None
        else {
            "count": aggregate.count,
            "window_us": aggregate.window,
            "functions": list(aggregate.functions),
            "group_by": aggregate.group_by,
            "value_field": aggregate.value_field,
        },
        "processing_delay_us": delay.model_dump(),
        "queue": {"capacity": spec.queue.capacity, "drop": spec.queue.drop},
        "forward": {
            "topic": spec.forward_topic,
            "qos": spec.forward.qos,
        },
        **(
            {}
            if getattr(spec, "logic", None) is None
            else {"logic": spec.logic, "logic_config": logic_config(spec)}
        ),
        **({} if spec.session is None else {"session": session_config(spec.session)}),
    }


def logic_config(spec: Any) -> dict[str, Any]:
    """What a user's logic (``logic: 'module:Name'``) gets as its ``config``: the gateway's
    ``config:`` block, with ``forward_topic`` and ``forward_qos`` added unless it sets them."""
    return {"forward_topic": spec.forward_topic, "forward_qos": spec.forward.qos, **spec.config}


def session_config(session: Any, time_scale: float = 1.0) -> dict[str, Any]:
    """A ``SessionSpec`` as the service takes it: the keep-alive (at least 1) and the session
    expiry interval in whole seconds (MQTT's unit) of the wall clock at ``time_scale``."""
    keepalive_s = session.keepalive / TICKS_PER_SECOND / time_scale
    config: dict[str, Any] = {"clean": session.clean, "keepalive_s": max(1, math.ceil(keepalive_s))}
    if session.expiry is not None:
        config["expiry_s"] = math.ceil(session.expiry / TICKS_PER_SECOND / time_scale)
    return config
