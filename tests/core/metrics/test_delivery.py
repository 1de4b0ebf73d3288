"""Delivery accounting: which readings reached the cloud and each gateway, and why the rest
did not. Known losses give exact counts and causes; the trace is the independent oracle
for arrivals, duplicates and reordering."""

from __future__ import annotations

import math
import pickle
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from pytest_edgesim import (
    GatewayKind,
    RunResult,
    Scenario,
    SimulationError,
    register_gateway_kind,
    simulate,
)
from pytest_edgesim.core import gateway_kinds
from pytest_edgesim.core.aggregation import Aggregator
from pytest_edgesim.core.metrics.delivery import (
    LOST_CAUSES,
    Deliveries,
    Delivery,
    SeqSet,
    lineage_from_json,
)
from pytest_edgesim.core.simulation import Simulation
from pytest_edgesim.gateway.config import config_from_spec
from pytest_edgesim.lockstep.host import LocalHost, hosted_gateway
from pytest_edgesim.lockstep.sdk import NodeLogic
from pytest_edgesim.strategies import seeds, small_scenarios


def scenario(
    *,
    uplinks: list[dict[str, Any]] = (),  # type: ignore[assignment]
    gateway: Mapping[str, Any] | None = None,
    partitions: list[dict[str, Any]] = (),  # type: ignore[assignment]
    duration: str = "10s",
    sensors: int = 2,
    qos: int = 0,
) -> Scenario:
    """``sensors`` sensors ``s-0``.. publishing at 0 s, 1 s, ... (10 readings in 10 s) to
    one gateway ``gw`` that forwards to the cloud; 1 ms links unless ``uplinks`` says."""
    return Scenario.from_dict(
        {
            "edgesim": 1,
            "name": "delivery",
            "seed": 3,
            "duration": duration,
            "devices": [
                {
                    "name": "s",
                    "count": sensors,
                    "topic": "site/{name}",
                    "qos": qos,
                    "publish": {"mode": "periodic", "period": "1s", "offset": "0ms"},
                    "value": {"model": "constant", "value": 1.5},
                }
            ],
            "gateways": [
                {"name": "gw", "subscribe": [{"filter": "site/#", "qos": qos}], **(gateway or {})}
            ],
            "network": {
                "default": {"latency": "1ms"},
                "links": list(uplinks),
                "partitions": list(partitions),
            },
        }
    )


# --- SeqSet -------------------------------------------------------------------------------------
def test_a_seq_set_keeps_runs_and_counts_what_is_new() -> None:
    seqs = SeqSet()
    assert seqs.add(1, 3) == 3
    assert seqs.add(4, 4) == 1  # extends the run
    assert seqs.add(7, 9) == 3
    assert list(seqs.runs()) == [(1, 4), (7, 9)]
    assert seqs.add(3, 8) == 2  # 5 and 6 are new; the runs merge
    assert list(seqs.runs()) == [(1, 9)]
    assert seqs.add(2, 2) == 0
    seqs.remove(3, 5)
    assert list(seqs.runs()) == [(1, 2), (6, 9)]
    assert len(seqs) == 6
    assert seqs.count_in(2, 7) == 3
    seqs.remove(0, 100)
    assert list(seqs.runs()) == []


def test_a_seq_set_inserts_a_run_between_others() -> None:
    seqs = SeqSet()
    seqs.add(10, 10)
    seqs.add(1, 1)
    seqs.add(5, 6)
    assert list(seqs.runs()) == [(1, 1), (5, 6), (10, 10)]
    assert seqs.add(2, 4) == 3
    assert list(seqs.runs()) == [(1, 6), (10, 10)]


# --- lineage ------------------------------------------------------------------------------------
def test_an_aggregate_names_the_readings_it_stands_for_in_runs() -> None:
    aggregator = Aggregator(count=6, window=None)
    for origin, seq in [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("b", 3), ("a", 5)]:
        aggregate = aggregator.add(0, "t", origin, 1.0, seq)
    assert aggregate is not None
    assert aggregate.sources == {"a": [[1, 3], [5, 5]], "b": [[1, 1], [3, 3]]}
    # the payload and the trace's text do not carry it (traces do not change)
    assert "sources" not in aggregate.payload("none")
    assert aggregate.canonical() == "mean=1 min=1 max=1 count=6"
    # the next aggregate starts afresh
    assert aggregator.add(0, "t", "a", 1.0, 6) is None
    assert aggregator._groups[""].sources == {"a": [[6, 6]]}


def test_lineage_reads_only_well_formed_json() -> None:
    assert lineage_from_json({"a": [[1, 3], [5, 5]]}) == (("a", 1, 3), ("a", 5, 5))
    for bad in [None, [], {"a": [1, 3]}, {"a": [[3, 1]]}, {"a": [[1, True]]}, {"a": [[1]]}]:
        assert lineage_from_json(bad) is None


def test_forwards_carry_their_lineage_on_the_message_not_in_the_payload() -> None:
    sim = Simulation(scenario(gateway={"aggregate": {"count": 4}}, duration="2500ms"))
    sim.run()
    assert [a.payload for a in sim.cloud.arrivals] == [
        {"mean": 1.5, "min": 1.5, "max": 1.5, "count": 4}
    ]


def test_a_gateway_that_aggregates_another_gateways_aggregates_passes_their_lineage_on() -> None:
    chained = Scenario.from_dict(
        {
            "edgesim": 1,
            "name": "chain",
            "seed": 3,
            "duration": "10s",
            "devices": [
                {
                    "name": "s",
                    "count": 2,
                    "topic": "site/{name}",
                    "publish": {"mode": "periodic", "period": "1s", "offset": "0ms"},
                    "value": {"model": "constant", "value": 1.5},
                }
            ],
            "gateways": [
                {
                    "name": "edge",
                    "subscribe": ["site/#"],
                    "aggregate": {"count": 2},
                    "forward": {"to": "broker", "topic": "edge/out"},
                },
                {
                    "name": "hub",
                    "subscribe": ["edge/out"],
                    "aggregate": {"count": 5, "value_field": "mean"},
                    "forward": {"topic": "cloud/hub"},
                },
            ],
            "network": {
                "default": {"latency": "1ms"},
                "links": [{"from": "s-1", "to": "broker", "loss": 1.0}],
            },
        }
    )
    result = simulate(chained)
    # s-0's ten readings: five aggregates at the edge, one aggregate of five at the hub
    assert [a.payload["count"] for a in result.arrivals] == [5]
    assert result.delivery("s-0", "hub").delivered == 10
    assert result.delivery("s-0", "cloud") == Delivery(sent=10, delivered=10, lost=0)
    assert result.delivery("s-1", "cloud").lost_by_cause == {"loss": 10}


def test_a_forward_dropped_by_the_next_gateway_loses_its_readings_there() -> None:
    chained = Scenario.from_dict(
        {
            "edgesim": 1,
            "name": "chain",
            "seed": 3,
            "duration": "10s",
            "devices": [
                {
                    "name": "s",
                    "count": 2,
                    "topic": "site/{name}",
                    "publish": {"mode": "periodic", "period": "1s", "offset": "0ms"},
                    "value": {"model": "constant", "value": 1.5},
                }
            ],
            "gateways": [
                {
                    "name": "edge",
                    "subscribe": ["site/#"],
                    "forward": {"to": "broker", "topic": "e"},
                },
                {
                    "name": "hub",
                    "subscribe": ["e"],
                    "queue": {"capacity": 1},
                    "processing_delay": "100ms",
                },
            ],
            "network": {"default": {"latency": "1ms"}},
        }
    )
    result = simulate(chained)
    # the edge forwards both sensors' readings at once; the hub, busy with one, drops the other
    assert result.metrics.node("hub").dropped["queue_overflow"] == 10
    assert result.delivery("s-*", "hub").delivered == 20
    assert result.delivery("s-*", "cloud") == Delivery(
        sent=20, delivered=10, lost=10, lost_by_cause={"queue_overflow": 10}
    )


# --- known losses: exact counts and causes -------------------------------------------------
def test_a_lossless_run_delivers_every_reading_everywhere() -> None:
    result = simulate(scenario(gateway={"aggregate": {"count": 5}}))
    for destination in ("gw", "cloud"):
        delivery = result.delivery("s-*", destination)
        assert delivery == Delivery(sent=20, delivered=20, lost=0, lost_by_cause={})
        assert delivery.ratio == 1.0
    assert result.delivery("s-0", "cloud").sent == 10


def test_readings_lost_on_an_uplink_are_lost_everywhere_with_the_cause_loss() -> None:
    result = simulate(
        scenario(
            uplinks=[{"from": "s-1", "to": "broker", "loss": 1.0}],
            gateway={"aggregate": {"count": 5}},
        )
    )
    for destination in ("gw", "cloud"):
        assert result.delivery("s-1", destination) == Delivery(
            sent=10, delivered=0, lost=10, lost_by_cause={"loss": 10}
        )
        assert result.delivery("s-0", destination).delivered == 10
    both = result.delivery(["s-0", "s-1"], "cloud")
    assert (both.sent, both.delivered, both.lost, both.ratio) == (20, 10, 10, 0.5)


def test_readings_cut_by_a_partition_are_lost_with_the_cause_partition() -> None:
    result = simulate(
        scenario(partitions=[{"between": ["s-0", "broker"], "start": "2500ms", "end": "5500ms"}])
    )
    # the readings at 3, 4 and 5 s
    assert result.delivery("s-0", "cloud") == Delivery(
        sent=10, delivered=7, lost=3, lost_by_cause={"partition": 3}
    )
    assert result.delivery("s-1", "cloud").lost == 0


def test_an_aggregate_lost_on_the_way_to_the_cloud_loses_its_readings() -> None:
    result = simulate(
        scenario(
            uplinks=[{"from": "gw", "to": "cloud", "loss": 1.0}],
            gateway={"aggregate": {"count": 4}},
        )
    )
    # 20 readings reached the gateway; 5 aggregates of 4 were lost on its uplink
    assert result.delivery("s-*", "gw").delivered == 20
    assert result.delivery("s-*", "cloud") == Delivery(
        sent=20, delivered=0, lost=20, lost_by_cause={"loss": 20}
    )


def test_a_full_queue_loses_readings_with_the_cause_queue_overflow() -> None:
    result = simulate(
        scenario(
            sensors=4,
            gateway={"queue": {"capacity": 2}, "processing_delay": "300ms"},
        )
    )
    overflow = result.metrics.node("gw").dropped["queue_overflow"]
    assert overflow > 0
    delivery = result.delivery("s-*", "cloud")
    assert delivery.lost_by_cause == {"queue_overflow": overflow}
    assert delivery.delivered == 40 - overflow
    # the readings did reach the gateway
    assert result.delivery("s-*", "gw").delivered == 40


def test_readings_still_in_an_open_aggregate_at_the_end_are_pending() -> None:
    result = simulate(scenario(gateway={"aggregate": {"count": 3}}))
    # 20 readings: six aggregates of three, two readings still waiting for a third
    assert result.delivery("s-*", "cloud") == Delivery(
        sent=20, delivered=18, lost=2, lost_by_cause={"pending": 2}
    )


def test_a_reading_the_gateway_rejects_is_lost_with_the_cause_rejected() -> None:
    sim = Simulation(scenario(gateway={"aggregate": {"count": 2}}))
    sim.run("2500ms")
    sim.inject("site/s-0", "not a number", source="s-0")  # s-0's fourth message
    sim.run()
    result = sim.result()
    assert result.delivery("s-0", "cloud") == Delivery(
        sent=11, delivered=10, lost=1, lost_by_cause={"rejected": 1}
    )
    assert result.delivery("s-0", "gw").delivered == 11


def test_messages_injected_from_nowhere_are_accounted_as_the_origin_inject() -> None:
    sim = Simulation(scenario(uplinks=[{"from": "gw", "to": "cloud", "loss": 1.0}]))
    sim.run("2s")
    sim.inject("site/extra", 20.5)
    sim.run()
    result = sim.result()
    assert result.delivery("inject", "gw") == Delivery(sent=1, delivered=1, lost=0)
    assert result.delivery("inject", "cloud") == Delivery(
        sent=1, delivered=0, lost=1, lost_by_cause={"loss": 1}
    )


def test_a_reading_in_flight_at_the_end_has_an_unknown_cause() -> None:
    result = simulate(
        scenario(uplinks=[{"from": "s-*", "to": "broker", "latency": "600ms"}]),
        until="9500ms",
    )
    # the readings at 9 s are still on their uplinks
    assert result.delivery("s-*", "gw") == Delivery(
        sent=20, delivered=18, lost=2, lost_by_cause={"unknown": 2}
    )


# --- duplicates and reordering: the trace is the oracle ---------------------------------------
def _trace_oracle(result: RunResult, destination: str) -> dict[str, Any]:
    """What reached ``destination`` per the trace: distinct readings, copies beyond the first,
    and readings that arrived after a later one of the same origin."""
    forwarded = {e[5]: e[6] for e in result.trace or () if e[1] == "forward"}
    seen: dict[str, set[int]] = defaultdict(set)
    highest: dict[str, int] = defaultdict(int)
    duplicated = reordered = 0
    for event in result.trace or ():
        if event[1] != "deliver" or event[2] != destination:
            continue
        reading = forwarded.get(event[5], event[5])
        origin, seq_text = reading.split("#")
        seq = int(seq_text)
        if seq in seen[origin]:
            duplicated += 1
            continue
        seen[origin].add(seq)
        if seq < highest[origin]:
            reordered += 1
        highest[origin] = max(highest[origin], seq)
    return {
        "delivered": sum(len(s) for s in seen.values()),
        "duplicated": duplicated,
        "reordered": reordered,
    }


def test_qos1_retries_are_counted_as_duplicates_at_the_cloud() -> None:
    # the cloud's PUBACKs are lost half the time, so the gateway resends forwards it had
    # delivered
    result = simulate(
        scenario(
            qos=1,
            gateway={"forward": {"qos": 1}},
            uplinks=[{"from": "cloud", "to": "gw", "loss": 0.5}],
            duration="20s",
        ),
        trace="full",
    )
    delivery = result.delivery("s-*", "cloud")
    oracle = _trace_oracle(result, "cloud")
    assert delivery.duplicated > 0
    assert (delivery.delivered, delivery.duplicated) == (
        oracle["delivered"],
        oracle["duplicated"],
    )
    # one reading per forward: the copies are the cloud's arrivals beyond the distinct ones
    assert delivery.duplicated == result.metrics.node("cloud").delivered - delivery.delivered


def test_reordering_on_a_jittery_link_is_counted_as_the_trace_shows() -> None:
    result = simulate(
        scenario(
            uplinks=[
                {
                    "from": "s-*",
                    "to": "broker",
                    "latency": "500ms",
                    "jitter": {"distribution": "uniform", "max": "900ms"},
                    "reorder": True,
                }
            ],
            duration="30s",
        ),
        trace="full",
    )
    for destination in ("gw", "cloud"):
        delivery = result.delivery("s-*", destination)
        oracle = _trace_oracle(result, destination)
        assert delivery.reordered > 0
        assert (delivery.delivered, delivery.duplicated, delivery.reordered) == (
            oracle["delivered"],
            oracle["duplicated"],
            oracle["reordered"],
        )


# --- a gateway that says nothing of its readings ---------------------------------------------
class ForwardBlindly(NodeLogic):
    """A user's logic that forwards every reading and gives no lineage."""

    def on_message(self, t: int, message: dict[str, Any]) -> None:
        self.node.publish("cloud/out", message["payload"], created_at=message["created_at"])


def test_forwards_without_lineage_are_counted_as_deliveries_of_unknown_readings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway_kinds, "_registered", dict(gateway_kinds._registered))
    register_gateway_kind(
        GatewayKind(
            "python_model",
            "a logic with no lineage",
            virtual_time=lambda spec, site: hosted_gateway(
                spec, site, LocalHost(ForwardBlindly), config_from_spec(spec)
            ),
        )
    )
    result = simulate(scenario(uplinks=[{"from": "s-1", "to": "broker", "loss": 1.0}]))
    assert result.deliveries.without_lineage == {"cloud": {"gw": 10}}
    # s-0's ten readings reached the gateway; ten forwards without lineage reached the cloud
    assert result.delivery("s-0", "cloud") == Delivery(
        sent=10, delivered=10, lost=0, lost_by_cause={}, without_lineage=10
    )
    # s-1's readings never reached the gateway: their loss is still known
    assert result.delivery("s-1", "cloud") == Delivery(
        sent=10, delivered=0, lost=10, lost_by_cause={"loss": 10}
    )


def test_a_logic_that_names_its_readings_wrongly_stops_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Miscounting(NodeLogic):
        def on_message(self, t: int, message: dict[str, Any]) -> None:
            self.node.publish("cloud/out", 1, sources={message["origin"]: [message["seq"]]})

    monkeypatch.setattr(gateway_kinds, "_registered", dict(gateway_kinds._registered))
    register_gateway_kind(
        GatewayKind(
            "python_model",
            "a logic whose lineage is malformed",
            virtual_time=lambda spec, site: hosted_gateway(
                spec, site, LocalHost(Miscounting), config_from_spec(spec)
            ),
        )
    )
    with pytest.raises(SimulationError, match=r"field 'sources' must name readings as"):
        simulate(scenario())


# --- the value ---------------------------------------------------------------------------------
def test_deliveries_are_a_value_that_survives_json_pickle_and_merges() -> None:
    result = simulate(scenario(uplinks=[{"from": "s-1", "to": "broker", "loss": 0.5}]))
    again = RunResult.from_dict(result.to_dict())
    assert again.deliveries == result.deliveries
    assert pickle.loads(pickle.dumps(result)).deliveries == result.deliveries
    merged = result.deliveries.merge(again.deliveries)
    twice = merged.delivery("s-*", "cloud")
    once = result.delivery("s-*", "cloud")
    assert (twice.sent, twice.delivered, twice.lost) == (
        2 * once.sent,
        2 * once.delivered,
        2 * once.lost,
    )
    assert dict(twice.lost_by_cause) == {k: 2 * v for k, v in once.lost_by_cause.items()}
    assert set(once.lost_by_cause) <= set(LOST_CAUSES)


def test_an_unknown_destination_names_the_known_ones() -> None:
    result = simulate(scenario())
    with pytest.raises(KeyError, match=r"no destination 'nowhere'.*cloud, gw"):
        result.delivery("s-*", "nowhere")
    assert math.isnan(result.delivery("nobody", "cloud").ratio)
    assert Deliveries().to_dict() == {"flows": {}, "reached": {}, "without_lineage": {}}


# --- properties --------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(scenario=small_scenarios(), seed=seeds())
def test_every_reading_is_delivered_or_lost_for_a_cause(scenario: Scenario, seed: int) -> None:
    result = simulate(scenario, seed=seed)
    sensors = [name for name, node in result.nodes.items() if node.get("published")]
    assert result.deliveries.destinations()
    for destination, flows in result.deliveries.flows.items():
        for origin, flow in flows.items():
            assert flow.delivered + flow.lost == flow.sent, (destination, origin)
            assert 0 <= flow.delivered <= flow.sent
            assert sum(flow.lost_by_cause.values()) == flow.lost
            assert all(count > 0 for count in flow.lost_by_cause.values())
            assert set(flow.lost_by_cause) <= set(LOST_CAUSES)
            assert flow.sent == result.nodes[origin]["published"]
    # the cloud accounts for every sensor that published
    assert sorted(result.deliveries.flows["cloud"]) == sorted(sensors)


@settings(max_examples=40, deadline=None)
@given(scenario=small_scenarios(qos=(0,)), seed=seeds())
def test_at_qos0_a_gateway_receives_each_reading_once(scenario: Scenario, seed: int) -> None:
    """Without retransmissions, the packets a gateway received are distinct readings: the
    ledger's count is the network's."""
    result = simulate(scenario, seed=seed)
    for gateway in scenario.spec.gateways:
        delivery = result.delivery("*", gateway.name)
        assert delivery.duplicated == 0
        assert delivery.delivered == result.metrics.node(gateway.name).delivered


def test_a_killed_gateway_s_losses_are_counted_by_cause() -> None:
    """What the gateway held when killed is lost to ``node_down``; what was published while
    it was down matched no subscription (``no_subscriber``); nothing is left ``unknown``."""
    from pytest_edgesim import EdgeScenario, Scenario

    basic = Path(__file__).resolve().parents[3] / "scenarios" / "basic.yaml"
    scenario = Scenario.from_yaml(basic).with_overrides({"duration": "20s"})
    edge = EdgeScenario(scenario)
    edge.run("5s")
    edge.kill("gateway")
    edge.run("8s")
    edge.start("gateway")
    delivery = edge.run().delivery("*", "cloud")

    causes = delivery.lost_by_cause
    assert causes.get("node_down", 0) > 0 and causes.get("no_subscriber", 0) > 0
    assert "unknown" not in causes
    assert delivery.delivered + delivery.lost == delivery.sent
    assert sum(causes.values()) == delivery.lost


def test_a_clean_session_s_offline_losses_are_counted_as_such() -> None:
    from pytest_edgesim import Scenario, simulate

    basic = Path(__file__).resolve().parents[3] / "scenarios" / "basic.yaml"
    scenario = Scenario.from_yaml(basic).with_overrides(
        {
            "duration": "20s",
            "gateways.0.session": {"clean": True, "keepalive": "1s"},
            "network.partitions": [{"between": ["gateway", "broker"], "start": "5s", "end": "9s"}],
        }
    )
    delivery = simulate(scenario).delivery("*", "gateway")
    assert delivery.lost_by_cause.get("offline", 0) > 0
    assert "unknown" not in delivery.lost_by_cause
    assert sum(delivery.lost_by_cause.values()) == delivery.lost
