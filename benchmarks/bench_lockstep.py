"""Benchmark: the lockstep protocol against a gateway container (needs Docker).

    python benchmarks/bench_lockstep.py                      # 5,000 round trips, 100 sensors
    python benchmarks/bench_lockstep.py --round-trips 20000 --sensors 100 --duration 60

1. Advance round trip on loopback to the gateway container: one ``advance`` carrying one
   reading and its ``reply``, timed on the coordinator (framing, JSON, the engine's port
   proxy, the node's logic). Prints the median and p99 in microseconds (target: median
   under 200 us).
2. A 100-sensor, 60-virtual-second scenario (every sensor publishes once a second over a
   20 ms uplink, the gateway aggregates 10 readings and forwards over a 50 ms link) run
   with the python_model gateway and with the gateway container in lockstep; container
   start and the hello are excluded (they happen when the Simulation is built). Prints
   both wall-clock times and their ratio (target: lockstep under 2 s), with lookahead
   windows off (the default) and on, and checks that the digests agree.
"""

from __future__ import annotations

import argparse
import statistics
import time

from pytest_edgesim import Scenario, Simulation
from pytest_edgesim.docker.engine import connect
from pytest_edgesim.docker.images import ensure_image
from pytest_edgesim.docker.lockstep_gateway import GATEWAY_COMMAND, NodeContainer
from pytest_edgesim.lockstep.host import HostedGateway


def scenario(sensors: int, duration_s: int, implementation: str) -> Scenario:
    gateway = {
        "name": "gateway",
        "subscribe": ["sensors/#"],
        "aggregate": {"count": 10},
        "processing_delay": {"distribution": "uniform", "low": "1ms", "high": "3ms"},
        "forward": {"qos": 1},
        "implementation": implementation,
    }
    if implementation == "docker":
        gateway["docker"] = {"mode": "lockstep"}
    return Scenario.from_dict(
        {
            "edgesim": 1,
            "name": f"bench-{sensors}",
            "seed": 1,
            "duration": f"{duration_s}s",
            "devices": [
                {
                    "name": "sensor",
                    "count": sensors,
                    "topic": "sensors/{name}",
                    "publish": {"period": "1s", "jitter": "100ms"},
                    "value": {"model": "random_walk", "start": 20.0, "step": 0.5},
                }
            ],
            "gateways": [gateway],
            "network": {
                "default": {"latency": "1ms"},
                "links": [
                    {"from": "sensor-*", "to": "broker", "latency": "20ms", "loss": 0.01},
                    {"from": "gateway", "to": "cloud", "latency": "50ms"},
                ],
            },
        }
    )


def round_trips(image: str, count: int) -> list[float]:
    container = NodeContainer.start(image, connect(), command=GATEWAY_COMMAND)
    try:
        host = container.socket_host(owned=False)
        config = {
            "name": "gateway",
            "aggregate": {
                "count": 10,
                "window_us": None,
                "functions": ["mean"],
                "group_by": "none",
            },
            "processing_delay_us": {"distribution": "constant", "value": 0},
            "queue": {"capacity": 1000, "drop": "newest"},
            "forward": {"topic": "cloud/gateway", "qos": 0},
        }
        host.start("gateway", 1, config)
        timings = []
        clock = time.perf_counter_ns
        for index in range(count + 200):
            t = (index + 1) * 1000
            message = {
                "topic": "sensors/s",
                "payload": 20.5,
                "origin": "s",
                "seq": index,
                "created_at": t - 20_000,
                "qos": 0,
            }
            started = clock()
            host.advance(t, [(t, message)], False)
            if index >= 200:  # warm-up excluded
                timings.append((clock() - started) / 1000)
        host.close()
        return timings
    finally:
        container.remove()


def timed_run(built: Scenario) -> tuple[float, str, int]:
    with Simulation(built) as simulation:  # building starts the container and says hello
        started = time.perf_counter()
        result = simulation.run()
        elapsed = time.perf_counter() - started
        advances = simulation.nodes["gateway"].advances
    return elapsed, result.trace_digest, advances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument("--duration", type=int, default=60, help="virtual seconds")
    args = parser.parse_args()

    image = ensure_image("gateway", connect())
    timings = sorted(round_trips(image, args.round_trips))
    median = statistics.median(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    print(f"advance round trip, {len(timings)} samples: median {median:.0f} us, p99 {p99:.0f} us")

    for windowed in (False, True):
        HostedGateway.windowed_default = windowed
        python_s, python_digest, _ = timed_run(
            scenario(args.sensors, args.duration, "python_model")
        )
        lockstep_s, lockstep_digest, lockstep_advances = timed_run(
            scenario(args.sensors, args.duration, "docker")
        )
        label = "windows on " if windowed else "windows off"
        same = "same digest" if python_digest == lockstep_digest else "DIGESTS DIFFER"
        print(
            f"{args.sensors} sensors, {args.duration} s virtual, {label}: python gateway "
            f"{python_s:.2f} s, lockstep container {lockstep_s:.2f} s "
            f"(ratio {lockstep_s / python_s:.1f}x, {lockstep_advances} advances), {same}"
        )
    HostedGateway.windowed_default = False


if __name__ == "__main__":
    main()
