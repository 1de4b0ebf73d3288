"""A scenario run on a real MQTT broker, paced against the wall clock.

The sensors are the Python models, in a wall-clock coordinator (virtual time runs
``time_scale`` times faster than the wall clock). Their messages cross the scenario's
modelled uplinks (latency, jitter, loss, partitions: the coordinator holds, delays or drops
each one) and are then published for real on the broker. The gateways are real MQTT
clients: the gateway logic in this process (``python_model``) or the gateway container
(``docker``). What they forward is taken off the broker by a cloud subscriber and sent over
the modelled gateway-to-cloud link to the cloud sink. A tap subscribed with each gateway's
filters times what the broker delivers to it.

Metrics come from real timestamps (wall-clock time converted to scenario time: at
``time_scale`` 3 a real millisecond counts three) and have the shape of the deterministic
tier's. There is no trace digest: a wall-clock run does not repeat to the bit.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import EdgesimError, SimulationError
from ..gateway_service import GatewayService, config_from_spec
from ..injection import Injections
from ..metrics import MetricsRecorder
from ..models.cloud import CloudSink
from ..models.sensor import SensorModel
from ..network import DirectNetworkModel, LatencyNetworkModel, NetworkModel, resolve_nodes
from ..node import Node, NodeContext
from ..packet import Message
from ..realtime import RealtimeCoordinator
from ..result import RunResult
from ..rng import StreamFactory
from ..scenario import Scenario
from ..scenario.schema import GatewaySpec
from ..trace import TraceRecorder
from ..units import TICKS_PER_SECOND, parse_until
from . import mqtt
from .mqtt import BrokerEndpoint
from .nodes import BrokerPort, GatewayUplink

#: starts a gateway container: ``(spec, config, endpoint) -> handle`` with ``stop()``
#: (returning its counters), ``logs()`` and ``remove()``; see :mod:`pytest_edgesim.docker.gateway`
GatewayLauncher = Callable[[GatewaySpec, Mapping[str, Any], BrokerEndpoint], Any]


def scale_config(config: Mapping[str, Any], time_scale: float) -> dict[str, Any]:
    """A gateway configuration whose durations (windows, processing delays) are wall-clock
    microseconds at ``time_scale``."""
    scaled = dict(config)
    if scaled.get("aggregate") and scaled["aggregate"].get("window_us"):
        window = scaled["aggregate"]["window_us"] / time_scale
        scaled["aggregate"] = {**scaled["aggregate"], "window_us": max(1, round(window))}
    delay = dict(scaled.get("processing_delay_us") or {})
    for key, value in delay.items():
        if key != "distribution" and isinstance(value, (int, float)):
            delay[key] = value / time_scale
    scaled["processing_delay_us"] = delay
    return scaled


def default_launcher(
    spec: GatewaySpec,
    config: Mapping[str, Any],
    endpoint: BrokerEndpoint,
    client: Any = None,
) -> Any:
    """Start the ``edgesim/gateway`` image (or the spec's ``docker.image``) for ``config``."""
    from ..docker.engine import connect
    from ..docker.gateway import GatewayContainer
    from ..docker.images import ensure_image

    client = client or connect()
    image = spec.docker.image if spec.docker is not None and spec.docker.image else None
    network, host, port = endpoint.for_container()
    return GatewayContainer.start(
        image or ensure_image("gateway", client),
        config,
        host,
        port,
        client,
        network=network,
        environment=spec.docker.environment if spec.docker is not None else None,
    )


class LiveCoordinator(RealtimeCoordinator):
    """The wall-clock coordinator, plus a thread-safe inbox for what real clients report."""

    def __init__(self, time_scale: float = 1.0):
        super().__init__(time_scale, clock=time.time)
        self._inbox: queue.SimpleQueue[tuple[float, Callable[[Any], None], Any]] = (
            queue.SimpleQueue()
        )
        self._wake = threading.Event()

    def post(self, callback: Callable[[Any], None], arg: Any = None) -> None:
        """From any thread: run ``callback(arg)`` on the run's thread, at the virtual time
        corresponding to now."""
        self._inbox.put((time.time(), callback, arg))
        self._wake.set()

    def run_live(self, until: int) -> None:
        """Run events and posted callbacks in wall-clock order until virtual time ``until``
        (exclusive, as in :meth:`~pytest_edgesim.engine.Coordinator.run`)."""
        self.start()  # re-anchored on every call: a pause between runs takes no virtual time
        while True:
            self._drain(until)
            head = self.peek()
            stop_at = until if head is None or head >= until else head
            remaining = self.wall_time_of(stop_at) - time.time()
            if remaining > 0:
                if self._wake.wait(remaining):
                    self._wake.clear()
                continue
            if stop_at == until:
                break
            self.step()
        self.now = until
        self._drain(until)

    def _drain(self, until: int) -> None:
        while True:
            try:
                wall, callback, arg = self._inbox.get_nowait()
            except queue.Empty:
                return
            head = self.peek()
            limit = until if head is None else min(head, until)
            self.now = max(self.now, min(self.ticks_at(wall), limit))
            callback(arg)


class LiveRun:
    """A scenario on a real broker, on the wall clock; the live counterpart of
    :class:`~pytest_edgesim.simulation.Simulation` (same ``run``, ``result``, ``network``,
    ``node``, ``inject``, ``close``), usable without pytest.

    ``topic_prefix`` isolates this run's topics on a broker shared with other runs;
    ``launcher`` starts gateway containers (default: :func:`default_launcher`);
    ``keep_containers`` leaves them running when the run closes.
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int | None = None,
        *,
        broker: BrokerEndpoint,
        time_scale: float = 1.0,
        topic_prefix: str = "",
        launcher: GatewayLauncher | None = None,
        record_limit: int = 100_000,
        connect_timeout_s: float = 30.0,
        keep_containers: bool = False,
    ):
        self.scenario = scenario
        self.seed = int(scenario.seed if seed is None else seed)
        self.broker_endpoint = broker
        self.time_scale = time_scale
        self.topic_prefix = topic_prefix
        self.coordinator = LiveCoordinator(time_scale)
        self.streams = StreamFactory(self.seed)
        self.metrics = MetricsRecorder()
        self.tracer = TraceRecorder(enabled=False)
        self._launcher = launcher or default_launcher
        self._connect_timeout_s = connect_timeout_s
        self._keep_containers = keep_containers
        self._clients: list[Any] = []
        self._gateways: dict[str, Any] = {}
        self._closed = False
        self._injections = Injections()
        self._wall_time = 0.0
        spec = scenario.spec
        retry = spec.broker.retry_interval
        try:
            publisher = self._client("publisher")
            self.broker = BrokerPort(spec.broker.name, publisher, topic_prefix, retry)
            self.cloud = CloudSink(spec.cloud.name, record_limit=record_limit)
            nodes: dict[str, Node] = {self.broker.name: self.broker, self.cloud.name: self.cloud}
            for device in scenario.devices:
                nodes[device.name] = SensorModel(
                    device.name,
                    device.topic,
                    device.spec,
                    broker=self.broker.name,
                    retry_interval=retry,
                    base_dir=scenario.base_dir,
                )
            for gateway in spec.gateways:
                forward = gateway.forward
                nodes[gateway.name] = GatewayUplink(
                    gateway.name,
                    gateway.implementation,
                    to=forward.to,
                    qos=forward.qos,
                    payload_bytes=forward.payload_bytes,
                    retry=retry,
                )
            self.nodes: Mapping[str, Node] = nodes
            self.network = self._build_network(nodes)
            for node in nodes.values():
                node.bind(
                    NodeContext(
                        node.name,
                        self.coordinator,
                        self.network.transmit,
                        self.streams,
                        self.metrics,
                        self.tracer,
                    )
                )
            for gateway in spec.gateways:
                self._start_gateway(gateway)
        except BaseException:
            self.close()
            raise

    # --- building -------------------------------------------------------------------------
    def _client(self, role: str, **options: Any) -> Any:
        client = mqtt.connect(
            self.broker_endpoint, role, timeout_s=self._connect_timeout_s, **options
        )
        self._clients.append(client)
        return client

    def _build_network(self, nodes: Mapping[str, Node]) -> NetworkModel:
        network_spec = self.scenario.spec.network
        relays = [self.broker.name]  # the broker's hop is counted where the gateways receive
        parts = (self.coordinator, self.streams, self.metrics, self.tracer, nodes, relays)
        network: NetworkModel
        if network_spec.model == "direct":
            network = DirectNetworkModel(*parts)
        else:
            network = LatencyNetworkModel(
                *parts, default=network_spec.default, rules=network_spec.links
            )
        for partition in network_spec.partitions:
            cut = network.add_cut(
                resolve_nodes(partition.between[0], nodes),
                resolve_nodes(partition.between[1], nodes),
            )
            self.coordinator.schedule_at(partition.start, network.cut_down, cut)
            if partition.end is not None:
                self.coordinator.schedule_at(partition.end, network.cut_up, cut)
        return network

    def _start_gateway(self, spec: GatewaySpec) -> None:
        prefix = self.topic_prefix
        config = scale_config(config_from_spec(spec, prefix), self.time_scale)
        forward_topic = config["forward"]["topic"]
        self._client(
            f"cloud-{spec.name}",
            subscriptions=[(prefix + forward_topic, spec.forward.qos)],
            on_message=lambda topic, payload: self.coordinator.post(
                self._forwarded, (spec.name, topic, payload)
            ),
        )
        self._client(
            f"tap-{spec.name}",
            subscriptions=[(prefix + s.filter, s.qos) for s in spec.subscribe],
            on_message=lambda topic, payload: self.coordinator.post(
                self._tapped, (spec.name, topic, payload)
            ),
        )
        if spec.implementation == "docker":
            self._gateways[spec.name] = self._launcher(spec, config, self.broker_endpoint)
        else:
            service = GatewayService(
                config,
                self.broker_endpoint.host,
                self.broker_endpoint.port,
                client_id=mqtt.client_id(f"gateway-{spec.name}"),
            )
            self._gateways[spec.name] = service
            service.start(connect_timeout_s=self._connect_timeout_s)

    # --- what the real side reports (on the run's thread, via LiveCoordinator.post) ----------
    def _ticks_of(self, created_at_us: Any) -> int:
        if not isinstance(created_at_us, (int, float)):
            return self.coordinator.now
        return self.coordinator.ticks_at(created_at_us / 1e6)

    def _tapped(self, item: tuple[str, str, bytes]) -> None:
        gateway, topic, payload = item
        reading = _json(payload)
        latency = max(0, self.coordinator.now - self._ticks_of(reading.get("created_at_us")))
        for counter in (
            self.metrics.topic(topic.removeprefix(self.topic_prefix)),
            self.metrics.node(gateway),
        ):
            counter.delivered += 1
            counter.latency.add(latency)

    def _forwarded(self, item: tuple[str, str, bytes]) -> None:
        gateway, topic, payload = item
        body = _json(payload)
        uplink = self.nodes[gateway]
        assert isinstance(uplink, GatewayUplink)
        created_at = min(self.coordinator.now, self._ticks_of(body.get("created_at_us")))
        uplink.forward(topic.removeprefix(self.topic_prefix), body, created_at)

    # --- running ----------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.coordinator.now

    def run(self, until: int | float | str | None = None) -> RunResult:
        """Run to virtual time ``until`` (seconds or ``"500ms"``; None: the scenario's
        duration), taking ``until / time_scale`` seconds of wall time, and pause there."""
        if self._closed:
            raise SimulationError("this live run is closed")
        target = self.scenario.duration_ticks if until is None else parse_until(until)
        if target < self.now:
            raise SimulationError(
                f"cannot run until {until!r}: virtual time is already "
                f"{self.now / TICKS_PER_SECOND:g}s"
            )
        started = time.perf_counter()
        try:
            self.coordinator.run_live(target)
        finally:
            self._wall_time += time.perf_counter() - started
        return self.result()

    def result(self) -> RunResult:
        """The result so far; ``trace_digest`` is None (a wall-clock run is not bit-exact)."""
        for name, runner in self._gateways.items():
            uplink = self.nodes[name]
            assert isinstance(uplink, GatewayUplink)
            uplink.runner_state = _runner_state(runner)
        now = self.coordinator.now
        return RunResult(
            scenario=self.scenario.name,
            seed=self.seed,
            virtual_time_ticks=now,
            metrics=self.metrics.snapshot(now),
            trace_digest=None,
            events=self.coordinator.events_processed,
            nodes={name: node.describe() for name, node in self.nodes.items()},
            arrivals=tuple(self.cloud.arrivals),
            wall_time_s=self._wall_time,
        )

    # --- acting on a paused run ---------------------------------------------------------------
    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise SimulationError(f"no node {name!r} (nodes: {', '.join(self.nodes)})") from None

    def gateway(self, name: str) -> Any:
        """The real gateway ``name``: a GatewayService or a GatewayContainer."""
        return self._gateways[name]

    def inject(
        self,
        topic: str,
        payload: Any,
        *,
        source: str | None = None,
        qos: int = 0,
        retain: bool = False,
        size_bytes: int = 64,
    ) -> Message:
        """Publish a message now: from node ``source`` over its modelled link, or straight
        on the real broker."""
        node = self.node(source) if source is not None else None
        message = self._injections.message(
            self.metrics,
            topic,
            payload,
            source=node,
            now=self.now,
            qos=qos,
            retain=retain,
            size_bytes=size_bytes,
        )
        if node is None:
            self.broker.publish(message)
        else:
            Injections.send_from(node, self.broker.name, message)
        return message

    def close(self) -> None:
        """Stop and remove the gateways (their counters stay in the nodes' descriptions) and
        disconnect the clients."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        try:
            for name, runner in self._gateways.items():
                container = hasattr(runner, "remove")
                if container and self._keep_containers:
                    continue  # left running for debugging
                try:  # one gateway failing to stop must not leave the others running
                    runner.stop()
                    if container:
                        runner.remove()  # a container keeps its last logs (``final_logs``)
                except Exception as error:
                    errors.append(error)
                uplink = self.nodes.get(name) if hasattr(self, "nodes") else None
                if isinstance(uplink, GatewayUplink):
                    uplink.runner_state = _runner_state(runner)
        finally:
            for client in self._clients:
                mqtt.disconnect(client)
        if errors:
            raise errors[0]

    def __enter__(self) -> LiveRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _runner_state(runner: Any) -> dict[str, Any]:
    counters = getattr(runner, "counters", None)
    report = getattr(runner, "report", None)
    if counters is None and report is not None:  # a reused container, still running: ask it
        with contextlib.suppress(EdgesimError):
            counters = report()
    state: dict[str, Any] = {"gateway_counters": dict(counters) if counters else None}
    container = getattr(runner, "name", None)
    if isinstance(runner, GatewayService):
        state["runs_in"] = "this process"
    elif container:
        state["runs_in"] = f"container {container}"
    return state


def _json(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"value": body}
