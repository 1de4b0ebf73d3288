"""How big a scenario may be: explicit limits on what loading reads and builds.

A scenario file is input a test tool reads on every commit, sometimes written by another
tool; without limits a YAML alias bomb, a 100,000-deep nesting or ``count: 10000000`` would
take the whole machine down before any error. Each limit has a default that no real
scenario comes near, and can be raised: an environment variable
(``EDGESIM_LIMIT_DEVICES=2000000``) or an argument
(``Scenario.from_yaml(path, limits=Limits(devices=2_000_000))``).
"""

from __future__ import annotations

import dataclasses
import datetime
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_edgesim.errors import ScenarioError

Where = Callable[[tuple[str | int, ...]], str]

#: what each limit counts, in the words of its error message
_DESCRIPTIONS = {
    "file_bytes": "bytes",
    "depth": "levels of nesting",
    "nodes": "values (after aliases are expanded)",
    "devices": "devices (after count expansion)",
    "int_digits": "digits in a whole number",
    "string_chars": "characters in a string",
}
#: the highest depth limit: copying and validating go this deep in Python's recursion
MAX_DEPTH = 400
#: at most this many problems of the same scan are listed
_PROBLEMS_SHOWN = 10


@dataclass(frozen=True)
class Limits:
    """The limits of scenario loading (see docs/scenario-reference.md, "Limits")."""

    #: size of a scenario file or a replay value file
    file_bytes: int = 16 * 2**20
    #: mappings and lists inside one another
    depth: int = 64
    #: values (each mapping, list, key and scalar counts one) once aliases are expanded
    nodes: int = 1_000_000
    #: devices once ``count`` is expanded, over all ``devices`` entries
    devices: int = 1_000_000
    #: digits of a whole number (a seed needs 19)
    int_digits: int = 32
    #: characters of one string
    string_chars: int = 100_000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ScenarioError(
                    f"Limits({field.name}=...): must be a whole number of at least 1, got {value!r}"
                )
        if self.depth > MAX_DEPTH:
            raise ScenarioError(
                f"Limits(depth=...): must be at most {MAX_DEPTH} (deeper data would pass "
                f"Python's own recursion limit), got {self.depth}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, each replaced by ``EDGESIM_LIMIT_<NAME>`` where that is set."""
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for field in dataclasses.fields(cls):
            variable = env_variable(field.name)
            text = environ.get(variable)
            if text is None or not text.strip():
                continue
            if not text.strip().isdigit() or int(text) < 1:
                raise ScenarioError(
                    f"{variable}: must be a whole number of at least 1, got {text!r}"
                )
            values[field.name] = int(text)
        return cls(**values)

    def exceeded(self, name: str, what: str) -> str:
        """``what``, then the limit it passes and how to raise it."""
        limit = getattr(self, name)
        return f"{what}: more than the limit of {limit:,} {_DESCRIPTIONS[name]} ({self.hint(name)})"

    @staticmethod
    def hint(name: str) -> str:
        """How to raise the limit ``name``."""
        return (
            f"raise it with {env_variable(name)}=N or "
            f"Scenario.from_yaml(..., limits=Limits({name}=N))"
        )


def env_variable(name: str) -> str:
    return f"EDGESIM_LIMIT_{name.upper()}"


def resolve_limits(limits: Limits | None) -> Limits:
    if limits is None:
        return Limits.from_env()
    if not isinstance(limits, Limits):
        raise ScenarioError(f"limits: must be a pytest_edgesim.Limits, got {type(limits).__name__}")
    return limits


def lone_surrogate(text: str) -> str | None:
    """A problem if ``text`` holds a lone surrogate (text that cannot be written out)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return (
            f"contains U+{code:04X}, a lone surrogate, which is not text (it cannot be written "
            "to a file, a trace or the network)"
        )
    return None


def _scalar_problem(value: Any, limits: Limits) -> str | None:
    if isinstance(value, str):
        if len(value) > limits.string_chars:
            return limits.exceeded("string_chars", f"a string of {len(value):,} characters")
        return lone_surrogate(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, numbers.Integral):
        if abs(int(value)) >= 10**limits.int_digits:
            return limits.exceeded("int_digits", "a whole number this long")
        return None
    if isinstance(value, (numbers.Real, datetime.date)):
        return None  # (a date is refused by the schema, in the words of the field)
    if isinstance(value, (bytes, bytearray)):
        return "is binary data (!!binary), not text: write it as a string"
    return (
        "must be a mapping, a list, a string, a number, true/false or null, "
        f"got {type(value).__name__}"
    )


def check_data(data: Any, limits: Limits, where: Where) -> None:
    """Raise a :class:`ScenarioError` if ``data`` (the scenario as a dict) passes a limit,
    holds something that is no YAML value (a generator, a set, bytes), or text that is not
    text (a lone surrogate). A cycle passes the depth limit. Iterative: the depth of the
    data never becomes the depth of the Python stack."""
    problems: list[str] = []
    count = 0
    nodes = limits.nodes
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        count += 1
        if count > nodes:
            raise ScenarioError(
                f"{where(())}: " + limits.exceeded("nodes", "the scenario is too big")
            )
        if len(path) > limits.depth:
            raise ScenarioError(
                f"{where(path[: limits.depth + 1])}: "
                + limits.exceeded("depth", "nested too deep (or a value that contains itself)")
            )
        if isinstance(value, Mapping):
            for key, item in value.items():
                count += 1
                problem = _scalar_problem(key, limits) if isinstance(key, str) else None
                if problem:
                    problems.append(f"{where(path)}: a key {problem}")
                name = key if isinstance(key, str) and not problem else repr(key)[:40]
                stack.append((item, (*path, name)))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        else:
            problem = _scalar_problem(value, limits)
            if problem:
                problems.append(f"{where(path)}: {problem}")
        if len(problems) >= _PROBLEMS_SHOWN:
            break
    if problems:
        raise ScenarioError(problems)
