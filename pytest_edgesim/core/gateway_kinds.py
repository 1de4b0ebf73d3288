"""Gateway kinds: how each gateway of a scenario becomes something that runs, declared once.

A gateway's kind is derived from its scenario entry once (:attr:`GatewaySpec.kind
<pytest_edgesim.core.scenario.schema.GatewaySpec.kind>`: ``python_model``,
``docker_lockstep`` or ``docker_mqtt``) and names a :class:`GatewayKind`. Kinds are found
in the entry-point group ``pytest_edgesim.gateway_kinds`` (each entry a ``GatewayKind``
object), or registered in code with :func:`register_gateway_kind`, which wins; the core
never imports the layers that provide them (the project's own gateway, Docker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_edgesim.errors import SimulationError

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_edgesim.core.node import Node
    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.core.topology import GatewaySite

ENTRY_POINT_GROUP = "pytest_edgesim.gateway_kinds"

#: ``(spec, site) -> Node``: the gateway as a node of a virtual-time run
VirtualTimeFactory = Callable[["GatewaySpec", "GatewaySite"], "Node"]


@dataclass(frozen=True)
class WallClockStart:
    """What a live run hands a gateway kind to start the gateway for real: its spec, its
    configuration (the JSON of :func:`~pytest_edgesim.gateway.config.config_from_spec`,
    durations already scaled to the wall clock), where the broker is (a
    :class:`~pytest_edgesim.live.mqtt.BrokerEndpoint`), the MQTT client id to use where the
    tool sets it, how long to wait for the connection, and the scenario's directory."""

    spec: GatewaySpec
    config: Mapping[str, Any]
    endpoint: Any
    client_id: str
    connect_timeout_s: float
    #: the scenario file's directory (a gateway's ``docker.build`` is relative to it, and its
    #: own logic may be there)
    base_dir: Path | None = None

    def credentials(self) -> tuple[str, str] | None:
        """``(username, password)`` for the broker, when it requires them."""
        given = getattr(self.endpoint, "credentials", None)
        return None if given is None else (given.username, given.password)


#: ``start -> runner``: the gateway running for real in a live run; the runner has
#: ``stop()`` and may have ``counters``, ``report()``, ``logs()`` and ``remove()``
WallClockLauncher = Callable[[WallClockStart], Any]


@dataclass(frozen=True)
class GatewayKind:
    """One way to run a scenario's gateway.

    ``virtual_time`` builds it as a node of a virtual-time run (None: the kind runs only on
    the wall clock, in live runs); ``wall_clock`` starts it for real in a live run (None: it
    cannot run there); ``needs_docker`` says whether either needs the Docker engine.
    ``native`` says whether the native engine may run its own model of the gateway now in
    its place (None: never; see :mod:`pytest_edgesim.core.native`, which models only the
    project's gateway logic); otherwise the native engine runs the node ``virtual_time``
    makes, calling it back (see :mod:`pytest_edgesim.core.native_nodes`).
    """

    name: str
    description: str
    needs_docker: bool = False
    virtual_time: VirtualTimeFactory | None = None
    wall_clock: WallClockLauncher | None = None
    native: Callable[[], bool] | None = None

    @property
    def runs_in_virtual_time(self) -> bool:
        return self.virtual_time is not None


_registered: dict[str, GatewayKind] = {}


def register_gateway_kind(kind: GatewayKind) -> None:
    """Provide (or replace) the gateway kind ``kind.name`` in this process."""
    _registered[kind.name] = kind


def unregister_gateway_kind(name: str) -> None:
    _registered.pop(name, None)


def gateway_kind(name: str) -> GatewayKind:
    """The gateway kind ``name``: registered in code, else from the entry-point group."""
    kind = _registered.get(name)
    if kind is not None:
        return kind
    for entry in entry_points(group=ENTRY_POINT_GROUP, name=name):
        loaded = entry.load()
        if not isinstance(loaded, GatewayKind):
            raise SimulationError(
                f"entry point {entry.value!r} of group {ENTRY_POINT_GROUP!r} is not a GatewayKind"
            )
        _registered[name] = loaded
        return loaded
    known = sorted({*_registered, *(entry.name for entry in entry_points(group=ENTRY_POINT_GROUP))})
    raise SimulationError(
        f"no gateway kind {name!r} (known: {', '.join(known) or 'none'}; is pytest-edgesim "
        "installed? its gateway kinds are entry points of the installed distribution)"
    )


def register_gateway_implementation(key: str, factory: Callable[[str, Any, Any], Node]) -> None:
    """The 0.1 form of :func:`register_gateway_kind`, kept for one release: ``key`` is
    ``"docker:lockstep"``-style and ``factory(name, spec, site)`` builds the node."""
    import warnings

    warnings.warn(
        "register_gateway_implementation is deprecated: use "
        "register_gateway_kind(GatewayKind(name, description, virtual_time=...))",
        DeprecationWarning,
        stacklevel=2,
    )
    name = key.replace(":", "_")
    register_gateway_kind(
        GatewayKind(
            name,
            f"registered with register_gateway_implementation({key!r})",
            needs_docker=name.startswith("docker"),
            virtual_time=lambda spec, site: factory(spec.name, spec, site),
        )
    )
