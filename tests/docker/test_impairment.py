"""Impairment on the real broker: netem where the kernel has it, else the TCP proxy.

The link model (:class:`LinkSchedule`) is checked on its own first, without sockets; then
the proxy is put in front of the real broker and measured with real MQTT round trips.
Latency bounds are lower bounds the proxy guarantees per message, plus bounds on the median
derived from the jitter distribution (stated where they are used).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import warnings
from collections.abc import Callable

import docker
import pytest
from mqtt_probe import Probe, delay_s, reading, stamped, start_passthrough_gateway

from pytest_edgesim.core.rng import RandomStream
from pytest_edgesim.docker import netem
from pytest_edgesim.docker.broker import BrokerContainer
from pytest_edgesim.docker.images import ensure_image
from pytest_edgesim.docker.impairment import ImpairmentError, impair, mechanisms_used
from pytest_edgesim.docker.netem import (
    NetemError,
    NetemSettings,
    NetemUnavailableWarning,
    apply_netem,
    netem_support,
)
from pytest_edgesim.docker.proxy import RTO_MIN_S, LinkProfile, LinkSchedule, TcpProxy
from pytest_edgesim.errors import EdgesimError

# -- the link model, without sockets ---------------------------------------------------------


def _schedule(seed: int = 7, **profile: float) -> LinkSchedule:
    return LinkSchedule(LinkProfile(**profile), RandomStream(seed, "test/link"))


def test_jitter_delays_chunks_but_never_reorders_them() -> None:
    schedule = _schedule(latency_ms=50, jitter_ms=40)
    deliveries = [schedule.deliver_at(i * 0.001, 100) for i in range(500)]
    assert all(d is not None for d in deliveries)
    assert deliveries == sorted(deliveries)  # type: ignore[type-var]
    delays = [d - i * 0.001 for i, d in enumerate(deliveries)]  # type: ignore[operator]
    assert min(delays) >= 0.010 - 1e-9
    assert max(delays) > 0.080  # some chunk drew close to +40 ms (P(miss) = 0.75^500)


def test_the_same_seed_gives_the_same_schedule_and_another_seed_does_not() -> None:
    def run(seed: int) -> list[float | None]:
        schedule = _schedule(seed, latency_ms=20, jitter_ms=10, loss_rate=0.2)
        return [schedule.deliver_at(i * 0.01, 1000) for i in range(200)]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_the_rate_serialises_chunks_back_to_back() -> None:
    schedule = _schedule(rate_kbit_s=80)  # 10,000 bytes/s
    deliveries = [schedule.deliver_at(0.0, 1000) for _ in range(10)]
    assert deliveries == pytest.approx([0.1 * (i + 1) for i in range(10)])


def test_a_lost_chunk_waits_a_retransmission_timeout_and_holds_up_the_next() -> None:
    schedule = _schedule(latency_ms=10, loss_rate=0.5)
    deliveries = [schedule.deliver_at(i * 0.001, 10) for i in range(400)]
    delays = [d - i * 0.001 for i, d in enumerate(deliveries)]  # type: ignore[operator]
    assert min(delays) >= 0.010 - 1e-9
    late = sum(delay >= 0.010 + RTO_MIN_S - 1e-9 for delay in delays)
    # Each chunk is lost at least once with p = 0.5; head-of-line blocking only adds to that.
    # Binomial(400, 0.5) falls below 150 with probability < 1e-6.
    assert late >= 150


def test_reset_rate_resets_some_connections() -> None:
    schedule = _schedule(reset_rate=0.1)
    outcomes = [schedule.deliver_at(0.0, 10) for _ in range(200)]
    assert None in outcomes  # P(no reset in 200 draws) = 0.9^200 < 1e-9


@pytest.mark.parametrize(
    ("field", "value"),
    [("latency_ms", -1.0), ("loss_rate", 1.0), ("reset_rate", -0.1), ("rate_kbit_s", 0.0)],
)
def test_a_bad_profile_is_an_error_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(EdgesimError, match=field):
        LinkProfile(**{field: value})


def test_netem_arguments_follow_tc_syntax() -> None:
    settings = NetemSettings(latency_ms=50, jitter_ms=10, loss_rate=0.015, rate_kbit_s=1000)
    assert " ".join(settings.tc_arguments("eth0")) == (
        "qdisc replace dev eth0 root netem delay 50ms 10ms loss 1.5% rate 1000kbit"
    )
    no_options = "qdisc replace dev lo root netem delay 0ms"
    assert " ".join(NetemSettings().tc_arguments("lo")) == no_options


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"latency": "fast"}, "latency"),
        ({"jitter": -1}, "jitter"),
        ({"loss": 1.5}, "loss"),
        ({"rate": "lots"}, "rate"),
        ({"mechanism": "ebpf"}, "mechanism"),
    ],
)
def test_impair_rejects_bad_settings_by_name(options: dict[str, object], named: str) -> None:
    with pytest.raises(ImpairmentError, match=named):
        impair(("127.0.0.1", 1), **options)  # type: ignore[arg-type]


def test_an_address_cannot_be_impaired_with_netem() -> None:
    with pytest.raises(ImpairmentError, match="netem needs a container"):
        impair(("127.0.0.1", 1), latency="10ms", mechanism="netem")


# -- on the real engine and broker -----------------------------------------------------------


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    return f"edgesim-test/{os.getpid()}/{request.node.name}"


def test_netem_support_is_probed_for_real(
    broker: BrokerContainer, docker_client: docker.DockerClient
) -> None:
    support = netem_support(docker_client, refresh=True)
    settings = NetemSettings(latency_ms=5)
    if support.available:
        apply_netem(docker_client, broker.container_id, settings)
        netem.clear_netem(docker_client, broker.container_id)
    else:
        assert "netem" in support.reason
        with pytest.raises(NetemError, match="qdisc"):
            apply_netem(docker_client, broker.container_id, settings)
    # The helper really is inside the broker's network namespace: it sees the broker's address.
    networks = docker_client.api.inspect_container(broker.container_id)["NetworkSettings"]
    address = next(iter(networks["Networks"].values()))["IPAddress"]
    output = netem._run_helper(
        docker_client,
        netem.default_helper_image(docker_client),
        ["ip", "-o", "-4", "addr", "show", "dev", "eth0"],
        f"container:{broker.container_id}",
    )
    assert f"inet {address}/" in output


def test_auto_picks_the_mechanism_the_kernel_allows_and_says_so_once(
    broker: BrokerContainer,
    docker_client: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> None:
    available = netem_support(docker_client).available
    monkeypatch.setattr(netem, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = impair(broker, latency="5ms")
        second = impair(broker, latency="5ms")
    record_property("edgesim_impairment", first.report_line)  # travels on the test report
    try:
        expected = "netem" if available else "proxy"
        assert first.mechanism == second.mechanism == expected
        assert first.report_line.startswith(f"impairment: {expected} (")
        assert expected in mechanisms_used()
        fallbacks = [w for w in caught if issubclass(w.category, NetemUnavailableWarning)]
        assert len(fallbacks) == (0 if available else 1)
        if not available:
            assert "tc netem unavailable" in first.reason
            assert (first.host, first.port) != (broker.host, broker.port)
    finally:
        first.remove()
        second.remove()


def test_the_proxy_adds_its_latency_to_mqtt_round_trips(
    broker: BrokerContainer, topic: str
) -> None:
    latency_s, jitter_s, samples = 0.040, 0.010, 21
    direct = Probe(broker.host, broker.port, subscribe=((topic, 0),))
    try:
        direct_delays = _one_way_delays(direct, direct, topic, samples)
    finally:
        direct.close()
    with impair(
        broker, latency=latency_s, jitter=jitter_s, mechanism="proxy", seed=11
    ) as impairment:
        assert impairment.mechanism == "proxy"
        subscriber = Probe(impairment.host, impairment.port, subscribe=((topic, 0),))
        publisher = Probe(impairment.host, impairment.port)
        try:
            impaired = _one_way_delays(publisher, subscriber, topic, samples)
        finally:
            publisher.close()
            subscriber.close()
    # Publisher -> proxy -> broker -> proxy -> subscriber: two proxy traversals, each at
    # least latency - jitter, whatever the machine's load.
    assert min(impaired) >= 2 * (latency_s - jitter_s) - 0.001
    # The added jitter is U1 + U2 with U ~ uniform(-10 ms, +10 ms): P(U1 + U2 < -10 ms) = 1/8,
    # so the median of 21 falls below 2 * latency - jitter only if 11 of 21 do:
    # P(Binomial(21, 1/8) >= 11) < 1e-5.
    assert statistics.median(impaired) >= 2 * latency_s - jitter_s
    # Above: symmetric, plus what the broker and the loopback cost (the direct median) and a
    # wide allowance for a loaded CI machine. Only a gross fault (delay applied per byte or
    # twice per traversal) goes past it.
    assert statistics.median(impaired) <= (
        2 * latency_s + jitter_s + 2 * statistics.median(direct_delays) + 0.05
    )
    # The jitter shows: all 21 within a 10 ms window has probability < 1e-6.
    assert max(impaired) - min(impaired) >= jitter_s


def test_the_proxy_rate_limits_a_large_publish(broker: BrokerContainer, topic: str) -> None:
    payload_bytes = 50_000
    subscriber = Probe(broker.host, broker.port, subscribe=((topic, 0),))
    try:
        with impair(broker, rate="1Mbps", mechanism="proxy") as impairment:
            publisher = Probe(impairment.host, impairment.port)
            try:
                payload = stamped(0) + b":" + b"x" * payload_bytes
                publisher.publish(topic, payload, qos=0)
                received = subscriber.receive(10)
            finally:
                publisher.close()
    finally:
        subscriber.close()
    # 50 kB at 125 kB/s take 0.4 s to serialise through the proxy, whatever else happens.
    assert delay_s(received) >= payload_bytes / 125_000


def test_a_blackhole_cut_holds_messages_until_heal(broker: BrokerContainer, topic: str) -> None:
    subscriber = Probe(broker.host, broker.port, subscribe=((topic, 1),))
    proxy = TcpProxy((broker.host, broker.port), name="cut-test").start()
    publisher = Probe(proxy.host, proxy.port)
    try:
        publisher.publish(topic, b"before", qos=1).wait_for_publish(10)
        assert subscriber.receive().payload == b"before"

        proxy.cut()
        forwarded = proxy.stats().bytes_forwarded
        publisher.publish(topic, b"during", qos=1)
        # The PUBLISH has reached the proxy and is held there: nothing goes on (a negative
        # check can only wait a bound).
        assert proxy.wait_until(lambda stats: stats.bytes_held >= len(b"during"), 10)
        assert not proxy.wait_until(lambda stats: stats.bytes_forwarded > forwarded, 0.5)
        assert subscriber.messages.empty()

        proxy.heal()
        assert subscriber.receive().payload == b"during"
        assert publisher.disconnects == 0  # a short partition is invisible to TCP
    finally:
        publisher.close()
        subscriber.close()
        proxy.close()


def test_a_reset_cut_drops_the_connection_and_the_client_reconnects_after_heal(
    broker: BrokerContainer, topic: str
) -> None:
    subscriber = Probe(broker.host, broker.port, subscribe=((topic, 1),))
    with impair(broker, mechanism="proxy", name="reset-test") as impairment:
        publisher = Probe(impairment.host, impairment.port, reconnect_s=0.05)
        try:
            impairment.cut("reset")
            assert publisher.wait_disconnects(1, 10)
            # paho keeps retrying every 50 ms; each attempt is reset while the cut lasts.
            assert impairment.proxy is not None
            resets = impairment.proxy.stats().resets
            assert impairment.proxy.wait_until(lambda stats: stats.resets >= resets + 2, 10)
            assert publisher.connects == 1

            impairment.heal()
            assert publisher.wait_connects(2, 10)
            publisher.publish(topic, b"after heal", qos=1).wait_for_publish(10)
            assert subscriber.receive().payload == b"after heal"
        finally:
            publisher.close()
    subscriber.close()


def test_a_gateway_container_behind_the_proxy_is_delayed_and_cut_off(
    broker: BrokerContainer, docker_client: docker.DockerClient, test_session: str, topic: str
) -> None:
    latency_s = 0.030
    gateway_image = ensure_image("gateway", docker_client)
    with impair(
        broker, latency=latency_s, mechanism="proxy", listen_host="0.0.0.0", name="gateway-link"
    ) as link:
        gateway = start_passthrough_gateway(
            docker_client,
            gateway_image,
            session=test_session,
            prefix=topic,
            broker_host="host.docker.internal",
            broker_port=link.port,
            extra_hosts={"host.docker.internal": "host-gateway"},
        )
        cloud = Probe(broker.host, broker.port, subscribe=((f"{topic}/cloud/#", 1),))
        sensor = Probe(broker.host, broker.port)
        try:
            sent_ns = time.monotonic_ns()
            sensor.publish(f"{topic}/sensors/t1", reading(1), qos=1)
            forwarded = cloud.receive()
            # Broker -> gateway and gateway -> broker both cross the proxy.
            assert (forwarded.arrived_ns - sent_ns) / 1e9 >= 2 * latency_s
            assert json.loads(forwarded.payload)["value"] == 1

            assert link.proxy is not None
            link.cut()
            before = link.proxy.stats()
            sensor.publish(f"{topic}/sensors/t1", reading(2), qos=1)
            assert link.proxy.wait_until(lambda stats: stats.bytes_held > before.bytes_held, 10)
            assert not link.proxy.wait_until(
                lambda stats: stats.bytes_forwarded > before.bytes_forwarded, 0.5
            )
            assert cloud.messages.empty()
            link.heal()
            assert json.loads(cloud.receive().payload)["value"] == 2
        finally:
            sensor.close()
            cloud.close()
            gateway.remove(force=True)


def _one_way_delays(publisher: Probe, subscriber: Probe, topic: str, count: int) -> list[float]:
    """Publish ``count`` stamped messages one after another; each one's publish-to-arrival."""
    delays = []
    for sequence in range(count):
        publisher.publish(topic, stamped(sequence), qos=0)
        message = subscriber.receive(10)
        assert message.payload.startswith(f"{sequence}:".encode())
        delays.append(delay_s(message))
    return delays
