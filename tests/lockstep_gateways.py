"""Lockstep gateways served by a test instead of a container (a helper of the tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_edgesim.core import gateway_kinds
from pytest_edgesim.core.gateway_kinds import GatewayKind


def serve_lockstep_gateways(
    monkeypatch: pytest.MonkeyPatch, factory: Callable[[Any, Any], Any]
) -> None:
    """Make ``docker: {mode: lockstep}`` gateways in this test the nodes ``factory(spec,
    site)`` makes (a socket host the test serves, say), not containers."""
    monkeypatch.setitem(
        gateway_kinds._registered,
        "docker_lockstep",
        GatewayKind("docker_lockstep", "served by the test", virtual_time=factory),
    )
