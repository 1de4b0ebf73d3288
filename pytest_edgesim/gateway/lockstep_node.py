"""The gateway image's lockstep entry point: ``python3 -m pytest_edgesim.gateway.lockstep_node``.

Serves :class:`~pytest_edgesim.gateway.logic.GatewayLogic` over the lockstep
protocol on ``$EDGESIM_LOCKSTEP_PORT`` (default 7883); the configuration arrives in the
coordinator's hello. The image's default command stays the MQTT gateway.
"""

from __future__ import annotations

from pytest_edgesim.gateway.logic import GatewayLogic
from pytest_edgesim.lockstep.sdk import run

if __name__ == "__main__":
    run(GatewayLogic)
