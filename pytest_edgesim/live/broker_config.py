"""The scenario's broker fields as Mosquitto options, for a broker started for a scenario.

The broker model and Mosquitto take the same options by the same names
(``max_inflight_messages``, ``max_queued_messages``, ``queue_qos0_messages``); a live run
measures what the model computes only on a broker configured with them. Every option is
written, defaults too: the model's default ``max_inflight_messages`` (0, no limit) is not
Mosquitto's (20).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario.schema import BrokerSpec

#: how often Mosquitto publishes its ``$SYS`` counters (seconds) on a broker started here
SYS_INTERVAL_S = 1


def mosquitto_settings(spec: BrokerSpec) -> dict[str, str]:
    """``mosquitto.conf`` options (name -> value) for the broker of ``spec``."""
    return {
        "max_inflight_messages": str(spec.max_inflight_messages),
        "max_queued_messages": str(spec.max_queued_messages),
        "queue_qos0_messages": "true" if spec.queue_qos0_messages else "false",
        "sys_interval": str(SYS_INTERVAL_S),
    }


def mosquitto_conf_lines(spec: BrokerSpec) -> list[str]:
    """The same options as ``mosquitto.conf`` lines."""
    return [f"{option} {value}" for option, value in mosquitto_settings(spec).items()]


#: Mosquitto's count of PUBLISHes it dropped for a full queue or in-flight window (the
#: model's ``queue_full``); QoS 0 messages not queued for an offline client are not in it
SYS_DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"
