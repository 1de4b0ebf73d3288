"""Benchmark: the trial time of a black-box gateway image against the project's gateway.

    python benchmarks/bench_blackbox.py                  # 6 trials each, 3 s at time_scale 3
    python benchmarks/bench_blackbox.py --trials 10 --duration 6s

Runs the same scenario (three sensors, one gateway forwarding each reading's result to the
cloud) as consecutive live trials on one real Mosquitto, the way a statistical test does
(a fresh ``LiveRun`` per trial, gateway containers from one pool), with three gateways:

* the project's gateway image (``edgesim/gateway``): reused across trials through the
  control protocol (one reset per trial);
* example_tests/blackbox_gateway, a program that knows nothing of edgesim, given
  ``{topic_prefix}`` (isolation ``prefix``: a new container per trial);
* the same program on its own topics (isolation ``restart``: the container is killed at the
  end of a trial and started again for the next).

Each trial's wall time is from building the run to closing it; its overhead is that minus
the scenario's own wall time (duration / time_scale). The first trial (a container start
and the image build check for every gateway) is reported apart. Every container carries a
fresh session label and is removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "example_tests" / "blackbox_gateway"
AVERAGER = ["python3", "/opt/moving-average/moving_average.py"]


def scenario(docker: dict[str, Any] | None, duration: str) -> Any:
    from pytest_edgesim import Scenario

    gateway: dict[str, Any] = {
        "name": "gw",
        "implementation": "docker",
        "subscribe": "sensors/+/temperature",
        "forward": {"topic": "out"},
    }
    if docker is not None:
        gateway["docker"] = docker
    return Scenario.from_dict(
        {
            "edgesim": 1,
            "duration": duration,
            "devices": [
                {
                    "name": "temp",
                    "count": 3,
                    "topic": "sensors/{name}/temperature",
                    "publish": {"period": "200ms"},
                    "value": 21.0,
                }
            ],
            "gateways": [gateway],
            "network": {"default": {"latency": "1ms"}},
        }
    )


def black_box(prefixed: bool) -> dict[str, Any]:
    prefix = "{topic_prefix}" if prefixed else ""
    return {
        "build": str(PROGRAM),
        "command": [
            *AVERAGER,
            "--host={broker_host}",
            "--port={broker_port}",
            "--client-id={client_id}",
            f"--subscribe={prefix}sensors/+/temperature",
            f"--publish={prefix}out",
        ],
    }


def trials(
    client: Any, endpoint: Any, spec_docker: dict[str, Any] | None, count: int, args: Any
) -> tuple[list[float], int]:
    """Wall seconds of each trial, and how many aggregates the last one saw."""
    from pytest_edgesim.docker.kinds import start_gateway_container
    from pytest_edgesim.docker.user_gateway import isolation, program_key
    from pytest_edgesim.live import LiveRun
    from pytest_edgesim.live.pool import GatewayPool

    built = scenario(spec_docker, args.duration)
    spec = built.spec.gateways[0]
    restart = isolation(spec) == "restart"
    pool = GatewayPool(endpoint)
    program = program_key(spec)

    def launch(spec: Any, config: Any, endpoint: Any) -> Any:
        def start(config: Any) -> Any:
            return start_gateway_container(spec, config, endpoint, client)

        return pool.acquire(config, program, start, program=program, isolation=isolation(spec))

    times, seen = [], 0
    try:
        for index in range(count):
            started = time.perf_counter()
            prefix = "" if restart else f"bench/{index}/"
            pool.note_activity()  # as the plugin does for each run
            run = LiveRun(
                built,
                index,
                broker=endpoint,
                time_scale=args.time_scale,
                topic_prefix=prefix,
                launcher=launch,
            )
            try:
                seen = len(run.run().arrivals)
            finally:
                run.close()
            times.append(time.perf_counter() - started)
    finally:
        pool.close()
    return times, seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--duration", default="3s")
    parser.add_argument("--time-scale", type=float, default=3.0)
    args = parser.parse_args()

    from pytest_edgesim.core.units import TICKS_PER_SECOND, parse_duration
    from pytest_edgesim.docker import labels
    from pytest_edgesim.docker.engine import connect
    from pytest_edgesim.docker.session import start_broker_on_own_network
    from pytest_edgesim.live import BrokerEndpoint

    scenario_s = parse_duration(args.duration) / TICKS_PER_SECOND / args.time_scale
    client = connect()
    broker, network, removal = start_broker_on_own_network(client, keep=False)
    endpoint = BrokerEndpoint(broker.host, broker.port, network, broker.name)
    gateways = {
        "project gateway (control protocol)": None,
        "black box, isolation prefix": black_box(prefixed=True),
        "black box, isolation restart": black_box(prefixed=False),
    }
    results = {}
    try:
        for title, docker in gateways.items():
            results[title] = trials(client, endpoint, docker, args.trials, args)
    finally:
        for remove in reversed(removal):  # the broker, then its network
            remove()
        from pytest_edgesim.docker.cleanup import remove_own

        remove_own(client, labels.session_id())
    print(
        f"{args.trials} trials of {args.duration} at time_scale {args.time_scale:g} "
        f"({scenario_s:.2f} s of wall time each)"
    )
    baseline = statistics.median(results[next(iter(results))][0][1:])
    header = f"{'gateway':<38} {'first':>7} {'median':>7} {'overhead':>9} {'x project':>9}"
    print(header + "  aggregates")
    for title, (times, seen) in results.items():
        median = statistics.median(times[1:])
        print(
            f"{title:<38} {times[0]:6.2f}s {median:6.2f}s {median - scenario_s:8.2f}s "
            f"{median / baseline:8.2f}x  {seen}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
