"""The network models, driven directly with recording nodes.

Statistical assertions use fixed seeds and bounds from the binomial/normal distribution at a
false-alarm rate below 1e-6 (|z| < 5), so they are deterministic and, were the seed changed,
would still fail only if the model were wrong.
"""

import itertools
import math
import re

import pytest

from pytest_edgesim.core.engine import Coordinator
from pytest_edgesim.core.metrics.recorder import MetricsRecorder
from pytest_edgesim.core.network import DirectNetworkModel, LatencyNetworkModel
from pytest_edgesim.core.node import Node
from pytest_edgesim.core.packet import PUBLISH, Message, Packet
from pytest_edgesim.core.rng import StreamFactory
from pytest_edgesim.core.scenario.schema import LinkRule, LinkSettings
from pytest_edgesim.core.trace import TraceRecorder
from pytest_edgesim.errors import SimulationError

Z = 5.0  # two-sided false-alarm rate ~5.7e-7


class Recorder(Node):
    def __init__(self, name):
        super().__init__(name)
        self.arrivals = []

    def on_packet(self, packet):
        self.arrivals.append((self.context.now if self.context else None, packet))


def build(default=None, rules=(), *, direct=False, seed=1, names=("a", "b", "c")):
    coordinator = Coordinator()
    nodes = {name: Recorder(name) for name in names}
    streams, metrics, trace = StreamFactory(seed), MetricsRecorder(), TraceRecorder()
    if direct:
        network = DirectNetworkModel(coordinator, streams, metrics, trace, nodes)
    else:
        network = LatencyNetworkModel(
            coordinator,
            streams,
            metrics,
            trace,
            nodes,
            default=LinkSettings.model_validate(default or {}),
            rules=[LinkRule.model_validate(rule) for rule in rules],
        )
    from pytest_edgesim.core.node import NodeContext

    for node in nodes.values():
        node.bind(NodeContext(node.name, coordinator, network.transmit, streams, metrics, trace))
    return coordinator, network, nodes, metrics


def send(coordinator, network, src, dst, seq, size=64):
    message = Message("t/x", seq, origin=src, seq=seq, created_at=coordinator.now, size_bytes=size)
    network.transmit(Packet(PUBLISH, src, dst, message))


def send_every(coordinator, network, src, dst, count, gap):
    for seq in range(count):
        coordinator.schedule_at(seq * gap, lambda s: send(coordinator, network, src, dst, s), seq)


def test_direct_network_delivers_everything_at_once():
    coordinator, network, nodes, _ = build(direct=True)
    send_every(coordinator, network, "a", "b", 10, 1000)
    coordinator.run()
    assert [(t, p.message.seq) for t, p in nodes["b"].arrivals] == [
        (i * 1000, i) for i in range(10)
    ]


def test_fixed_latency_and_rule_overrides_per_direction():
    coordinator, network, nodes, metrics = build(
        {"latency": "20ms"}, [{"from": "a", "to": "c", "latency": "5ms", "bidirectional": False}]
    )
    send(coordinator, network, "a", "b", 1)
    send(coordinator, network, "a", "c", 2)
    send(coordinator, network, "c", "a", 3)
    coordinator.run()
    assert nodes["b"].arrivals[0][0] == 20_000
    assert nodes["c"].arrivals[0][0] == 5_000
    assert nodes["a"].arrivals[0][0] == 20_000
    assert metrics.links["a->c"].latency.maximum == 5_000


def test_fifo_holds_per_link_despite_jitter():
    coordinator, network, nodes, _ = build(
        {"latency": "20ms", "jitter": {"distribution": "normal", "stddev": "10ms"}}
    )
    send_every(coordinator, network, "a", "b", 2000, 500)  # 0.5 ms apart, jitter 10 ms
    coordinator.run()
    seqs = [p.message.seq for _, p in nodes["b"].arrivals]
    assert seqs == sorted(seqs) and len(seqs) == 2000


def test_reordering_happens_when_enabled():
    coordinator, network, nodes, _ = build(
        {"latency": "20ms", "jitter": {"distribution": "normal", "stddev": "10ms"}, "reorder": True}
    )
    send_every(coordinator, network, "a", "b", 2000, 500)
    coordinator.run()
    seqs = [p.message.seq for _, p in nodes["b"].arrivals]
    assert seqs != sorted(seqs) and sorted(seqs) == list(range(2000))


@pytest.mark.parametrize("loss_rate", [0.01, 0.2, 0.5])
def test_observed_loss_is_consistent_with_configured_rate(loss_rate):
    n = 20_000
    coordinator, network, nodes, metrics = build({"latency": "1ms", "loss": loss_rate}, seed=11)
    send_every(coordinator, network, "a", "b", n, 100)
    coordinator.run()
    lost = metrics.links["a->b"].dropped_loss
    assert lost + len(nodes["b"].arrivals) == n
    sd = math.sqrt(n * loss_rate * (1 - loss_rate))
    assert abs(lost - n * loss_rate) < Z * sd, (lost, n * loss_rate, sd)


def test_mean_latency_matches_normal_jitter_distribution():
    n = 20_000
    coordinator, network, _, metrics = build(
        {"latency": "20ms", "jitter": {"distribution": "normal", "stddev": "5ms"}, "reorder": True},
        seed=3,
    )
    send_every(coordinator, network, "a", "b", n, 100)
    coordinator.run()
    sketch = metrics.links["a->b"].latency
    assert sketch.count == n
    assert abs(sketch.mean - 20_000) < Z * 5_000 / math.sqrt(n)
    # truncated at zero: no negative delays, and the spread looks like sigma = 5 ms
    assert sketch.minimum >= 0
    assert abs((sketch.quantile(0.8413) - sketch.quantile(0.5)) - 5_000) < 500


def test_uniform_jitter_stays_within_bounds():
    coordinator, network, _, metrics = build(
        {"latency": "20ms", "jitter": "5ms", "reorder": True}, seed=4
    )
    send_every(coordinator, network, "a", "b", 5000, 100)
    coordinator.run()
    sketch = metrics.links["a->b"].latency
    assert sketch.minimum >= 15_000 and sketch.maximum <= 25_000
    assert abs(sketch.mean - 20_000) < Z * (10_000 / math.sqrt(12)) / math.sqrt(5000)


def test_gilbert_elliott_loss_comes_in_bursts():
    n = 50_000
    p_gb, p_bg = 0.01, 0.2
    coordinator, network, nodes, _ = build(
        {
            "latency": "1ms",
            "loss": {"model": "gilbert_elliott", "p_good_to_bad": p_gb, "p_bad_to_good": p_bg},
        },
        seed=5,
    )
    send_every(coordinator, network, "a", "b", n, 100)
    coordinator.run()
    delivered = {p.message.seq for _, p in nodes["b"].arrivals}
    lost = [seq not in delivered for seq in range(n)]
    # stationary loss = p_gb / (p_gb + p_bg)
    stationary = p_gb / (p_gb + p_bg)
    assert abs(sum(lost) / n - stationary) < 0.01
    # bursts: mean run of consecutive losses ~ 1 / p_bg = 5 (independent loss would give ~1.05)
    runs, current = [], 0
    for is_lost in lost:
        if is_lost:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    mean_burst = sum(runs) / len(runs)
    assert 4.0 < mean_burst < 6.0
    # P(lost | previous lost) far above P(lost)
    after_loss = [b for a, b in itertools.pairwise(lost) if a]
    assert sum(after_loss) / len(after_loss) > 0.7


def test_bandwidth_serialises_back_to_back_packets():
    coordinator, network, nodes, _ = build({"latency": "10ms", "bandwidth": "80kbps"})
    for seq in range(3):
        send(coordinator, network, "a", "b", seq, size=996)  # 996 + len("t/x") + 4 = 1003 B
    coordinator.run()
    times = [t for t, _ in nodes["b"].arrivals]
    per_packet = 1003 * 8 * 1_000_000 // 80_000
    assert times == [per_packet + 10_000, 2 * per_packet + 10_000, 3 * per_packet + 10_000]


def test_partition_drops_exactly_what_crosses_the_cut_while_down():
    latency = 10_000
    coordinator, network, nodes, metrics = build({"latency": "10ms"})
    cut = network.add_cut(frozenset({"a"}), frozenset({"b"}))
    down_at, up_at = 100_000, 200_000
    coordinator.schedule_at(down_at, network.cut_down, cut)
    coordinator.schedule_at(up_at, network.cut_up, cut)
    gap = 1_000
    send_every(coordinator, network, "a", "b", 300, gap)
    send_every(coordinator, network, "a", "c", 300, gap)  # not across the cut
    coordinator.run()
    delivered = {p.message.seq for _, p in nodes["b"].arrivals}
    for seq in range(300):
        sent, arrives = seq * gap, seq * gap + latency
        # down during [down_at, up_at): crossing means the flight [sent, arrives] meets it
        crosses = sent < up_at and arrives >= down_at
        assert (seq not in delivered) == crosses, seq
    assert metrics.links["a->b"].dropped_partition == 300 - len(delivered)
    assert len(nodes["c"].arrivals) == 300


def test_partition_and_heal_from_code_while_paused():
    coordinator, network, nodes, _ = build({"latency": "1ms"})
    send_every(coordinator, network, "a", "b", 30, 10_000)
    coordinator.run(until=95_000)
    network.partition("a", "b")
    assert network.is_partitioned("b", "a")
    coordinator.run(until=195_000)
    assert network.heal() == 1
    coordinator.run()
    seqs = [p.message.seq for _, p in nodes["b"].arrivals]
    assert seqs == list(range(10)) + list(range(20, 30))


def test_set_link_changes_latency_and_loss_from_now_on():
    coordinator, network, nodes, _ = build({"latency": "1ms"})
    send(coordinator, network, "a", "b", 0)
    coordinator.run(until=10_000)
    network.set_link("a", "b", latency_ms=50, loss=1.0)
    send(coordinator, network, "a", "b", 1)
    send(coordinator, network, "b", "a", 2)
    coordinator.run()
    assert [p.message.seq for _, p in nodes["b"].arrivals] == [0]
    assert nodes["a"].arrivals == []


def test_set_link_takes_the_yaml_values_and_refuses_bad_ones():
    _, network, _, _ = build({"latency": "1ms"})
    network.set_link("a", "b", latency="40ms", jitter=0.002, bandwidth="1Mbps")
    profile = network.link("a", "b").profile
    assert (profile.latency, profile.jitter_ticks, profile.bandwidth_bps) == (40_000, 2_000, 10**6)
    assert profile.jitter == "uniform"
    network.set_link("a", "b", latency_ms=2.5, bandwidth_bps=0)  # 0 lifts the limit
    profile = network.link("b", "a").profile
    assert (profile.latency, profile.bandwidth_bps) == (2_500, 0)
    bad = [
        ({"latency": "40 parsecs"}, "latency unknown time unit"),
        ({"latency": "40ms", "latency_ms": 40}, "give latency or latency_ms, not both"),
        ({"latency_ms": -5}, "latency_ms must be a number of milliseconds >= 0, got -5"),
        ({"jitter_ms": float("nan")}, "jitter_ms must be a number of milliseconds >= 0"),
        ({"bandwidth": "fast"}, "bandwidth must be a bandwidth such as"),
        ({"loss": 1.5}, "loss must be between 0 and 1, got 1.5"),
        ({"loss": "0.1"}, "loss must be between 0 and 1, got '0.1'"),
    ]
    for settings, message in bad:
        with pytest.raises(SimulationError, match=re.escape(message)):
            network.set_link("a", "b", **settings)
    assert network.link("a", "b").profile == profile  # nothing half-applied


def test_what_a_nodes_on_packet_returns_is_ignored():
    class Answering(Recorder):
        def on_packet(self, packet):
            super().on_packet(packet)
            return True

    coordinator = Coordinator()
    nodes = {"a": Recorder("a"), "b": Answering("b")}
    streams, metrics, trace = StreamFactory(1), MetricsRecorder(), TraceRecorder()
    network = DirectNetworkModel(coordinator, streams, metrics, trace, nodes)
    from pytest_edgesim.core.node import NodeContext

    for node in nodes.values():
        node.bind(NodeContext(node.name, coordinator, network.transmit, streams, metrics, trace))
    send(coordinator, network, "a", "b", 1)
    coordinator.run()
    assert len(nodes["b"].arrivals) == 1
