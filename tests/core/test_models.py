"""Sensor, broker, gateway and cloud models inside whole (small) scenarios."""

from __future__ import annotations

from scenarios_for_tests import scenario_dict

from pytest_edgesim import Scenario, Simulation, simulate


def one_sensor(**device):
    spec = {"name": "s", "topic": "sensors/s", "publish": {"period": "1s", "offset": 0}}
    spec.update(device)
    return spec


def test_periodic_sensor_publishes_on_schedule_and_everything_arrives_without_loss():
    data = scenario_dict(
        duration="10s",
        devices=[one_sensor(value={"model": "constant", "value": 3})],
        gateways=[{"name": "gw", "subscribe": "sensors/#"}],
        network={"model": "direct"},
    )
    result = simulate(Scenario.from_dict(data), trace="full")
    publishes = [e for e in result.trace if e[1] == "publish"]
    assert [e[0] for e in publishes] == [i * 1_000_000 for i in range(10)]
    assert result.metrics.topic("sensors/s").sent == 10
    assert result.metrics.node("gw").delivered == 10
    assert [a.payload for a in result.arrivals] == [3.0] * 10  # forwarded one by one


def test_gateway_window_aggregation_and_group_by(tmp_path):
    data = scenario_dict(
        duration="10.5s",
        devices=[
            one_sensor(name="a", topic="sensors/a", value={"model": "constant", "value": 1}),
            one_sensor(name="b", topic="sensors/b", value={"model": "constant", "value": 3}),
        ],
        gateways=[
            {
                "name": "gw",
                "subscribe": "sensors/+",
                "aggregate": {"window": "5s", "functions": ["count", "mean"], "group_by": "device"},
            }
        ],
        network={"model": "direct"},
    )
    result = simulate(Scenario.from_dict(data))
    payloads = [a.payload for a in result.arrivals]
    assert payloads == [
        {"count": 5, "mean": 1.0, "group": "a"},
        {"count": 5, "mean": 3.0, "group": "b"},
        {"count": 5, "mean": 1.0, "group": "a"},
        {"count": 5, "mean": 3.0, "group": "b"},
    ]
    assert [a.time for a in result.arrivals] == [5_000_000, 5_000_000, 10_000_000, 10_000_000]


def test_a_gateway_aggregates_another_gateways_aggregates_by_their_mean():
    """Chained gateways: the edge's aggregates reach the region through the broker; the
    region reads the number in their "mean" (by default it would look for "value")."""
    edge = {
        "name": "edge",
        "subscribe": "sensors/#",
        "aggregate": {"count": 2, "functions": ["mean", "count"]},
        "forward": {"to": "broker", "topic": "region/edge"},
    }
    region = {"name": "region", "subscribe": "region/#", "aggregate": {"count": 2}}
    devices = [
        one_sensor(name="a", topic="sensors/a", value={"model": "constant", "value": 1}),
        one_sensor(name="b", topic="sensors/b", value={"model": "constant", "value": 3}),
    ]

    def run(value_field: str | None):
        aggregate = region["aggregate"] | ({"value_field": value_field} if value_field else {})
        data = scenario_dict(
            duration="8.5s",
            devices=devices,
            gateways=[edge, {**region, "aggregate": aggregate}],
            network={"model": "direct"},
        )
        return simulate(Scenario.from_dict(data))

    result = run("mean")  # readings at 0 s .. 8 s: 9 edge aggregates, 4 region ones
    assert result.metrics.node("region").delivered == 9
    assert [a.payload for a in result.arrivals] == [
        {"mean": 2.0, "min": 2.0, "max": 2.0, "count": 2}
    ] * 4
    assert result.metrics.node("region").dropped["rejected"] == 0
    default = run(None)  # the edge's aggregates carry no "value": each one is rejected
    assert not default.arrivals
    assert default.metrics.node("region").dropped["rejected"] == 9


def test_replay_values_from_csv(tmp_path):
    (tmp_path / "values.csv").write_text("temperature\n1.5\n2.5\n4.0\n")
    data = scenario_dict(
        duration="5s",
        devices=[
            one_sensor(value={"model": "replay", "file": "values.csv", "column": "temperature"})
        ],
        gateways=[{"name": "gw", "subscribe": "sensors/#"}],
        network={"model": "direct"},
    )
    result = simulate(Scenario.from_dict(data, base_dir=tmp_path))
    assert [a.payload for a in result.arrivals] == [1.5, 2.5, 4.0, 1.5, 2.5]


def test_wildcard_subscriptions_route_only_matching_topics():
    data = scenario_dict(
        duration="3s",
        devices=[
            one_sensor(name="a", topic="site/1/temp"),
            one_sensor(name="b", topic="site/2/humidity"),
            one_sensor(name="c", topic="$SYS/uptime"),
        ],
        gateways=[
            {"name": "temps", "subscribe": "site/+/temp", "forward": {"topic": "cloud/temps"}},
            {"name": "everything", "subscribe": "#", "forward": {"topic": "cloud/all"}},
        ],
        network={"model": "direct"},
    )
    result = simulate(Scenario.from_dict(data))
    assert result.metrics.node("temps").delivered == 3
    assert result.metrics.node("everything").delivered == 6  # '#' does not match $SYS/...


def test_qos1_redelivers_what_the_network_loses_and_qos0_does_not():
    def run(qos):
        data = scenario_dict(
            duration="60s",
            devices=[one_sensor(qos=qos, publish={"period": "1s", "offset": 0, "stop": "60s"})],
            gateways=[{"name": "gw", "subscribe": [{"filter": "sensors/#", "qos": 1}]}],
            broker={"retry_interval": "500ms"},
            network={
                "default": {"latency": "10ms"},
                "links": [{"from": "s", "to": "broker", "loss": 0.3}],
            },
        )
        with Simulation(Scenario.from_dict(data)) as simulation:
            simulation.run("60s")
            return simulation.run("70s")  # time for the last retries

    qos0, qos1 = run(0), run(1)
    assert qos0.metrics.topic("sensors/s").sent == 60
    assert qos0.metrics.node("gw").delivered < 55  # ~30 % lost, never resent
    # at-least-once: every reading reaches the gateway; lost PUBACKs may duplicate some
    delivered = {a.created_at for a in qos1.arrivals}  # one reading per second
    assert delivered == {second * 1_000_000 for second in range(60)}
    assert qos1.metrics.link("s", "broker").redelivered > 0
    assert qos1.metrics.link("s", "broker").dropped["loss"] > 0


def test_retained_message_reaches_a_late_subscriber():
    data = scenario_dict(
        duration="2s",
        devices=[
            one_sensor(
                retain=True,
                publish={"period": "10s", "offset": 0},
                value={"model": "constant", "value": 9},
            )
        ],
        gateways=[{"name": "gw", "subscribe": "sensors/#"}],
        network={"model": "direct"},
    )
    with Simulation(Scenario.from_dict(data)) as simulation:
        simulation.run("1s")
        # a subscription made now, long after the publication, still gets the retained value
        simulation.broker.subscribe("cloud", "sensors/+", 0)
        simulation.run("1.5s")
        direct = [a for a in simulation.cloud.arrivals if a.origin == "s"]
        assert [(a.payload, a.time) for a in direct] == [(9, 1_000_000)]


def test_gateway_queue_overflow_drops_by_policy():
    def run(policy):
        data = scenario_dict(
            duration="1s",
            devices=[one_sensor(publish={"period": "10ms", "offset": 0, "stop": "1s"})],
            gateways=[
                {
                    "name": "gw",
                    "subscribe": "sensors/#",
                    "processing_delay": "100ms",
                    "queue": {"capacity": 3, "drop": policy},
                }
            ],
            network={"model": "direct"},
        )
        return simulate(Scenario.from_dict(data), until="2s")

    newest, oldest = run("newest"), run("oldest")
    for result in (newest, oldest):
        gateway = result.metrics.node("gw")
        assert gateway.dropped["queue_overflow"] > 0
        assert result.nodes["gw"]["processed"] + gateway.dropped["queue_overflow"] == 100
    # drop newest keeps the earliest readings; drop oldest keeps the latest
    assert newest.arrivals[-1].created_at < oldest.arrivals[-1].created_at


def test_partition_in_scenario_stops_forwarding_then_heals():
    data = scenario_dict(
        duration="30s",
        devices=[one_sensor()],
        gateways=[{"name": "gw", "subscribe": "sensors/#"}],
        network={
            "default": {"latency": "5ms"},
            "partitions": [{"between": ["gw", "cloud"], "start": "10s", "end": "20s"}],
        },
    )
    result = simulate(Scenario.from_dict(data))
    times = [a.time for a in result.arrivals]
    assert not any(10_000_000 <= t < 20_000_000 for t in times)
    assert any(t >= 20_000_000 for t in times)
    assert result.metrics.link("gw", "cloud").dropped["partition"] == 10


def test_inject_and_set_link_while_paused():
    data = scenario_dict(devices=[one_sensor()], gateways=[{"name": "gw", "subscribe": "#"}])
    with Simulation(Scenario.from_dict(data)) as simulation:
        simulation.run("1s")
        simulation.inject("sensors/manual", 42.0)
        simulation.network.set_link("gw", "cloud", latency_ms=500)
        simulation.run("3s")
        assert any(a.payload == 42.0 for a in simulation.cloud.arrivals)
        late = [a for a in simulation.cloud.arrivals if a.created_at >= 1_000_000]
        assert late and all(a.time - a.created_at >= 500_000 for a in late)


def test_the_cloud_keeps_the_first_arrivals_up_to_the_limit_and_counts_them_all():
    scenario = Scenario.from_dict(scenario_dict())
    everything = simulate(scenario)
    assert len(everything.arrivals) > 3
    limited = simulate(scenario, record_limit=3)
    assert limited.arrivals == everything.arrivals[:3]
    assert limited.nodes["cloud"]["received"] == everything.nodes["cloud"]["received"]
    assert limited.trace_digest == everything.trace_digest


def test_qos1_duplicates_are_counted_as_redelivered_where_they_arrive():
    """A lost PUBACK makes the broker resend with DUP: the gateway and the topic count that
    copy as delivered and as redelivered, so delivered - redelivered never exceeds sent."""
    data = scenario_dict(
        duration="60s",
        devices=[one_sensor(qos=1, publish={"period": "1s", "offset": 0, "stop": "60s"})],
        gateways=[{"name": "gw", "subscribe": [{"filter": "sensors/#", "qos": 1}]}],
        broker={"retry_interval": "500ms"},
        network={
            "default": {"latency": "10ms"},
            "links": [{"from": "broker", "to": "gw", "loss": 0.3}],  # both ways
        },
    )
    with Simulation(Scenario.from_dict(data)) as simulation:
        simulation.run("60s")
        result = simulation.run("70s")
    topic, gateway = result.metrics.topic("sensors/s"), result.metrics.node("gw")
    assert topic.redelivered > 0
    assert gateway.redelivered == topic.redelivered
    assert topic.delivered - topic.redelivered <= topic.sent == 60
    assert topic.delivered > topic.sent  # duplicates did arrive
