"""A gateway image as a black box: what a gateway container is given, when it is ready, and
how trials are kept apart (a gateway's ``docker:`` block in ``mqtt`` mode).

The tool gives the program where the broker is and the trial's topic prefix, twice: as
placeholders in ``docker.command`` and ``docker.environment`` values (``{broker_host}``,
``{broker_port}``, ``{broker_username}``, ``{broker_password}``, ``{topic_prefix}``,
``{name}``, ``{client_id}``, ``{control_topic}``) and as environment variables
(``EDGESIM_BROKER_HOST``, ``EDGESIM_BROKER_PORT``, ``EDGESIM_BROKER_USERNAME``,
``EDGESIM_BROKER_PASSWORD`` (set only when the broker requires them),
``EDGESIM_TOPIC_PREFIX``, ``EDGESIM_GATEWAY_NAME``, ``EDGESIM_CLIENT_ID``,
``EDGESIM_CONTROL_TOPIC``, and the whole configuration as JSON in
``EDGESIM_GATEWAY_CONFIG``). The contract is written out for users in docs/your-system.md.

The project's own image (``edgesim/gateway`` with its own command) is ready at its
``gateway NAME ready`` line and answers the control protocol; any other program is ready,
by default, once the broker has seen it subscribe (:mod:`.readiness`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_edgesim.core.scenario.schema import PLACEHOLDERS
from pytest_edgesim.core.units import TICKS_PER_SECOND
from pytest_edgesim.docker.readiness import (
    BrokerLog,
    CommandSucceeds,
    LogLine,
    PortOpen,
    Subscribed,
    WaitStrategy,
)
from pytest_edgesim.errors import ScenarioError

if TYPE_CHECKING:
    import docker

    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.live.mqtt import BrokerCredentials, BrokerEndpoint

PROJECT_REPOSITORY = "edgesim/gateway"
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def is_project_program(spec: GatewaySpec) -> bool:
    """Whether ``spec`` runs the project's gateway program: the project's image (no
    ``docker.image`` or ``build``, or an ``edgesim/gateway`` tag) with the image's command."""
    settings = spec.docker
    if settings is None:
        return True
    if settings.command is not None or settings.build is not None:
        return False
    return settings.image is None or settings.image.split(":")[0] == PROJECT_REPOSITORY


def isolation(spec: GatewaySpec) -> str:
    """How trials of ``spec``'s gateway are kept apart: ``docker.isolation``, else ``prefix``
    for the project's program and a program given ``{topic_prefix}``, else ``restart``."""
    settings = spec.docker
    if settings is not None and settings.isolation is not None:
        return settings.isolation
    if is_project_program(spec) or (settings is not None and settings.takes_topic_prefix()):
        return "prefix"
    return "restart"


def program_key(spec: GatewaySpec) -> str:
    """What runs in ``spec``'s container: its image or build context, and its command."""
    settings = spec.docker
    if settings is None:
        return PROJECT_REPOSITORY
    source = settings.build or settings.image or PROJECT_REPOSITORY
    return " ".join([source, *(settings.command or [])])


def placeholder_values(
    spec: GatewaySpec,
    config: Mapping[str, Any],
    broker_host: str,
    broker_port: int,
    credentials: BrokerCredentials | None = None,
) -> dict[str, str]:
    """The values of the placeholders for one container of ``spec``'s gateway (the
    credentials empty for an anonymous broker)."""
    return {
        "broker_host": broker_host,
        "broker_port": str(broker_port),
        "broker_username": credentials.username if credentials is not None else "",
        "broker_password": credentials.password if credentials is not None else "",
        "topic_prefix": str(config.get("topic_prefix") or ""),
        "name": spec.name,
        # unique per container: a restarted or second container never takes over the first's
        "client_id": f"{spec.name}-{secrets.token_hex(4)}",
        "control_topic": str(config.get("control_topic") or ""),
    }


def substitute(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{placeholder}`` replaced; any other braces left as they are."""
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def container_environment(spec: GatewaySpec, values: Mapping[str, str]) -> dict[str, str]:
    """What the tool adds to the environment (``EDGESIM_TOPIC_PREFIX``...), then the
    scenario's ``docker.environment`` with its placeholders filled in."""
    environment = {
        "EDGESIM_TOPIC_PREFIX": values["topic_prefix"],
        "EDGESIM_GATEWAY_NAME": values["name"],
        "EDGESIM_CLIENT_ID": values["client_id"],
        "EDGESIM_CONTROL_TOPIC": values["control_topic"],
    }
    settings = spec.docker
    if settings is not None:
        for key, value in settings.environment.items():
            environment[key] = substitute(value, values)
    return environment


def container_command(spec: GatewaySpec, values: Mapping[str, str]) -> list[str] | None:
    """``docker.command`` with its placeholders filled in; None: the image's own."""
    settings = spec.docker
    if settings is None or settings.command is None:
        return None
    return [substitute(part, values) for part in settings.command]


def ready_strategy(
    spec: GatewaySpec,
    config: Mapping[str, Any],
    endpoint: BrokerEndpoint,
    client: docker.DockerClient,
) -> tuple[WaitStrategy, float]:
    """The wait strategy for ``spec``'s container and its timeout in seconds.

    ``subscribed`` needs the broker's log; with an external broker it is a
    :class:`~pytest_edgesim.errors.ScenarioError` saying which strategies remain.
    """
    from pytest_edgesim.docker.gateway import ready_pattern

    ready = spec.docker.ready if spec.docker is not None else None
    timeout_s = ready.timeout / TICKS_PER_SECOND if ready is not None else 30.0
    strategy = ready.strategy if ready is not None else None
    if strategy is None:
        strategy = "log" if is_project_program(spec) else "subscribed"
    if strategy == "log":
        pattern = ready.log if ready is not None and ready.log else ready_pattern(spec.name)
        return LogLine(pattern), timeout_s
    if strategy == "port":
        assert ready is not None and ready.port is not None
        return PortOpen(ready.port), timeout_s
    if strategy == "command":
        assert ready is not None and ready.command is not None
        return CommandSucceeds(ready.command), timeout_s
    broker_log = BrokerLog.of(endpoint, client)
    if broker_log is None:
        raise ScenarioError(
            f"gateway {spec.name!r}: ready: subscribed reads the broker's log, which an external "
            "broker does not show; choose docker.ready {log: REGEX}, {port: N} or "
            "{command: [...]}, or run the tests' own broker"
        )
    prefix = str(config.get("topic_prefix") or "")
    return Subscribed([prefix + s.filter for s in spec.subscribe], broker_log), timeout_s
