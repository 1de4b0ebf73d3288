"""The gateway model (``implementation: python_model``) and its gateway kind.

The gateway's behaviour (bounded queue, processing delay, aggregation, forwarding) lives in
:class:`~pytest_edgesim.gateway.logic.GatewayLogic`, which the gateway container also serves
over the lockstep protocol. This model hosts that logic in process through the same
coordinator-side node as a container (:class:`~pytest_edgesim.lockstep.host.HostedGateway`),
so a ``python_model`` gateway and a ``docker: {mode: lockstep}`` one give the same trace. In
a live run the kind runs the same logic as a real MQTT client in this process
(:class:`~pytest_edgesim.gateway.service.GatewayService`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_edgesim.core.gateway_kinds import GatewayKind, WallClockStart
from pytest_edgesim.core.models.delays import make_delay_sampler
from pytest_edgesim.gateway.config import config_from_spec
from pytest_edgesim.gateway.logic import GatewayLogic
from pytest_edgesim.lockstep.host import HostedGateway, LocalHost

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.core.topology import GatewaySite
    from pytest_edgesim.gateway.service import GatewayService
    from pytest_edgesim.lockstep.sdk import NodeApi


class GatewayModel(HostedGateway):
    """The gateway logic hosted in this process."""

    def __init__(
        self,
        name: str,
        spec: GatewaySpec,
        *,
        broker: Any,
        retry_interval: int,
        seed: int = 0,
        config: Mapping[str, Any] | None = None,
    ):
        super().__init__(
            name,
            spec,
            LocalHost(_gateway_logic),
            broker=broker,
            retry_interval=retry_interval,
            seed=seed,
            config=config_from_spec(spec) if config is None else config,
        )


def _gateway_logic(node: NodeApi, config: Mapping[str, Any]) -> GatewayLogic:
    # the sampler is looked up here at each run, so a test can swap it for this module
    return GatewayLogic(node, config, delay_sampler=make_delay_sampler)


def _in_virtual_time(spec: GatewaySpec, site: GatewaySite) -> GatewayModel:
    return GatewayModel(
        spec.name, spec, broker=site.broker, retry_interval=site.retry_interval, seed=site.seed
    )


def _on_the_wall_clock(start: WallClockStart) -> GatewayService:
    from pytest_edgesim.gateway.service import GatewayService  # paho: live runs only

    service = GatewayService(
        start.config,
        start.endpoint.host,
        start.endpoint.port,
        client_id=start.client_id,
        credentials=start.credentials(),
    )
    service.start(connect_timeout_s=start.connect_timeout_s)
    return service


#: ``implementation: python_model``: the model in virtual time, a paho client in live runs
KIND = GatewayKind(
    "python_model",
    "the gateway logic in this process",
    virtual_time=_in_virtual_time,
    wall_clock=_on_the_wall_clock,
)
