"""The Docker-tier fixtures: ``mqtt_broker``, ``docker_gateway``, and live ``edge_scenario`` runs.

``mqtt_broker`` is one real broker per session (per xdist worker): a Mosquitto container
(``--edgesim-broker=docker``, the default when the engine answers), a local ``mosquitto``
process (``process``, the default otherwise) or a broker that is already running
(``external=HOST:PORT``). Tests share it safely through a per-test topic prefix. A broker
that ``@pytest.mark.edgesim(broker=...)`` or a scenario's ``broker:`` section names (a
Debian release, an image, a build context, a configuration) is a container too, started
once per session for each distinct one (:class:`_SessionBrokers`). Heavy imports (docker,
paho) happen inside the fixtures, so loading the plugin stays cheap.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_edgesim.errors import RequirementError
from pytest_edgesim.pytest_plugin import settings
from pytest_edgesim.pytest_plugin.markers import broker_id

if TYPE_CHECKING:
    from pytest_edgesim.core.scenario import Scenario
    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.docker.session import BrokerChoice, BrokerContainer, GatewayContainer
    from pytest_edgesim.live import BrokerEndpoint, LiveRun
    from pytest_edgesim.live.pool import GatewayPool, PooledGateway

_docker_key = pytest.StashKey[tuple[bool, str]]()
_client_key = pytest.StashKey[Any]()
_logs_key = pytest.StashKey["_LogSources"]()
_prefix_counter = itertools.count(1)


# --- the engine -----------------------------------------------------------------------------
def docker_status(config: pytest.Config) -> tuple[bool, str]:
    """``(available, description or reason)``, asked of the engine once per session."""
    if _docker_key not in config.stash:
        from pytest_edgesim.docker.session import docker_available

        config.stash[_docker_key] = docker_available()
    return config.stash[_docker_key]


def _docker_client(config: pytest.Config) -> Any:
    if _client_key not in config.stash:
        from pytest_edgesim.docker.session import connect

        config.stash[_client_key] = connect()
    return config.stash[_client_key]


def _unavailable(config: pytest.Config, reason: str) -> Any:
    """Skip, or an error under ``--edgesim-docker=require``."""
    if settings.docker_mode(config) == "require":
        raise RequirementError(f"{reason}; --edgesim-docker=require")
    pytest.skip(reason)


# --- the broker -----------------------------------------------------------------------------
@dataclass
class MqttBroker:
    """The session's broker. ``topic_prefix`` is the running test's own (``edgesim/...``/);
    put every topic a test uses under it."""

    backend: str
    host: str
    port: int
    container: BrokerContainer | None = None
    network: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None
    topic_prefix: str = ""
    _clients: list[Any] = field(default_factory=list, repr=False)
    _close: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _pool: GatewayPool | None = field(default=None, repr=False)
    #: kept gateway containers (``--edgesim-keep-containers``) on their own topics: only the
    #: newest runs, or it would hear the next run's messages
    _kept_on_own_topics: list[Any] = field(default_factory=list, repr=False)

    @property
    def version(self) -> str | None:
        """Which broker it is (``mosquitto 2.0.21 (trixie)``), when known."""
        return self.container.version if self.container is not None else None

    @property
    def gateway_pool(self) -> GatewayPool:
        """Gateway containers that live runs on this broker reuse (removed with it)."""
        if self._pool is None:
            from pytest_edgesim.live.pool import GatewayPool

            self._pool = GatewayPool(self.endpoint)
            self._close.append(self._pool.close)
        return self._pool

    @property
    def endpoint(self) -> BrokerEndpoint:
        from pytest_edgesim.live import BrokerEndpoint

        if self.container is not None:
            return BrokerEndpoint(
                self.host,
                self.port,
                self.network,
                self.container.name,
                version=self.container.version,
                configuration=self.container.configuration,
                credentials=self.container.credentials,
            )
        log_file = str(self.log_path) if self.log_path is not None else None
        return BrokerEndpoint(self.host, self.port, log_file=log_file)

    def new_prefix(self, nodeid: str) -> str:
        """A topic prefix no other test (or other run in this test) uses."""
        if self._pool is not None:
            self._pool.note_activity()
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        test = f"{zlib.crc32(nodeid.encode()):08x}-{next(_prefix_counter)}"
        return f"edgesim/{worker}-{os.getpid()}/{test}/"

    def client(
        self,
        subscriptions: Sequence[tuple[str, int]] = (),
        on_message: Callable[[str, bytes], None] | None = None,
        role: str = "test",
    ) -> Any:
        """A connected paho client (its loop running), subscribed to ``subscriptions``
        (``(filter, qos)``, taken as given: add ``topic_prefix`` yourself) with SUBACK
        received; ``on_message(topic, payload)``. Disconnected at the end of the test."""
        from pytest_edgesim.live import mqtt

        client = mqtt.connect(
            self.endpoint, role, subscriptions=subscriptions, on_message=on_message
        )
        self._clients.append(client)
        return client

    def logs(self) -> list[str]:
        """The broker's last log lines (a container's, or the process's)."""
        if self.container is not None:
            return self.container.logs()
        if self.log_path is None or not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()[-40:]

    def end_test(self) -> None:
        from pytest_edgesim.live import mqtt

        while self._clients:
            mqtt.disconnect(self._clients.pop())

    def close(self) -> None:
        """Run every close step (the last added first), even when one fails; then raise the
        first failure, so one stubborn gateway cannot leave the broker and network behind."""
        errors: list[BaseException] = []
        try:
            self.end_test()
        except Exception as error:
            errors.append(error)
        while self._close:
            try:
                self._close.pop()()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]


def _start_docker_broker(config: pytest.Config, choice: BrokerChoice | None = None) -> MqttBroker:
    from pytest_edgesim.docker.session import start_broker_on_own_network

    container, network, removal = start_broker_on_own_network(
        _docker_client(config), keep=settings.keep_containers(config), choice=choice
    )
    broker = MqttBroker("docker", container.host, container.port, container, network)
    broker._close += removal  # (none when kept: they are listed at the end of the run)
    return broker


class _SessionBrokers:
    """The session's brokers: the default one (``--edgesim-broker``) and one container per
    distinct broker a test or scenario names (by :attr:`BrokerChoice.key`: the source and
    the configuration's content), each started when first asked for, all closed at the end."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.by_key: dict[str, MqttBroker] = {}

    def default(self) -> MqttBroker:
        if "" not in self.by_key:
            try:
                self.by_key[""] = _start_broker(self.config)
            except Exception as error:
                # a broker container that never answers: a set-up error, not a failed trial
                # (a ReadinessError comes from that module, so it is loaded if this is one)
                session = sys.modules.get("pytest_edgesim.docker.session")
                if session is None or not isinstance(error, session.ReadinessError):
                    raise
                raise RequirementError(f"the session's broker did not start: {error}") from None
        return self.by_key[""]

    def get(self, choice: BrokerChoice) -> MqttBroker:
        """The broker ``choice`` names (a container: it needs the engine)."""
        if choice.is_default:
            return self.default()
        key = choice.key
        if key not in self.by_key:
            available, reason = docker_status(self.config)
            if settings.docker_mode(self.config) == "off":
                pytest.skip(f"broker {choice.source}: Docker items are off (--edgesim-docker=off)")
            if not available:
                _unavailable(self.config, f"broker {choice.source} needs a Docker engine: {reason}")
            from pytest_edgesim.docker.session import ReadinessError

            try:
                self.by_key[key] = _start_docker_broker(self.config, choice)
            except ReadinessError as error:  # the user's broker or configuration: a set-up error
                raise RequirementError(
                    f"the broker {choice.source} ({choice.configuration()}) did not start: {error}"
                ) from None
        return self.by_key[key]

    def close(self) -> None:
        errors = []
        while self.by_key:
            _, broker = self.by_key.popitem()
            try:
                broker.close()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]


def _choice(entry: Mapping[str, str]) -> BrokerChoice:
    """A ``broker=`` entry (see :func:`.markers.broker_parameters`) as a broker choice."""
    from pytest_edgesim.docker.session import BrokerChoice

    return BrokerChoice(
        release=entry.get("release"),
        image=entry.get("image"),
        build=Path(entry["build"]) if "build" in entry else None,
        config=Path(entry["config"]) if "config" in entry else None,
    )


def scenario_broker(broker: Any, scenario: Scenario) -> Scenario:
    """``scenario`` with the broker of a ``broker=`` entry: implementation docker, the
    entry's source (release, image or build) and configuration in place of the scenario's."""
    if broker is None:
        return scenario
    overrides: dict[str, Any] = {"broker.implementation": "docker"}
    source = {key: broker[key] for key in ("release", "image", "build") if key in broker}
    if source:
        overrides["broker.docker"] = source
    if "config" in broker:
        overrides["broker.config"] = broker["config"]
    return scenario.with_overrides(overrides)


def mqtt_broker_parameters(
    item: pytest.Item, brokers: list[tuple[str, dict[str, str]]] | None
) -> list[tuple[str, dict[str, str]]] | None:
    """The brokers ``mqtt_broker`` takes for ``item``: each ``broker=`` entry laid over the
    broker the marker's scenario names (its source replaced when the entry names one, its
    configuration when the entry has one), or the scenario's broker alone; None when
    neither names a broker."""
    from pytest_edgesim.pytest_plugin.items import item_scenario

    marker = item.get_closest_marker("edgesim")
    named = marker is not None and bool(marker.args or marker.kwargs.get("scenario"))
    own = _broker_entry(item_scenario(item)[0]) if named else None
    if own is None:
        return brokers
    if brokers is None:
        return [(broker_id(own), own)]
    merged = []
    for test_id, entry in brokers:
        base = {key: value for key, value in own.items() if key == "config"}
        if not any(key in entry for key in ("release", "image", "build")):
            base = dict(own)
        merged.append((test_id, {**base, **entry}))
    return merged


def _broker_entry(scenario: Scenario) -> dict[str, str] | None:
    """The scenario's broker as a ``broker=`` entry (paths absolute), or None for the
    session's own broker."""
    spec = scenario.spec.broker
    if spec.implementation != "docker" or (spec.docker is None and spec.config is None):
        return None
    base = Path(scenario.base_dir or ".")
    entry: dict[str, str] = {}
    if spec.docker is not None:
        for key in ("release", "image"):
            if getattr(spec.docker, key):
                entry[key] = getattr(spec.docker, key)
        if spec.docker.build:
            entry["build"] = str((base / spec.docker.build).resolve())
    if spec.config is not None:
        entry["config"] = str((base / spec.config).resolve())
    return entry


def _scenario_choice(scenario: Scenario) -> BrokerChoice | None:
    """The broker a scenario's ``broker:`` section names, or None for the session's own."""
    entry = _broker_entry(scenario)
    return None if entry is None else _choice(entry)


def _start_broker(config: pytest.Config) -> MqttBroker:
    backend = settings.broker_backend(config)
    kind = backend[0] if backend else None
    if kind == "external":
        assert backend is not None and backend[1] is not None and backend[2] is not None
        from pytest_edgesim.live.probe import mqtt_connack

        try:
            code = mqtt_connack(backend[1], backend[2])
        except OSError as error:
            code = error  # type: ignore[assignment]
        if code != 0:
            # named explicitly, so not there is an error of the set-up (not a skip), whatever
            # --edgesim-docker says
            raise RequirementError(
                f"external broker {backend[1]}:{backend[2]} (--edgesim-broker): no CONNACK "
                f"({code}); start it, or choose another broker"
            )
        return MqttBroker("external", backend[1], backend[2])
    if kind == "docker" and settings.docker_mode(config) == "off":
        pytest.skip("--edgesim-broker=docker: Docker items are off (--edgesim-docker=off)")
    docker_ok, reason = docker_status(config)
    if kind == "docker" or (kind is None and docker_ok and settings.docker_mode(config) != "off"):
        if not docker_ok:
            _unavailable(config, f"--edgesim-broker=docker needs a Docker engine: {reason}")
        return _start_docker_broker(config)
    from pytest_edgesim.live.process_broker import MOSQUITTO_ENV, mosquitto_binary

    binary = mosquitto_binary()
    if binary is None:
        _unavailable(
            config,
            "no MQTT broker: no Docker engine "
            f"({reason}) and no mosquitto binary (install mosquitto or set {MOSQUITTO_ENV})",
        )
    assert binary is not None
    return _start_process_broker(binary)


def _start_process_broker(binary: str) -> MqttBroker:
    from pytest_edgesim.live.process_broker import ProcessBroker

    process = ProcessBroker.start(binary)
    broker = MqttBroker(
        "process", process.host, process.port, process=process.process, log_path=process.log_path
    )
    broker._close.append(process.stop)
    return broker


@pytest.fixture(scope="session")
def _edgesim_brokers(pytestconfig: pytest.Config) -> Iterator[_SessionBrokers]:
    brokers = _SessionBrokers(pytestconfig)
    try:
        yield brokers
    finally:
        brokers.close()


@pytest.fixture(scope="session")
def mqtt_broker(request: pytest.FixtureRequest, _edgesim_brokers: _SessionBrokers) -> MqttBroker:
    """A real MQTT broker for the whole session (one per xdist worker): ``host``, ``port``,
    ``client()``, ``container`` (docker backend), ``topic_prefix`` (the running test's),
    ``version`` (``mosquitto 2.0.21 (trixie)``, when known). Under
    ``@pytest.mark.edgesim(broker=[...])`` the broker of each parameter, shared with every
    test that names the same broker."""
    entry = getattr(request, "param", None)
    if entry is None:
        return _edgesim_brokers.default()
    return _edgesim_brokers.get(_choice(entry))


@pytest.fixture
def edgesim_broker(request: pytest.FixtureRequest) -> dict[str, str] | None:
    """The broker this test runs on (an entry of ``broker=`` on the marker: ``release``,
    ``image``, ``build``, ``config``), or None for the scenario's own."""
    return dict(request.param) if hasattr(request, "param") else None


@pytest.fixture(autouse=True)
def _edgesim_mqtt_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Gives a test that uses ``mqtt_broker`` its own topic prefix and closes its clients."""
    if "mqtt_broker" not in request.fixturenames:
        yield
        return
    broker: MqttBroker = request.getfixturevalue("mqtt_broker")
    broker.topic_prefix = broker.new_prefix(request.node.nodeid)
    _log_sources(request.node).append((f"broker ({broker.backend})", broker.logs))
    try:
        yield
    finally:
        broker.end_test()


# --- gateway containers ---------------------------------------------------------------------
class _LogSources:
    """The log sources of one test: by title, the latest last, at most ``limit`` of them
    (a statistical test starts a gateway per trial)."""

    def __init__(self, limit: int = 4):
        self.limit = limit
        self.by_title: dict[str, Callable[[], Sequence[str]]] = {}

    def append(self, source: tuple[str, Callable[[], Sequence[str]]]) -> None:
        title, logs = source
        self.by_title.pop(title, None)
        self.by_title[title] = logs
        while len(self.by_title) > self.limit:
            del self.by_title[next(iter(self.by_title))]


def _log_sources(item: pytest.Item) -> _LogSources:
    sources = item.stash.get(_logs_key, None)
    if sources is None:
        sources = item.stash[_logs_key] = _LogSources()
    return sources


def container_log_sections(item: pytest.Item) -> list[tuple[str, str]]:
    """Report sections with the last log lines of the containers (and broker) a test used."""
    sections = []
    sources = item.stash.get(_logs_key, None)
    for title, logs in sources.by_title.items() if sources is not None else ():
        try:
            lines = list(logs())
        except Exception as error:  # a log we cannot read must not hide the failure
            lines = [f"(cannot read the logs: {error})"]
        sections.append((f"edgesim logs: {title}", "\n".join(lines) or "(no output)"))
    return sections


def _launch_gateway(
    item: pytest.Item,
    spec: GatewaySpec,
    gateway_config: Mapping[str, Any],
    endpoint: BrokerEndpoint,
    started: list[GatewayContainer],
    base_dir: Path | None = None,
) -> GatewayContainer:
    from pytest_edgesim.docker.session import gateway_launcher

    launch = gateway_launcher(_docker_client(item.config), base_dir)
    container = launch(spec, gateway_config, endpoint)
    started.append(container)
    _log_sources(item).append((f"gateway {spec.name} ({container.name})", container.logs))
    return container


def _pooled_gateway(
    item: pytest.Item,
    broker: MqttBroker,
    spec: GatewaySpec,
    gateway_config: Mapping[str, Any],
    endpoint: BrokerEndpoint,
    base_dir: Path | None = None,
) -> PooledGateway:
    """A gateway container for a live run, reused across the trials (and tests) that need
    the same configuration: the first costs a container start, the next a reset (or, for a
    program that does not answer the control protocol, a restart or a new container)."""
    from pytest_edgesim.docker.session import gateway_isolation, gateway_launcher, gateway_program

    launch = gateway_launcher(_docker_client(item.config), base_dir)
    program = gateway_program(spec)

    def start(config: Mapping[str, Any]) -> Any:  # a GatewayContainer
        return launch(spec, config, endpoint)

    gateway = broker.gateway_pool.acquire(
        gateway_config, program, start, program=program, isolation=gateway_isolation(spec)
    )
    _log_sources(item).append((f"gateway {spec.name} ({gateway.name})", gateway.logs))
    return gateway


def _kept_gateway(
    item: pytest.Item,
    broker: MqttBroker,
    spec: GatewaySpec,
    gateway_config: Mapping[str, Any],
    endpoint: BrokerEndpoint,
    base_dir: Path | None,
) -> GatewayContainer:
    """A gateway container left running after its run (``--edgesim-keep-containers``). One
    isolated by restart uses its own topics: the one kept before it is stopped (kept, not
    removed), so that it hears nothing of this run."""
    from pytest_edgesim.docker.session import gateway_isolation

    own_topics = gateway_isolation(spec) == "restart"
    if own_topics:
        while broker._kept_on_own_topics:
            broker._kept_on_own_topics.pop().park()
    container = _launch_gateway(item, spec, gateway_config, endpoint, [], base_dir)
    if own_topics:
        broker._kept_on_own_topics.append(container)
    return container


def _gateway_spec(spec: Any) -> GatewaySpec:
    from pydantic import ValidationError

    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.errors import ScenarioError

    if isinstance(spec, GatewaySpec):
        return spec
    try:
        return GatewaySpec.model_validate(spec)
    except ValidationError as error:
        raise ScenarioError(
            [
                "docker_gateway spec" + "".join(f".{part}" for part in problem["loc"]) + ": "
                f"{problem['msg']}"
                for problem in error.errors()
            ]
        ) from None


@pytest.fixture
def docker_gateway(
    request: pytest.FixtureRequest, mqtt_broker: MqttBroker
) -> Iterator[Callable[..., GatewayContainer]]:
    """A factory: ``docker_gateway(spec, topic_prefix=None)`` starts the gateway image for
    ``spec`` (a ``GatewaySpec`` or a dict written as in a scenario's ``gateways`` entry) on
    ``mqtt_broker``, under the test's topic prefix, and returns it once it is subscribed.
    Every container it started is removed after the test (unless the session keeps them)."""
    from pytest_edgesim.gateway.config import config_from_spec

    item = request.node
    if settings.docker_mode(item.config) == "off":
        pytest.skip("docker_gateway: Docker items are off (--edgesim-docker=off)")
    status = docker_status(item.config)
    if not status[0]:
        _unavailable(item.config, f"docker_gateway needs a Docker engine: {status[1]}")
    started: list[GatewayContainer] = []

    def start(spec: Any, topic_prefix: str | None = None) -> GatewayContainer:
        gateway = _gateway_spec(spec)
        prefix = mqtt_broker.topic_prefix if topic_prefix is None else topic_prefix
        return _launch_gateway(
            item, gateway, config_from_spec(gateway, prefix), mqtt_broker.endpoint, started
        )

    try:
        yield start
    finally:
        if not settings.keep_containers(item.config):  # kept: listed at the end of the run
            for container in started:
                container.remove()


# --- the live path of edge_scenario ------------------------------------------------------------
def docker_tier_problem(item: pytest.Item, scenario: Scenario) -> str | None:
    """Why the Docker components of ``scenario`` cannot run here, or None when they can.

    Wall-clock components (a Docker broker, a Docker gateway in ``mqtt`` mode) run live
    (:class:`~pytest_edgesim.live.LiveRun`); they need a broker and, for a gateway
    container, the engine.
    """
    from pytest_edgesim.core.edge_scenario import wall_clock_components
    from pytest_edgesim.core.gateway_kinds import gateway_kind

    spec = scenario.spec
    docker_gateways = [g for g in spec.gateways if gateway_kind(g.kind).needs_docker]
    available, reason = docker_status(item.config)
    if docker_gateways and not available:
        names = ", ".join(g.name for g in docker_gateways)
        return f"implementation: docker (gateway {names}) needs a Docker engine: {reason}"
    choice = _scenario_choice(scenario)
    if choice is not None and not available:
        return f"broker {choice.source} (the scenario's broker: section) needs Docker: {reason}"
    if wall_clock_components(scenario) and not available:
        backend = settings.broker_backend(item.config)
        if backend is not None and backend[0] == "docker":
            return f"--edgesim-broker=docker needs a Docker engine: {reason}"
        from pytest_edgesim.live.process_broker import mosquitto_binary

        if backend is None and mosquitto_binary() is None:
            return f"a live run needs a broker: no Docker engine ({reason}) and no mosquitto"
    return None


def _restart_isolated(scenario: Scenario) -> bool:
    """Whether a gateway container of ``scenario`` is isolated by restart (``docker.isolation``)."""
    from pytest_edgesim.core.gateway_kinds import gateway_kind

    docker_gateways = [g for g in scenario.spec.gateways if gateway_kind(g.kind).needs_docker]
    if not docker_gateways:
        return False
    from pytest_edgesim.docker.session import gateway_isolation

    return any(gateway_isolation(g) == "restart" for g in docker_gateways)


def live_factory(request: pytest.FixtureRequest) -> Callable[[Scenario, int, str], LiveRun]:
    """What ``edge_scenario`` builds instead of a Simulation for a wall-clock scenario: a
    :class:`~pytest_edgesim.live.LiveRun` on the session's ``mqtt_broker``."""
    from pytest_edgesim.live import LiveRun

    item = request.node
    brokers: _SessionBrokers = request.getfixturevalue("_edgesim_brokers")
    marker = item.get_closest_marker("edgesim")
    time_scale = settings.resolve_time_scale(
        item.config, marker.kwargs.get("time_scale") if marker is not None else None
    )
    keep = settings.keep_containers(item.config)

    def build(scenario: Scenario, seed: int, trace: str) -> LiveRun:
        choice = _scenario_choice(scenario)
        if choice is None:
            broker: MqttBroker = request.getfixturevalue("mqtt_broker")
        else:
            broker = brokers.get(choice)
        title = f"broker ({broker.backend}{f', {broker.version}' if broker.version else ''})"
        _log_sources(item).append((title, broker.logs))
        base_dir = scenario.base_dir  # a gateway's docker.build and logic are relative to it

        def launch(spec: GatewaySpec, config: Mapping[str, Any], endpoint: BrokerEndpoint) -> Any:
            if keep:  # a container of its own, left running (listed at the end of the run)
                return _kept_gateway(item, broker, spec, config, endpoint, base_dir)
            if endpoint != broker.endpoint:  # through a proxy of its own: not from the pool
                return _launch_gateway(item, spec, config, endpoint, [], base_dir)
            return _pooled_gateway(item, broker, spec, config, endpoint, base_dir)

        def link_proxy(endpoint: BrokerEndpoint) -> tuple[BrokerEndpoint, Any]:
            from pytest_edgesim.docker.session import proxied_endpoint

            return proxied_endpoint(_docker_client(item.config), endpoint, seed)

        # a gateway isolated by restart keeps its own topics: the run has no prefix
        if _restart_isolated(scenario):
            broker.gateway_pool.note_activity()
            prefix = ""
        else:
            prefix = broker.new_prefix(item.nodeid)
        return LiveRun(
            scenario,
            seed,
            broker=broker.endpoint,
            time_scale=time_scale,
            topic_prefix=prefix,
            launcher=launch,
            keep_containers=keep,
            broker_control=broker.container,
            link_proxy=link_proxy,
        )

    return build
