"""Entry point of the gateway container: ``python -m pytest_edgesim.gateway``.

The configuration comes from the environment: ``EDGESIM_GATEWAY_CONFIG`` (the JSON made by
:func:`pytest_edgesim.gateway.config.config_from_spec`), ``EDGESIM_BROKER_HOST`` and
``EDGESIM_BROKER_PORT``, and ``EDGESIM_BROKER_USERNAME`` and ``EDGESIM_BROKER_PASSWORD``
when the broker requires them. A configuration the gateway cannot run exits 2 with one line
on stderr, before ``ready``. The process runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from pytest_edgesim.gateway.service import GatewayService


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(message)s"
    )
    from pytest_edgesim.errors import ScenarioError
    from pytest_edgesim.gateway.config import GatewayConfigError

    raw = os.environ.get("EDGESIM_GATEWAY_CONFIG")
    if not raw:
        print("EDGESIM_GATEWAY_CONFIG is not set: nothing to run", file=sys.stderr)
        return 2
    try:
        config = json.loads(raw)
    except ValueError as exc:
        print(f"EDGESIM_GATEWAY_CONFIG is not valid JSON: {exc}", file=sys.stderr)
        return 2
    host = os.environ.get("EDGESIM_BROKER_HOST", "broker")
    try:
        port = int(os.environ.get("EDGESIM_BROKER_PORT", "1883"))
        connect_timeout_s = float(os.environ.get("EDGESIM_CONNECT_TIMEOUT", "30"))
    except ValueError as exc:
        print(
            f"EDGESIM_BROKER_PORT and EDGESIM_CONNECT_TIMEOUT are numbers: {exc}", file=sys.stderr
        )
        return 2
    try:
        service = _service(config, host, port, _credentials())
    except GatewayConfigError as exc:
        print(f"EDGESIM_GATEWAY_CONFIG is not a gateway configuration: {exc}", file=sys.stderr)
        return 2
    except ScenarioError as exc:  # the user's logic cannot be imported
        print(str(exc), file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        service.start(connect_timeout_s=connect_timeout_s)
    except TimeoutError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"gateway {service.name} ready", flush=True)
    stop.wait()
    service.stop()
    print(f"gateway {service.name} stopped: {json.dumps(service.counters)}", flush=True)
    return 0


def _credentials() -> tuple[str, str] | None:
    username = os.environ.get("EDGESIM_BROKER_USERNAME")
    if not username:
        return None
    return username, os.environ.get("EDGESIM_BROKER_PASSWORD", "")


def _service(
    config: dict[str, Any], host: str, port: int, credentials: tuple[str, str] | None = None
) -> GatewayService:
    """The project's gateway, or the user's logic when the configuration names one."""
    if isinstance(config, dict) and config.get("logic"):
        from pytest_edgesim.gateway.logic_service import LogicService

        return LogicService(config, host, port, credentials=credentials)
    return GatewayService(config, host, port, credentials=credentials)


if __name__ == "__main__":
    sys.exit(main())
