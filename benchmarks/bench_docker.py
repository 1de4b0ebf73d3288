"""Benchmark: the Docker tier's fixed costs on the real engine.

    python benchmarks/bench_docker.py                 # 5 cold starts, 300 round trips
    python benchmarks/bench_docker.py --starts 10 --messages 1000

Measures, in one run:

* broker cold start, from the create request to the first CONNACK: ``BrokerContainer.start``
  against a plain ``docker run -d`` of the same image followed by a connect loop;
* ``ensure_image`` when the image is already built (the no-op every session pays);
* MQTT publish-to-deliver time (QoS 0, one message at a time, publisher and subscriber in
  this process) straight to the broker, and through the impairing TCP proxy with no
  impairment, i.e. what the proxy itself costs.

Every container carries a fresh session label and is removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "containers" / "mqtt-broker" / "mosquitto.conf"
sys.path.insert(0, str(ROOT / "tests" / "docker"))


def cold_starts(client, image: str, session: str, count: int) -> dict[str, list[float]]:
    from pytest_edgesim.docker.broker import MQTT_PORT, BrokerContainer, mqtt_connack
    from pytest_edgesim.docker.engine import published_host
    from pytest_edgesim.docker.labels import SESSION_LABEL

    fixture, plain = [], []
    for _ in range(count):
        started = time.perf_counter()
        broker = BrokerContainer.start(image, client, session=session)
        fixture.append(time.perf_counter() - started)
        broker.remove()

        started = time.perf_counter()
        container_id = subprocess.run(
            ["docker", "run", "-d", "--label", f"{SESSION_LABEL}={session}",
             "-p", f"127.0.0.1::{MQTT_PORT}", image],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        port = client.api.inspect_container(container_id)["NetworkSettings"]["Ports"]
        host_port = int(port[f"{MQTT_PORT}/tcp"][0]["HostPort"])
        while True:
            try:
                if mqtt_connack(published_host(client), host_port, timeout_s=1.0) == 0:
                    break
            except OSError:
                time.sleep(0.005)
        plain.append(time.perf_counter() - started)
        client.api.remove_container(container_id, force=True)
    return {"BrokerContainer.start": fixture, "docker run + connect loop": plain}


def testcontainers_starts(image: str, session: str, count: int) -> dict[str, list[float]]:
    """testcontainers-python's MosquittoContainer on the same image and configuration:
    start() (which waits for the broker's "running" log line) plus its client's connect,
    the way a test would use it. (Its own default configuration logs to stdout, which
    Debian's mosquitto block-buffers when stdout is not a terminal, so the line never
    comes; ours logs to stderr.)

    Optional: skipped when testcontainers is not installed. Ryuk, its reaper container, is
    disabled: its image cannot be pulled without a registry.
    """
    import os
    import warnings

    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from testcontainers.mqtt import MosquittoContainer
    except ImportError:
        print("testcontainers is not installed: pip install testcontainers (skipped)")
        return {}
    from pytest_edgesim.docker.labels import SESSION_LABEL

    starts = []
    for _ in range(count):
        container = MosquittoContainer(image, labels={SESSION_LABEL: session})
        started = time.perf_counter()
        container.start(configfile=str(CONFIG_FILE))
        container.get_client()
        starts.append(time.perf_counter() - started)
        container.stop()
    return {"testcontainers MosquittoContainer": starts}


def cached_builds(client, count: int) -> dict[str, list[float]]:
    from pytest_edgesim.docker.images import ensure_image

    timings: dict[str, list[float]] = {}
    for name in ("broker", "gateway"):
        ensure_image(name, client)  # build it now if it is not there yet
        runs = []
        for _ in range(count):
            started = time.perf_counter()
            ensure_image(name, client)
            runs.append(time.perf_counter() - started)
        timings[f"ensure_image({name!r}), cached"] = runs
    return timings


def round_trips(client, image: str, session: str, count: int) -> dict[str, list[float]]:
    from mqtt_probe import Probe, delay_s, stamped

    from pytest_edgesim.docker.broker import BrokerContainer
    from pytest_edgesim.docker.impairment import impair

    def measure(host: str, port: int) -> list[float]:
        topic = f"bench/{time.monotonic_ns()}"
        subscriber = Probe(host, port, subscribe=((topic, 0),))
        publisher = Probe(host, port)
        try:
            for warmup in range(20):
                publisher.publish(topic, stamped(warmup), qos=0)
                subscriber.receive(10)
            delays = []
            for sequence in range(count):
                publisher.publish(topic, stamped(sequence), qos=0)
                delays.append(delay_s(subscriber.receive(10)))
            return delays
        finally:
            publisher.close()
            subscriber.close()

    with BrokerContainer.start(image, client, session=session) as broker:
        direct = measure(broker.host, broker.port)
        with impair(broker, mechanism="proxy") as proxied:
            through_proxy = measure(proxied.host, proxied.port)
    return {"publish->deliver, direct": direct, "publish->deliver, via proxy (0 ms)": through_proxy}


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"{name:<42} n={len(values):<4} median {statistics.median(values) * 1e3:8.2f} ms"
        f"   min {ordered[0] * 1e3:8.2f} ms   p99 {p99 * 1e3:8.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5, help="cold starts of each kind")
    parser.add_argument("--builds", type=int, default=5, help="cached ensure_image calls")
    parser.add_argument("--messages", type=int, default=300, help="round trips of each kind")
    args = parser.parse_args()

    from pytest_edgesim.docker.cleanup import remove_session
    from pytest_edgesim.docker.engine import connect
    from pytest_edgesim.docker.images import ensure_image
    from pytest_edgesim.docker.labels import new_session_id

    client = connect()
    session = new_session_id()
    image = ensure_image("broker", client)
    print(f"engine {client.version().get('Version')}, broker image {image}, session {session}")
    try:
        results = {}
        results.update(cold_starts(client, image, session, args.starts))
        results.update(testcontainers_starts(image, session, args.starts))
        results.update(cached_builds(client, args.builds))
        results.update(round_trips(client, image, session, args.messages))
    finally:
        remove_session(client, session)
    for name, values in results.items():
        print(summary(name, values))
    fixture = statistics.median(results["BrokerContainer.start"])
    plain = statistics.median(results["docker run + connect loop"])
    print(f"cold start: BrokerContainer.start / plain docker run = {fixture / plain:.2f}x")
    if "testcontainers MosquittoContainer" in results:
        theirs = statistics.median(results["testcontainers MosquittoContainer"])
        print(f"cold start: BrokerContainer.start / testcontainers = {fixture / theirs:.2f}x")
    direct = statistics.median(results["publish->deliver, direct"])
    proxied = statistics.median(results["publish->deliver, via proxy (0 ms)"])
    print(f"proxy overhead per delivery (two traversals): {(proxied - direct) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
