"""Turn pydantic's validation errors into one readable line per problem.

Each line says where (file, line, field path) and what is wrong, in the words of the
scenario format: ``lossy.yaml:14: network.links[2].loss: must be between 0 and 1, got 1.5``.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from pytest_edgesim.core.scenario.yaml_source import Path_, line_of, render_path

_TAGS = {
    "constant",
    "uniform",
    "normal",
    "exponential",  # delay and jitter distributions
    "bernoulli",
    "gilbert_elliott",  # loss models
    "periodic",
    "poisson",  # publish modes
    "random_walk",
    "sine",
    "replay",  # value models
}
_TAG_FIELDS = {"distribution", "model", "mode"}


_KIND_GOT = re.compile(r"^must be (.+), got (.+)$", re.DOTALL)


def _clean_path(loc: tuple[Any, ...], data: Any) -> tuple[Path_, Path_]:
    """Drop discriminator tags from pydantic's ``loc``; return (path, path to shorthand parent)."""
    path: list[str | int] = []
    node = data
    shorthand_at: Path_ | None = None
    for part in loc:
        if (
            isinstance(part, str)
            and part in _TAGS
            and not (isinstance(node, dict) and part in node)
        ):
            if not isinstance(node, dict) and shorthand_at is None:
                shorthand_at = tuple(path)
            continue
        if isinstance(part, str) and ("[" in part or part in ("int", "str", "float", "bool")):
            continue  # pydantic names a union member or validator here, not a field
        path.append(part)
        node = _step(node, part)
    if shorthand_at is not None:
        return shorthand_at, shorthand_at
    return tuple(path), tuple(path)


def _fields_of(model: type[BaseModel], path: Path_, data: Any) -> list[str]:
    """The field names (aliases where set) of the model that sits at ``path`` in ``data``.

    Where a field holds one of several models (``value: {model: sine, ...}``), the one its
    ``model``/``distribution``/``mode`` tag selects."""
    current: Any = model
    node = data
    for part in path:
        node = _step(node, part)
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields:
            return []
        field = next((f for name, f in fields.items() if (f.alias or name) == part), None)
        if field is None:
            return []
        current = _inner_model(field.annotation, node)
    fields = getattr(current, "model_fields", None) or {}
    return [f.alias or name for name, f in fields.items()]


def _inner_model(annotation: Any, node: Any) -> Any:
    """The pydantic model inside ``list[X]``, ``X | None``, ``Annotated[...]``; of a union of
    tagged models, the one whose tag ``node`` (the data written there) names."""
    candidates = _models_in(annotation)
    if len(candidates) > 1 and isinstance(node, dict):
        for candidate in candidates:
            for tag in _TAG_FIELDS & set(candidate.model_fields):
                field = candidate.model_fields[tag]
                written = node.get(tag)
                if written is None and not field.is_required():
                    return candidate  # the variant a mapping without its tag means
                if written in getattr(field.annotation, "__args__", ()):
                    return candidate
    return candidates[0] if candidates else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += [model for model in _models_in(arg) if model not in found]
    origin = getattr(annotation, "__origin__", None)
    if not found and origin is not None and origin is not annotation:
        found = _models_in(origin)
    return found


def _close_field(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def _message(error: dict[str, Any], model: type[BaseModel], path: Path_, data: Any) -> str:
    kind = error["type"]
    value = error.get("input")
    shown = _shown(value)
    context = error.get("ctx") or {}
    if kind == "extra_forbidden":
        name = str(path[-1]) if path else "?"
        choices = _fields_of(model, path[:-1], data)
        close = _close_field(name, choices)
        if close:
            return f"unknown field {name!r} (did you mean {close!r}?)"
        return f"unknown field {name!r}" + (
            f" (known fields: {', '.join(choices)})" if choices else ""
        )
    short_pair = kind in ("too_short", "too_long") or (
        kind == "missing" and isinstance(value, list)
    )
    if path and path[-1] == "between" and short_pair:
        return f"must name two sides (each a node pattern or a list of them), got {shown}"
    if kind == "missing":
        return "is required"
    if kind in ("literal_error", "enum"):
        expected = context.get("expected", "")
        choices = [
            c.strip().strip("'") for c in expected.replace(" or ", ",").split(",") if c.strip()
        ]
        hint = ""
        if isinstance(value, str):
            matches = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            hint = f" (did you mean {matches[0]!r}?)" if matches else ""
        if path and path[-1] == "edgesim":
            return f"unsupported scenario version {shown} (this pytest-edgesim reads version 1)"
        return f"must be one of {expected}, got {shown}{hint}"
    if kind == "union_tag_invalid":
        tag = context.get("tag")
        expected = context.get("expected_tags", "")
        field = context.get("discriminator", "kind").strip("'")
        return f"unknown {field} {tag!r} (expected one of {expected.replace(chr(39), '')})"
    if kind == "union_tag_not_found":
        field = context.get("discriminator", "kind").strip("'")
        return f"needs a {field!r} field"
    if kind in ("value_error", "assertion_error"):
        text = str(error.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            text = text.removeprefix(prefix)
        if len(text) > _SHOWN_CHARS * 2 and isinstance(value, (str, list, dict)):
            text = text.replace(repr(value), shown)  # (a validator's "got ...")
        return text
    if kind == "invalid_key":  # (``path`` ends at the mapping holding the key)
        key = error["loc"][-1]
        choices = _fields_of(model, path, data)
        if choices:
            return f"unknown field {key!r} (known fields: {', '.join(choices)})"
        return f"keys must be strings, got {key!r} (write it in quotes: '{key}')"
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "int_from_float":
        wanted = {
            "int_type": "a whole number",
            "int_parsing": "a whole number",
            "int_from_float": "a whole number",
            "float_type": "a number",
            "float_parsing": "a number",
            "bool_type": "true or false",
            "bool_parsing": "true or false",
            "string_type": "a string",
            "list_type": "a list",
            "dict_type": "a mapping",
            "model_type": "a mapping",
            "tuple_type": "a list of two sides",
        }.get(kind, kind.replace("_", " "))
        return f"must be {wanted}, got {shown}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(context.values()), "?")
        words = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[kind]
        return f"must be {words} {bound}, got {shown}"
    if kind == "finite_number":
        return f"must be a finite number, got {shown}"
    if kind in ("too_short", "too_long"):
        bound = context.get("min_length" if kind == "too_short" else "max_length")
        words = "at least" if kind == "too_short" else "at most"
        items = "item" if bound == 1 else "items"
        return f"must have {words} {bound} {items}, got {context.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        return (
            f"{shown} is not a valid name (use letters, digits and . _ - : only; "
            "no spaces or slashes)"
        )
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {context.get('max_length')} characters long, got {shown}"
    text = str(error.get("msg", kind))
    if text.startswith("Input should be "):  # any other pydantic check, in our words
        return f"must be {text.removeprefix('Input should be ')}, got {shown}"
    return text


#: how much of a value an error repeats
_SHOWN_CHARS = 60


def _shown(value: Any) -> str:
    """``repr(value)``, or a description of it where that would be long (an error about a
    value of a million items is one short line)."""
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return f"{value[:_SHOWN_CHARS]!r}... ({len(value):,} characters)"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"a list of {len(value):,} items"
    if isinstance(value, dict) and len(value) > 8:
        return f"a mapping of {len(value):,} fields"
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS * 2 else text[: _SHOWN_CHARS * 2] + "..."


def _step(node: Any, part: str | int) -> Any:
    """``node[part]`` along a path in the raw data, or None where the path leaves it."""
    if isinstance(node, dict) and isinstance(part, str):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _at(data: Any, path: Path_) -> Any:
    for part in path:
        data = _step(data, part)
        if data is None:
            return None
    return data


def format_validation_error(
    exc: ValidationError,
    model: type[BaseModel],
    data: Any,
    source: str,
    lines: dict[Path_, int] | None,
) -> list[str]:
    """One line per problem, sorted by line number, duplicates removed."""
    found: dict[str, tuple[int, list[str]]] = {}
    errors = [(error, _clean_path(tuple(error["loc"]), data)[0]) for error in exc.errors()]
    # a misspelt field is also a missing one: say it once, as the misspelling
    misspelt = {
        (*path[:-1], close)
        for error, path in errors
        if error["type"] == "extra_forbidden" and path
        for close in [_close_field(str(path[-1]), _fields_of(model, path[:-1], data))]
        if close
    }
    for error, path in errors:
        if error["type"] == "missing" and path in misspelt:
            continue
        key_path = path
        if error["type"] == "invalid_key" and path:
            # a key that is not a string (``1: x``): name the mapping, point at the key's line
            path, key_path = path[:-1], (*path[:-1], str(path[-1]))
        elif path[-2:-1] == ("between",) and isinstance(path[-1], int):
            path = key_path = path[:-1]  # a side missing: the pair is what is wrong
            error = {**error, "input": _at(data, path)}
        message = _message(dict(error), model, path, data)
        line = line_of(key_path, lines) if lines else None
        where = f"{source}:{line}" if line is not None else source
        said = found.setdefault(f"{where}: {render_path(path)}", (line or 0, []))[1]
        if message not in said:
            said.append(message)
    return [
        f"{where}: {message}"
        for where, (_, said) in sorted(found.items(), key=lambda item: (item[1][0], item[0]))
        for message in _one_of(said)
    ]


def _one_of(messages: list[str]) -> list[str]:
    """A field that may be one of several types fails once per type: ``must be a string``,
    ``must be a whole number``. Say it once: ``must be a string or a whole number``."""
    kinds = [_KIND_GOT.match(message) for message in messages]
    if len(messages) < 2 or not all(kinds):
        return messages
    wanted = [kind.group(1) for kind in kinds if kind]
    got = {kind.group(2) for kind in kinds if kind}
    if len(got) != 1:
        return messages
    return [f"must be {', '.join(wanted[:-1])} or {wanted[-1]}, got {got.pop()}"]
