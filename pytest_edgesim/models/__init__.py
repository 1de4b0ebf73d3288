"""Python models of the nodes of an edge system: sensors, the broker, gateways, the cloud.

The names are loaded when first used, so that importing one model module (for example
``models.session``, which the lockstep gateway host needs) does not import the gateway
model, which imports that host in turn.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .broker import BrokerModel
    from .cloud import CloudSink
    from .gateway import GatewayModel
    from .sensor import SensorModel

__all__ = ["BrokerModel", "CloudSink", "GatewayModel", "SensorModel"]
_HOMES = {
    "BrokerModel": "broker",
    "CloudSink": "cloud",
    "GatewayModel": "gateway",
    "SensorModel": "sensor",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{home}", __name__), name)
