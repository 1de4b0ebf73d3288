"""Topic matching agrees with paho-mqtt's ``topic_matches_sub`` and with the MQTT spec.

paho-mqtt ≥ 2 (``paho.mqtt.matcher.MQTTMatcher``) follows MQTT 3.1.1 section 4.7.2 on
``$``-topics: a filter whose first level is ``+`` or ``#`` does not match a topic that
starts with ``$``. So no exception is needed: the property holds on every valid name and
filter, ``$``-topics included (the spec's own examples are checked below as well, in case a
paho release changes this). Inputs are valid names and filters only; what either side does
with invalid ones is not specified.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from pytest_edgesim.core.topics import TopicIndex, topic_matches, validate_topic_filter
from pytest_edgesim.strategies import topic_filters, topic_names


@st.composite
def name_and_matching_filter(draw: st.DrawFn) -> tuple[str, str]:
    """A topic name and a filter made from it: some levels turned into ``+``, maybe cut
    short with ``#``. Independent draws rarely match; these usually do, and sometimes not
    (a ``#`` or ``+`` at the first level of a ``$``-topic)."""
    name = draw(topic_names())
    levels = [draw(st.sampled_from([level, "+"])) for level in name.split("/")]
    if draw(st.booleans()):
        levels = [*levels[: draw(st.integers(0, len(levels)))], "#"]
    return "/".join(levels), name


@given(topic_filter=topic_filters(), topic=topic_names())
def test_matching_agrees_with_paho_on_independent_draws(topic_filter: str, topic: str):
    assert topic_matches(topic_filter, topic) == topic_matches_sub(topic_filter, topic)


@given(name_and_matching_filter())
def test_matching_agrees_with_paho_on_related_draws(pair: tuple[str, str]):
    topic_filter, topic = pair
    assert validate_topic_filter(topic_filter) is None
    assert topic_matches(topic_filter, topic) == topic_matches_sub(topic_filter, topic)
    if not topic.startswith("$"):
        assert topic_matches(topic_filter, topic)


@given(st.lists(topic_filters(), min_size=1, max_size=6), topic_names())
def test_the_broker_index_routes_to_exactly_the_matching_filters(filters: list[str], topic: str):
    index = TopicIndex()
    for position, topic_filter in enumerate(filters):
        index.subscribe(topic_filter, position)
    expected = tuple(i for i, f in enumerate(filters) if topic_matches_sub(f, topic))
    assert index.matching(topic) == expected
    assert index.matching(topic) == expected  # from the cache


# MQTT 3.1.1, section 4.7 (non-normative examples)
SPEC_EXAMPLES = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("#", "$SYS/monitor/Clients", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("$SYS/#", "$SYS", True),
    ("#", "$", False),
    ("+", "$", False),
    ("a/$SYS/+", "a/$SYS/b", True),
    ("+/$SYS", "a/$SYS", True),
]


@pytest.mark.parametrize(("topic_filter", "topic", "matches"), SPEC_EXAMPLES)
def test_the_specification_examples(topic_filter: str, topic: str, matches: bool):
    assert topic_matches(topic_filter, topic) is matches
    assert topic_matches_sub(topic_filter, topic) is matches
