"""The gateway model (``implementation: python_model``).

The gateway's behaviour (bounded queue, processing delay, aggregation, forwarding) lives in
:class:`pytest_edgesim.lockstep.gateway_logic.GatewayLogic`, which the gateway container
also serves over the lockstep protocol. This model hosts that logic in process through the
same coordinator-side node as a container (:class:`~pytest_edgesim.lockstep.node.HostedGateway`),
so a ``python_model`` gateway and a ``docker: {mode: lockstep}`` one give the same trace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..lockstep.gateway_logic import GatewayLogic
from ..lockstep.node import HostedGateway, LocalHost
from .delays import make_delay_sampler

if TYPE_CHECKING:
    from ..lockstep.sdk import NodeApi
    from ..network import NetworkModel
    from ..scenario.schema import GatewaySpec
    from .broker import BrokerModel


class GatewayModel(HostedGateway):
    """The gateway logic hosted in this process."""

    def __init__(
        self,
        name: str,
        spec: GatewaySpec,
        *,
        broker: BrokerModel,
        retry_interval: int,
        seed: int = 0,
        network: Callable[[], NetworkModel | None] | None = None,
    ):
        super().__init__(
            name,
            spec,
            LocalHost(_gateway_logic),
            broker=broker,
            retry_interval=retry_interval,
            seed=seed,
            network=network,
        )


def _gateway_logic(node: NodeApi, config: Mapping[str, Any]) -> GatewayLogic:
    # the sampler is looked up here at each run, so a test can swap it for this module
    return GatewayLogic(node, config, delay_sampler=make_delay_sampler)
