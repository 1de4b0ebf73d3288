"""MQTT topic names and filters: validation, matching, and the broker's subscription index.

Matching follows MQTT 3.1.1 section 4.7 (unchanged in MQTT 5): levels are separated by
``/`` and empty levels are real levels; ``+`` matches exactly one level (an empty one too);
``#`` must be the last level and matches its parent level and any number of child levels
(``sport/#`` matches ``sport``); a topic whose first character is ``$`` is not matched by a
filter whose first level is ``+`` or ``#``.
"""

from __future__ import annotations

from collections.abc import Hashable


def validate_topic_name(topic: str) -> str | None:
    """A problem with ``topic`` as a topic name (what a publisher publishes to), or None."""
    if not topic:
        return "a topic name must not be empty"
    if "+" in topic or "#" in topic:
        return f"a topic name cannot contain the wildcards '+' or '#': {topic!r}"
    return _common_problem(topic)


def validate_topic_filter(topic_filter: str) -> str | None:
    """A problem with ``topic_filter`` as a subscription filter, or None."""
    if not topic_filter:
        return "a topic filter must not be empty"
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return f"'#' must be a whole level and the last one, in {topic_filter!r}"
        if "+" in level and level != "+":
            return f"'+' must be a whole level, in {topic_filter!r}"
    return _common_problem(topic_filter)


def _common_problem(text: str) -> str | None:
    if "\x00" in text:
        return f"a topic must not contain the NUL character: {text!r}"
    if any(ch in text for ch in "\t\n\r"):
        return f"a topic must not contain tabs or line breaks: {text!r}"
    if len(text.encode()) > 65535:
        return "a topic must be at most 65535 bytes long"
    return None


def _matches_levels(filter_levels: list[str], topic_levels: list[str]) -> bool:
    count = len(topic_levels)
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= count:
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(filter_levels) == count


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` (both assumed valid)."""
    if topic_filter == topic:
        return True
    filter_levels = topic_filter.split("/")
    if topic.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    return _matches_levels(filter_levels, topic.split("/"))


class TopicIndex:
    """Subscriptions and, per topic, the cached tuple of entries that match it.

    Entries come back in the order they subscribed, so routing never depends on hashing.
    The cache is dropped whenever a subscription changes.
    """

    __slots__ = ("_cache", "_subscriptions")

    def __init__(self) -> None:
        self._subscriptions: list[tuple[str, list[str], Hashable]] = []
        self._cache: dict[str, tuple[Hashable, ...]] = {}

    def subscribe(self, topic_filter: str, entry: Hashable) -> None:
        for existing_filter, _, existing_entry in self._subscriptions:
            if existing_filter == topic_filter and existing_entry == entry:
                return
        self._subscriptions.append((topic_filter, topic_filter.split("/"), entry))
        self._cache.clear()

    def unsubscribe(self, topic_filter: str, entry: Hashable) -> None:
        self._subscriptions = [
            item
            for item in self._subscriptions
            if not (item[0] == topic_filter and item[2] == entry)
        ]
        self._cache.clear()

    def matching(self, topic: str) -> tuple[Hashable, ...]:
        found = self._cache.get(topic)
        if found is None:
            levels = topic.split("/")
            system = topic.startswith("$")
            found = tuple(
                entry
                for topic_filter, filter_levels, entry in self._subscriptions
                if not (system and filter_levels[0] in ("+", "#"))
                and (topic_filter == topic or _matches_levels(filter_levels, levels))
            )
            self._cache[topic] = found
        return found

    def __len__(self) -> int:
        return len(self._subscriptions)
