"""YAML loading that remembers where every field was written (for error messages)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from pytest_edgesim.core.limits import Limits
from pytest_edgesim.errors import ScenarioError

Path_ = tuple[str | int, ...]


class _PyLoader(yaml.SafeLoader):
    """The pure-Python parser: its error messages are the ones people see (and tests read)."""


_Loader: Any = _PyLoader
if yaml.__with_libyaml__:  # libyaml's parser: fast enough for a 100,000-device file
    from yaml._yaml import CParser

    class _CLoader(CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):  # type: ignore[misc]
        def __init__(self, text: str):
            CParser.__init__(self, text)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _Loader = _CLoader


#: a file whose YAML is broken is parsed again by the pure-Python parser (for its clearer
#: messages) if it is at most this big; a bigger one keeps libyaml's message
_REPARSE_BYTES = 256 * 1024

#: what PyYAML's reader refuses (control characters, lone surrogates), found here first so
#: that the error names the line
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_INT_TAG = "tag:yaml.org,2002:int"
_CHARACTER_NAMES = {0: "NUL", 0x1B: "ESC", 0x7F: "DEL", 0xFEFF: "BOM"}


class _LimitError(Exception):
    def __init__(self, message: str, mark: Any, path: Path_):
        super().__init__(message)
        self.message, self.mark, self.path = message, mark, path


def _open_path(stack: list[yaml.Node], pending: list[yaml.Node | None]) -> Path_:
    """The field path of the next node to be attached under ``stack``."""
    path: list[str | int] = []
    for level, node in enumerate(stack):
        last = level == len(stack) - 1
        if isinstance(node, yaml.SequenceNode):
            path.append(len(node.value) - (0 if last else 1))
        elif isinstance(node, yaml.MappingNode):
            key = pending[level]
            if key is None and node.value and not last:
                key = node.value[-1][0]
            if key is not None:
                path.append(key.value if isinstance(key, yaml.ScalarNode) else "<non-scalar key>")
    return tuple(path)


def _compose(loader: Any, limits: Limits) -> tuple[yaml.Node | None, bool]:
    """The document's node graph, built from the parser's events without recursion, within
    ``limits`` (depth, nodes as written, string length, digits of a whole number); and
    whether it has aliases."""
    loader.get_event()  # stream start
    if loader.check_event(yaml.StreamEndEvent):
        return None, False
    loader.get_event()  # document start
    anchors: dict[str, yaml.Node] = {}
    stack: list[yaml.Node] = []
    pending: list[yaml.Node | None] = []  # per open mapping: its key waiting for a value
    root: yaml.Node | None = None
    count = 0
    aliased = False
    resolved: dict[tuple[str, Any], str] = {}  # (the same words come again and again)
    short = min(limits.string_chars, limits.int_digits)  # a scalar no longer passes neither
    while True:
        event: Any = loader.get_event()
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            stack.pop().end_mark = event.end_mark
            pending.pop()
            continue
        if isinstance(event, yaml.DocumentEndEvent):
            break
        node: yaml.Node
        start: Any = event.start_mark  # (libyaml's marks are of their own class)
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", start
                )
            node = anchors[event.anchor]
            aliased = True
        else:
            count += 1
            if count > limits.nodes:
                raise _LimitError(
                    limits.exceeded("nodes", "the file is too big"), event.start_mark, ()
                )
            if event.anchor is not None and event.anchor in anchors:
                raise yaml.composer.ComposerError(
                    f"found duplicate anchor {event.anchor!r}; first occurrence",
                    anchors[event.anchor].start_mark,
                    "second occurrence",
                    start,
                )
            tag = event.tag
            if isinstance(event, yaml.ScalarEvent):
                if tag is None or tag == "!":
                    key = (event.value, event.implicit)
                    tag = resolved.get(key)
                    if tag is None:
                        tag = resolved[key] = loader.resolve(
                            yaml.ScalarNode, event.value, event.implicit
                        )
                if len(event.value) > short:
                    _check_scalar(event, tag, limits, stack, pending)
                end: Any = event.end_mark
                node = yaml.ScalarNode(tag, event.value, start, end, style=event.style)
            elif isinstance(event, yaml.SequenceStartEvent):
                if tag is None or tag == "!":
                    tag = loader.resolve(yaml.SequenceNode, None, event.implicit)
                node = yaml.SequenceNode(tag, [], start, None, flow_style=event.flow_style)
            else:
                if tag is None or tag == "!":
                    tag = loader.resolve(yaml.MappingNode, None, event.implicit)
                node = yaml.MappingNode(tag, [], start, None, flow_style=event.flow_style)
            if event.anchor is not None:
                anchors[event.anchor] = node
        if stack:
            parent = stack[-1]
            if isinstance(parent, yaml.SequenceNode):
                parent.value.append(node)
            elif pending[-1] is None:
                pending[-1] = node
            else:
                parent.value.append((pending[-1], node))
                pending[-1] = None
        else:
            root = node
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(stack) >= limits.depth:
                raise _LimitError(
                    limits.exceeded("depth", "nested too deep"),
                    event.start_mark,
                    _open_path(stack, pending),
                )
            stack.append(node)
            pending.append(None)
    if not loader.check_event(yaml.StreamEndEvent):
        event = loader.get_event()
        raise yaml.composer.ComposerError(
            "expected a single document in the stream",
            root.start_mark if root is not None else None,
            "but found another document",
            event.start_mark,
        )
    loader.get_event()
    return root, aliased


def _check_scalar(
    event: Any, tag: str, limits: Limits, stack: list[yaml.Node], pending: list[yaml.Node | None]
) -> None:
    value = event.value
    if len(value) > limits.string_chars:
        what = f"a value of {len(value):,} characters"
        raise _LimitError(
            limits.exceeded("string_chars", what), event.start_mark, _open_path(stack, pending)
        )
    if tag == _INT_TAG and sum(ch.isalnum() for ch in value) > limits.int_digits:
        what = f"a whole number of {sum(ch.isdigit() for ch in value):,} digits"
        raise _LimitError(
            limits.exceeded("int_digits", what), event.start_mark, _open_path(stack, pending)
        )


def _expanded_size(root: yaml.Node, limits: Limits) -> None:
    """Refuse a graph whose aliases expand past ``limits.nodes`` or ``limits.depth`` (a
    "billion laughs"), or that contains itself (``&a [*a]``). Each node is visited once:
    the sizes of shared nodes are remembered, never expanded."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path: set[int] = set()  # (the nodes being finished: the ancestors of the next one)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        children = _children(node)
        if finished:
            on_path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(child)] for child in children)
            height[id(node)] = 1 + max((height[id(child)] for child in children), default=0)
            if size[id(node)] > limits.nodes:
                what = "aliases expand this value too far"
                raise _LimitError(
                    limits.exceeded("nodes", what), node.start_mark, _path_to(root, node)
                )
            if height[id(node)] > limits.depth + 1:
                what = "aliases nest this value too deep"
                raise _LimitError(
                    limits.exceeded("depth", what), node.start_mark, _path_to(root, node)
                )
            continue
        if id(node) in size:
            continue
        on_path.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise _LimitError(
                    "an alias refers to a value that contains it (a recursive alias): "
                    "the value would be infinite",
                    node.start_mark,
                    _path_to(root, node),
                )
            if id(child) not in size:
                stack.append((child, False))


def _path_to(root: yaml.Node, target: yaml.Node) -> Path_:
    """The field path of the first place ``target`` is written under ``root`` (each node
    visited once, so aliases are not expanded)."""
    parents: dict[int, tuple[yaml.Node, str | int | None]] = {id(root): (root, None)}
    stack = [root]
    while stack and id(target) not in parents:
        node = stack.pop()
        if isinstance(node, yaml.SequenceNode):
            steps: list[tuple[yaml.Node, str | int | None]] = list(
                zip(node.value, range(len(node.value)), strict=True)
            )
        elif isinstance(node, yaml.MappingNode):
            steps = []
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "<non-scalar key>"
                steps += [(key, None), (value, name)]
        else:
            steps = []
        for child, step in steps:
            if id(child) not in parents:
                parents[id(child)] = (node, step)
                stack.append(child)
    path: list[str | int] = []
    node = target
    while node is not root and id(node) in parents:
        parent, step = parents[id(node)]
        if step is not None:
            path.append(step)
        node = parent
    return tuple(reversed(path))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


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


def _culprit(loader_class: Any, root: yaml.Node, source: str) -> ScenarioError:
    """The error for the first scalar under ``root`` that its tag cannot construct."""
    stack: list[tuple[yaml.Node, Path_]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            try:
                loader_class("").construct_object(node)
            except (ValueError, OverflowError, TypeError, yaml.YAMLError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return ScenarioError(
                    f"{source}:{node.start_mark.line + 1}: {render_path(path)}: cannot be "
                    f"read as {node.tag.rpartition(':')[2]} ({reason})"
                )
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, index)) for index, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "<non-scalar key>"
                stack += [(key, path), (value, (*path, name))]
    return ScenarioError(f"{source}: invalid YAML: a value cannot be read")


def _not_printable(text: str, source: str) -> None:
    found = _NOT_PRINTABLE.search(text)
    if found is None:
        return
    code = ord(found.group())
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    name = _CHARACTER_NAMES.get(code, "a control character")
    raise ScenarioError(
        f"{source}:{line}: invalid YAML: the character U+{code:04X} ({name}) at column "
        f"{column} is not allowed in a YAML file (write it as an escape in a double-quoted "
        'string, such as "\\x00")'
    )


def load_yaml(text: str, source: str, limits: Limits | None = None) -> tuple[Any, dict[Path_, int]]:
    """Parse ``text`` within ``limits``; return the data and a map from field path to
    1-based line number."""
    limits = limits or Limits()
    _not_printable(text, source)
    try:
        try:
            return _load(_Loader, text, source, limits)
        except yaml.MarkedYAMLError:
            if _Loader is _PyLoader or len(text) > _REPARSE_BYTES:
                raise
            return _load(_PyLoader, text, source, limits)
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
    except _LimitError as exc:
        field = f" {render_path(exc.path)}:" if exc.path else ""
        raise ScenarioError(f"{source}:{exc.mark.line + 1}:{field} {exc.message}") from None


def load_value(text: str, limits: Limits | None = None) -> Any:
    """One YAML value (an override's ``VALUE``) within ``limits``; ``yaml.YAMLError`` if it
    is not YAML, :class:`ScenarioError` if it passes a limit."""
    limits = limits or Limits()
    _not_printable(text, "the value")
    try:
        try:
            return _load(_Loader, text, "the value", limits, mapping=False)[0]
        except yaml.MarkedYAMLError:
            if _Loader is _PyLoader or len(text) > _REPARSE_BYTES:
                raise
            return _load(_PyLoader, text, "the value", limits, mapping=False)[0]
    except _LimitError as exc:
        raise ScenarioError(exc.message) from None


def _load(
    loader_class: Any, text: str, source: str, limits: Limits, *, mapping: bool = True
) -> tuple[Any, dict[Path_, int]]:
    loader = loader_class(text)
    try:
        node, aliased = _compose(loader, limits)
        if node is None:
            if not mapping:
                return None, {}
            raise ScenarioError(
                f"{source}: the file is empty (a scenario starts with 'edgesim: 1')"
            )
        if aliased:  # (without aliases the composer has seen every node and level)
            _expanded_size(node, limits)
        lines: dict[Path_, int] = {}
        problems: list[str] = []
        _walk(node, (), lines, problems, source)
        if problems:
            raise ScenarioError(problems)
        try:
            data = loader.construct_document(node)
        except (ValueError, OverflowError, TypeError, RecursionError):
            # a scalar its tag cannot read (``2020-13-45`` as a date, ``!!int abc``)
            raise _culprit(loader_class, node, source) from None
    finally:
        loader.dispose()
    if mapping and not isinstance(data, dict):
        raise ScenarioError(
            f"{source}:1: a scenario must be a mapping of fields (edgesim, devices, ...), "
            f"got {type(data).__name__}"
        )
    return data, lines


def render_path(path: Path_) -> str:
    """``("network", "links", 2, "loss")`` -> ``network.links[2].loss``; a path of more
    than 10 parts is shortened in the middle (``a[0][0][0][0]...(57 more)...[0][1]``)."""
    if len(path) > 10:
        return f"{render_path(path[:5])}...({len(path) - 7} more)...{render_path(path[-2:])}"
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
