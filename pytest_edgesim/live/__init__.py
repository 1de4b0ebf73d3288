"""Statistical runs on real components: a scenario on a real MQTT broker, on the wall clock.

:class:`LiveRun` is the live counterpart of :class:`~pytest_edgesim.simulation.Simulation`;
:class:`BrokerEndpoint` says where the broker is. See docs/tiers.md, "Statistical runs on
real components".
"""

from .mqtt import BrokerEndpoint, BrokerUnreachableError
from .run import LiveCoordinator, LiveRun, scale_config

__all__ = ["BrokerEndpoint", "BrokerUnreachableError", "LiveCoordinator", "LiveRun", "scale_config"]
