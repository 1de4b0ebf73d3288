"""Python models of the built-in nodes: sensors, the broker, the cloud; their QoS sessions and
samplers. The gateway model lives with the rest of the gateway (:mod:`pytest_edgesim.gateway`)."""

from pytest_edgesim.core.models.broker import BrokerModel
from pytest_edgesim.core.models.cloud import CloudSink
from pytest_edgesim.core.models.sensor import SensorModel

__all__ = ["BrokerModel", "CloudSink", "SensorModel"]
