"""The user's own gateway logic (``implementation: python`` and ``logic: 'module:Name'``).

A user writes the gateway's behaviour once, as a :class:`~pytest_edgesim.lockstep.sdk.NodeLogic`
subclass (or a factory ``(node, config) -> logic``), and the same code runs in every tier:

- in process, in virtual time (kind ``python_logic``: a deterministic run, reproducible
  to the bit from the seed);
- in a container driven in virtual time (``implementation: docker``, ``docker.mode:
  lockstep``): an image built from the gateway image with the user's package added, serving
  the logic with ``python3 -m pytest_edgesim.lockstep MODULE:NAME``;
- as a real MQTT client in live runs, in this process or in that image
  (:class:`~pytest_edgesim.gateway.logic_service.LogicService`).

The logic gets the gateway's ``config:`` block as its ``config``, with ``forward_topic`` and
``forward_qos`` (the gateway's ``forward`` settings) added unless the block sets them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_edgesim.core.gateway_kinds import GatewayKind, WallClockStart
from pytest_edgesim.gateway.config import logic_config
from pytest_edgesim.gateway.logic_loading import load_logic
from pytest_edgesim.lockstep.host import HostedGateway, LocalHost, hosted_gateway

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.core.topology import GatewaySite


class UserLogicGateway(HostedGateway):
    """A gateway whose logic is the user's, hosted in this process."""

    implementation = "python"


def _in_virtual_time(spec: GatewaySpec, site: GatewaySite) -> HostedGateway:
    assert spec.logic is not None
    factory = load_logic(spec.logic, spec.name, site.scenario.base_dir)
    return hosted_gateway(spec, site, LocalHost(factory), logic_config(spec), UserLogicGateway)


def _on_the_wall_clock(start: WallClockStart) -> Any:
    from pytest_edgesim.gateway.logic_service import LogicService  # paho: live runs only

    service = LogicService(
        start.config,
        start.endpoint.host,
        start.endpoint.port,
        client_id=start.client_id,
        search=start.base_dir,
        credentials=start.credentials(),
    )
    service.start(connect_timeout_s=start.connect_timeout_s)
    return service


#: ``implementation: python``: the user's logic in this process, in virtual time or on a
#: real broker
KIND = GatewayKind(
    "python_logic",
    "your gateway logic in this process",
    virtual_time=_in_virtual_time,
    wall_clock=_on_the_wall_clock,
)
