"""Notes on a valid scenario: things that are allowed but usually a mistake.

A note never stops a run (a test may inject on a topic no device publishes, for instance);
``edgesim validate`` and ``edgesim run`` print them, and ``Scenario.notes()`` returns them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pytest_edgesim.core.topics import topic_matches

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario.schema import ScenarioSpec

_EXAMPLES_SHOWN = 3


def scenario_notes(spec: ScenarioSpec, device_topics: Iterable[str]) -> list[str]:
    """One line per subscription that no device's or gateway's topic matches."""
    published = list(device_topics)
    published += [gateway.forward_topic for gateway in spec.gateways]
    notes = []
    for index, gateway in enumerate(spec.gateways):
        for position, subscription in enumerate(gateway.subscribe):
            if any(topic_matches(subscription.filter, topic) for topic in published):
                continue
            examples = ", ".join(published[:_EXAMPLES_SHOWN])
            more = " ..." if len(published) > _EXAMPLES_SHOWN else ""
            notes.append(
                f"gateways[{index}].subscribe[{position}]: {subscription.filter!r} matches no "
                f"topic published in the scenario ({examples or 'none'}{more}); "
                f"gateway {gateway.name!r} will receive only what a test injects"
            )
    return notes
