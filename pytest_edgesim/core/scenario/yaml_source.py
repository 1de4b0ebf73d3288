"""YAML loading that remembers where every field was written (for error messages)."""

from __future__ import annotations

from typing import Any

import yaml

from pytest_edgesim.errors import ScenarioError

Path_ = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    pass


def _walk(
    node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[str], source: str
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key_node, value_node in node.value:
            key: str = (
                key_node.value if isinstance(key_node, yaml.ScalarNode) else "<non-scalar key>"
            )
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    f"{source}:{line}: {render_path((*path, key))}: duplicate key "
                    f"(first written on line {seen[key]})"
                )
                continue
            seen[key] = line
            child = (*path, key)
            lines[child] = line
            _walk(value_node, child, lines, problems, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, problems, source)


def load_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """Parse ``text``; return the data and a map from field path to 1-based line number."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError(
                f"{source}: the file is empty (a scenario starts with 'edgesim: 1')"
            )
        lines: dict[Path_, int] = {}
        problems: list[str] = []
        _walk(node, (), lines, problems, source)
        if problems:
            raise ScenarioError(problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        context = ""
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            # e.g. an unclosed bracket: the problem shows at the end, the cause is earlier
            context = f" ({exc.context}, started on line {exc.context_mark.line + 1})"
        raise ScenarioError(
            f"{source}{line}: invalid YAML: {exc.problem or exc}{context}"
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}:1: a scenario must be a mapping of fields (edgesim, devices, ...), "
            f"got {type(data).__name__}"
        )
    return data, lines


def render_path(path: Path_) -> str:
    """``("network", "links", 2, "loss")`` -> ``network.links[2].loss``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def line_of(path: Path_, lines: dict[Path_, int]) -> int | None:
    """The line of ``path`` or of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            return line
    return None
