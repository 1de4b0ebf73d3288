"""Statistical runs on real components: a scenario on a real MQTT broker, on the wall clock.

:class:`LiveRun` is the live counterpart of :class:`~pytest_edgesim.core.simulation.Simulation`;
:class:`BrokerEndpoint` says where the broker is. See docs/tiers.md, "Statistical runs on
real components".
"""

from pytest_edgesim.live.mqtt import BrokerEndpoint, BrokerUnreachableError
from pytest_edgesim.live.run import LiveCoordinator, LiveRun, scale_config

__all__ = ["BrokerEndpoint", "BrokerUnreachableError", "LiveCoordinator", "LiveRun", "scale_config"]
