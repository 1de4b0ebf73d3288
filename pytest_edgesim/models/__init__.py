"""Python models of the nodes of an edge system: sensors, the broker, gateways, the cloud."""

from .broker import BrokerModel
from .cloud import CloudSink
from .gateway import GatewayModel
from .sensor import SensorModel

__all__ = ["BrokerModel", "CloudSink", "GatewayModel", "SensorModel"]
