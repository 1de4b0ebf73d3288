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
import dataclasses
import json
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pytest_edgesim.core.faults import AppliedFault
from pytest_edgesim.core.gateway_kinds import WallClockStart, gateway_kind
from pytest_edgesim.core.realtime import RealtimeCoordinator
from pytest_edgesim.core.result import RunResult
from pytest_edgesim.core.run import TopologyRun
from pytest_edgesim.core.scenario import Scenario
from pytest_edgesim.core.scenario.schema import GatewaySpec
from pytest_edgesim.core.topology import GatewaySite, Topology
from pytest_edgesim.core.trace import TraceRecorder
from pytest_edgesim.errors import EdgesimError, SimulationError
from pytest_edgesim.gateway.config import config_from_spec
from pytest_edgesim.gateway.service import GatewayService
from pytest_edgesim.live import mqtt
from pytest_edgesim.live.mqtt import BrokerEndpoint
from pytest_edgesim.live.nodes import BrokerPort, GatewayUplink

#: starts a gateway container: ``(spec, config, endpoint) -> handle`` with ``stop()``
#: (returning its counters), ``logs()`` and ``remove()``; see :mod:`pytest_edgesim.docker.kinds`
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
    if scaled.get("session"):
        keepalive_s = max(1, math.ceil(scaled["session"]["keepalive_s"] / time_scale))
        scaled["session"] = {**scaled["session"], "keepalive_s": keepalive_s}
        if scaled["session"].get("expiry_s") is not None:
            expiry_s = math.ceil(scaled["session"]["expiry_s"] / time_scale)
            scaled["session"] = {**scaled["session"], "expiry_s": expiry_s}
    return scaled


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
        (exclusive, as in :meth:`~pytest_edgesim.core.engine.Coordinator.run`)."""
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


class LiveRun(TopologyRun):
    """A scenario on a real broker, on the wall clock; the live counterpart of
    :class:`~pytest_edgesim.core.simulation.Simulation` (the same
    :class:`~pytest_edgesim.core.run.ScenarioRun` interface), usable without pytest.

    ``topic_prefix`` isolates this run's topics on a broker shared with other runs;
    ``launcher(spec, config, endpoint)`` starts the gateways whose kind needs Docker (default:
    the kind's own launcher); ``keep_containers`` leaves them running when the run closes.
    ``broker_control`` is the broker's container (anything with ``supported_faults`` and
    ``apply_fault(action)``), for ``stop("broker")`` and the like; without it the broker
    cannot be faulted. A gateway's faults go to its runner (a container: its own
    ``apply_fault``); a broker left stopped or paused is brought back when the run closes.
    """

    bit_exact = False
    noun = "live run"
    tier = "live"

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
        broker_control: Any = None,
        link_proxy: Callable[[BrokerEndpoint], tuple[BrokerEndpoint, Any]] | None = None,
    ):
        self.broker_endpoint = broker
        self._link_proxy = link_proxy
        #: gateway -> the impairing proxy its container reaches the broker through (when the
        #: scenario's schedule changes or cuts that link)
        self._real_links: dict[str, Any] = {}
        self._saved_links: dict[tuple[int, str], Any] = {}
        self._broker_control = broker_control
        self.time_scale = time_scale
        self.topic_prefix = topic_prefix
        self._launcher = launcher
        self._base_dir = scenario.base_dir
        self._connect_timeout_s = connect_timeout_s
        self._keep_containers = keep_containers
        self._clients: list[Any] = []
        #: ``(wall time, role)`` of each connection of the run's clients that the broker
        #: closed or that broke (appended from paho's threads)
        self._connections_lost: list[tuple[float, str]] = []
        self._gateways: dict[str, Any] = {}
        self._restartable: dict[str, WallClockStart] = {}  # in-process gateways: how to start
        self._closed = False
        spec = scenario.spec
        try:
            publisher = self._client("publisher")
            topology = Topology(
                scenario,
                int(scenario.seed if seed is None else seed),
                LiveCoordinator(time_scale),
                tracer=TraceRecorder(enabled=False),
                broker=BrokerPort(
                    spec.broker.name,
                    publisher,
                    topic_prefix,
                    spec.broker.retry_interval,
                    version=broker.version,
                    configuration=broker.configuration,
                ),
                gateway=_uplink,
                record_limit=record_limit,
            )
            super().__init__(topology)
            for gateway in spec.gateways:
                self._start_gateway(gateway)
        except BaseException:
            self.close()
            raise

    # --- building -------------------------------------------------------------------------
    def _client(self, role: str, **options: Any) -> Any:
        client = mqtt.connect(
            self.broker_endpoint,
            role,
            timeout_s=self._connect_timeout_s,
            on_connection_lost=lambda: self._connections_lost.append((time.time(), role)),
            **options,
        )
        self._clients.append(client)
        return client

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
        kind = gateway_kind(spec.kind)
        if self._launcher is not None and kind.needs_docker:
            endpoint = self.broker_endpoint
            if self._link_proxy is not None and _faults_its_broker_link(self.scenario, spec):
                endpoint, self._real_links[spec.name] = self._link_proxy(endpoint)
            self._gateways[spec.name] = self._launcher(spec, config, endpoint)
            return
        if kind.wall_clock is None:
            raise SimulationError(
                f"gateway {spec.name!r}: a {kind.name} gateway cannot run in a live run"
            )
        start = WallClockStart(
            spec,
            config,
            self.broker_endpoint,
            mqtt.client_id(f"gateway-{spec.name}"),
            self._connect_timeout_s,
            self._base_dir,
        )
        self._gateways[spec.name] = kind.wall_clock(start)
        self._restartable[spec.name] = start

    # --- what the real side reports (on the run's thread, via LiveCoordinator.post) ----------
    @property
    def coordinator(self) -> LiveCoordinator:
        coordinator = self.topology.coordinator
        assert isinstance(coordinator, LiveCoordinator)
        return coordinator

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
        uplink = self.nodes[gateway]
        assert isinstance(uplink, GatewayUplink)
        uplink.tapped(reading)

    def _forwarded(self, item: tuple[str, str, bytes]) -> None:
        gateway, topic, payload = item
        body = _json(payload)
        uplink = self.nodes[gateway]
        assert isinstance(uplink, GatewayUplink)
        created_at = min(self.coordinator.now, self._ticks_of(body.get("created_at_us")))
        uplink.forward(topic.removeprefix(self.topic_prefix), body, created_at)

    # --- running ----------------------------------------------------------------------------
    def _advance(self, target: int) -> None:
        """Take ``(target - now) / time_scale`` seconds of wall time to get there."""
        self.coordinator.run_live(target)

    def result(self) -> RunResult:
        """The result so far; ``trace_digest`` is None (a wall-clock run is not bit-exact).
        Its ``faults`` include the broker lost from outside (see :attr:`faults`)."""
        for name, runner in self._gateways.items():
            if self._life.state(name) != "running" or self._life.disconnected(name):
                continue  # it cannot answer: its last known state stands
            uplink = self.nodes[name]
            assert isinstance(uplink, GatewayUplink)
            uplink.runner_state = _runner_state(runner)
        result = super().result()
        lost = self._broker_lost_from_outside()
        return dataclasses.replace(result, faults=result.faults + lost) if lost else result

    @property
    def faults(self) -> tuple[AppliedFault, ...]:
        """The faults the run did, and, when no fault of the run's explains it, the broker
        lost from outside: the run's own MQTT clients lost their connection (the broker
        restarted, killed or paused by someone else, or the network broke), one entry with
        the count. A run during which that happened never reads as a clean one."""
        return super().faults + self._broker_lost_from_outside()

    def _broker_lost_from_outside(self) -> tuple[AppliedFault, ...]:
        lost = list(self._connections_lost)
        if not lost:
            return ()
        broker = self.broker.name
        if any(f.target == broker and f.action in _BROKER_OUTAGES for f in self._faults):
            return ()  # the run's own broker fault: its clients were bound to lose it
        first = min(self.coordinator.ticks_at(wall) for wall, _role in lost)
        roles = sorted({role for _wall, role in lost})
        detail = (
            f"{len(lost)} connection(s) of the run's clients ({', '.join(roles)}) lost, by no "
            "fault of the run's: restarted, killed or paused from outside, or the network"
        )
        return (AppliedFault(max(0, min(first, self.now)), "lost", broker, detail),)

    def gateway(self, name: str) -> Any:
        """The real gateway ``name``: a GatewayService or a GatewayContainer."""
        return self._gateways[name]

    # --- faults: on the real components --------------------------------------------------------
    def live_link_problem(self, fault: Any) -> str | None:
        """The links a live run models (a sensor's to the broker, a gateway's to the cloud)
        can be cut and changed, and so can a gateway container's connection to the broker
        when the scenario's schedule named it (it then runs through an impairing proxy)."""
        for gateway in self._real_gateways(fault):
            if gateway not in self._real_links:
                return (
                    f"it would change {gateway!r}'s real connection to the broker, which this "
                    "live run does not route through the impairing proxy (only a gateway "
                    "container whose link the scenario file's faults: name does; or use kind: "
                    "disconnect)"
                )
            if fault.one_way:
                return (
                    f"the proxy on {gateway!r}'s connection to the broker acts on both "
                    "directions: a one-way change of a real link is not supported"
                )
            if fault.fault_kind == "link_change" and fault.loss is not None and fault.loss >= 1:
                return "a TCP proxy delays what it 'loses' (retransmission): loss must be below 1"
        return None

    def _real_gateways(self, fault: Any) -> list[str]:
        """The gateways whose real connection to the broker ``fault``'s sides separate."""
        from pytest_edgesim.core.network import resolve_nodes

        assert fault.between is not None
        names = list(self.nodes)
        side_a = resolve_nodes(fault.between[0], names) - {fault.bridge}
        side_b = resolve_nodes(fault.between[1], names) - {fault.bridge}
        broker = self.broker.name
        return [
            name
            for name in self._gateways
            if (name in side_a and broker in side_b) or (name in side_b and broker in side_a)
        ]

    def change_real_links(self, fault: Any, action: str) -> str:
        """Apply ``action`` (``cut``, ``heal``, ``change``, ``restore``) of ``fault`` to the
        proxies on the gateways' connections to the broker that it names."""
        done = []
        for gateway in self._real_gateways(fault):
            proxy = self._real_links[gateway]
            key = (id(fault), gateway)
            if action == "cut":
                proxy.cut()
            elif action == "heal":
                proxy.heal()
            elif action == "change":
                self._saved_links[key] = proxy.spec
                scale = self.time_scale  # (the proxy keeps the wall clock)
                changes = (
                    {} if fault.bandwidth is None else {"rate": round(fault.bandwidth * scale)}
                )
                proxy.update(
                    latency=None if fault.latency is None else f"{fault.latency / scale}us",
                    jitter=None if fault.jitter is None else f"{fault.jitter / scale}us",
                    loss=fault.loss,
                    **changes,
                )
            else:
                saved = self._saved_links.pop(key)
                bits = None if saved.rate_kbit_s is None else round(saved.rate_kbit_s * 1000)
                proxy.update(
                    latency=f"{saved.latency_ms}ms",
                    jitter=f"{saved.jitter_ms}ms",
                    loss=saved.loss_rate,
                    rate=bits,
                )
            done.append(gateway)
        return f"proxy of {', '.join(done)}" if done else ""

    def _runner_of(self, node: str) -> Any:
        if node in self._gateways:
            return self._gateways[node]
        if node == self.broker.name:
            return self._broker_control
        return None

    def _supported_faults(self, node: str) -> tuple[str, ...]:
        runner = self._runner_of(node)
        if runner is None:
            return ()
        if not hasattr(runner, "apply_fault") and node in self._restartable:
            return ("stop", "start")  # a gateway in this process: stopped, or a new one
        return tuple(getattr(runner, "supported_faults", ()))

    def _fault_hint(self, node: str) -> str:
        if node == self.broker.name and self._broker_control is None:
            return " (only a broker container the session started can be faulted)"
        if node in self._restartable:
            return " (a gateway in this process stops and starts; a container can do more)"
        return ""

    def _apply_fault(self, node: str, action: str) -> str:
        runner = self._runner_of(node)
        if hasattr(runner, "apply_fault"):
            detail: str = runner.apply_fault(action)
            return detail
        start = self._restartable[node]  # an in-process gateway (see _supported_faults)
        if action == "stop":
            runner.stop()
        else:  # a new gateway, connected and subscribed (its counters start from zero)
            factory = gateway_kind(start.spec.kind).wall_clock
            assert factory is not None  # (it started the first one)
            self._gateways[node] = factory(start)
        return ""

    def close(self) -> None:
        """Stop and remove the gateways (their counters stay in the nodes' descriptions) and
        disconnect the clients."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        try:
            self._bring_back_the_broker()
        except Exception as error:  # the gateways still get stopped
            errors.append(error)
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
                topology = getattr(self, "topology", None)
                uplink = topology.nodes.get(name) if topology is not None else None
                if isinstance(uplink, GatewayUplink):
                    uplink.runner_state = _runner_state(runner)
        finally:
            for client in self._clients:
                mqtt.disconnect(client)
            for proxy in self._real_links.values():
                proxy.remove()
        if errors:
            raise errors[0]

    def _bring_back_the_broker(self) -> None:
        """The broker serves other runs: one a test left stopped or paused runs again."""
        topology = getattr(self, "topology", None)
        if topology is None or self._broker_control is None:
            return
        state = self._life.state(self.broker.name)
        if state == "stopped":
            self._broker_control.apply_fault("start")
        elif state == "paused":
            self._broker_control.apply_fault("resume")


#: what the run does to the broker that makes its clients lose their connections
_BROKER_OUTAGES = ("stop", "kill", "restart", "pause")


def _uplink(spec: GatewaySpec, site: GatewaySite) -> GatewayUplink:
    """A gateway's node in a live run: its end of the modelled link to the cloud."""
    forward = spec.forward
    return GatewayUplink(
        spec.name,
        spec.implementation,
        to=forward.to,
        qos=forward.qos,
        payload_bytes=forward.payload_bytes,
        retry=site.retry_interval,
        filters=tuple(s.filter for s in spec.subscribe),
        buffer=forward.buffer,
    )


def _faults_its_broker_link(scenario: Scenario, spec: GatewaySpec) -> bool:
    """Whether the scenario's fault schedule cuts or changes ``spec``'s link to the broker."""
    import fnmatch

    broker = scenario.spec.broker.name

    def names(side: list[str], node: str) -> bool:
        return any(fnmatch.fnmatchcase(node, pattern) for pattern in side)

    for fault in scenario.spec.faults:
        if fault.between is None:
            continue
        first, second = fault.between
        if (names(first, spec.name) and names(second, broker)) or (
            names(second, spec.name) and names(first, broker)
        ):
            return True
    return False


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
