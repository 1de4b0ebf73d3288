"""Benchmark: one user-defined Python node among 1,000 built-in sensors on the native engine.

    python benchmarks/bench_python_node.py                    # 60 virtual seconds, 5 repeats
    python benchmarks/bench_python_node.py --duration 600 --repeat 3
    python benchmarks/bench_python_node.py --pure             # the pure engine's time too
    python benchmarks/bench_python_node.py --only few --repeat 1   # one run (for callgrind)

The reference model (scenarios/thousand-sensors.yaml: 1,000 sensors publishing once a second
over lossy, jittered uplinks; the project's gateway aggregating 10 readings for the cloud)
runs on the native engine, all native. Beside its gateway, a second one runs the user's
logic (``implementation: python``, scenarios/movavg_gateway.py: a moving average published
every 5 readings): a Python node the native engine calls back for each packet and timer.

* ``few``: the user's gateway subscribes to 5 sensors' topics (5 readings a second reach
  Python): what one Python node costs the run, the rest staying native. The issue's bar:
  within 2x of the all-native run.
* ``every``: it subscribes to every sensor (1,000 readings a second through Python): the
  cost of Python doing all the work of one gateway.
* ``few-native`` and ``every-native``: the same second gateway as the project's gateway,
  modelled natively (aggregating 5), to tell the callbacks' cost from the extra gateway's.

Each is timed ``--repeat`` times (wall clock and CPU time of the ``simulate()`` call, in
this process, after one untimed warm-up run); the best of each and its ratio to the
all-native run are printed, then a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "thousand-sensors.yaml"
FEW = 5
MODES = ("all-native", "few", "few-native", "every", "every-native")


def load(mode: str, sensors: int, duration_s: float) -> Any:
    """The scenario of ``mode`` (see the module)."""
    from pytest_edgesim import Scenario

    base = Scenario.from_yaml(SCENARIO).with_overrides(
        {"devices[0].count": sensors, "duration": f"{duration_s}s"}
    )
    if mode == "all-native":
        return base
    data = base.to_dict()
    width = len(str(sensors - 1))
    subscribe = (
        ["fleet/+/temperature"]
        if mode.startswith("every")
        else [f"fleet/sensor-{index:0{width}d}/temperature" for index in range(FEW)]
    )
    second: dict[str, Any] = {
        "name": "user",
        "subscribe": subscribe,
        "forward": {"topic": "cloud/user", "qos": 0},
    }
    if mode.endswith("-native"):
        second["aggregate"] = {"count": 5, "functions": ["mean", "count"]}
    else:
        second.update(
            implementation="python", logic="movavg_gateway:MovingAverage", config={"window": 5}
        )
    data["gateways"] = [*data["gateways"], second]
    return Scenario.from_dict(data, base_dir=SCENARIO.parent)


def run(mode: str, sensors: int, duration_s: float, engine: str) -> dict[str, Any]:
    from pytest_edgesim import simulate
    from pytest_edgesim.core.native import choose_engine

    os.environ["EDGESIM_ENGINE"] = engine
    scenario = load(mode, sensors, duration_s)
    chosen = choose_engine(scenario)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = simulate(scenario, trace="digest")
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    user = result.metrics.nodes.get("user")
    return {
        "mode": mode,
        "engine": chosen.engine,
        "wall_s": wall,
        "cpu_s": cpu,
        "events": result.events,
        "readings_to_python": user.delivered if user is not None and "native" not in mode else 0,
        "digest": result.trace_digest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=60.0, help="virtual seconds")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=MODES, help="run this mode only (no warm-up)")
    parser.add_argument("--pure", action="store_true", help="time the pure engine too")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run(args.only, args.sensors, args.duration, "native")))
        return
    run("all-native", args.sensors, min(args.duration, 5.0), "native")  # warm-up (imports)
    best: dict[str, dict[str, Any]] = {}
    for _ in range(args.repeat):
        for mode in MODES:  # interleaved: a noisy neighbour slows every mode alike
            measured = run(mode, args.sensors, args.duration, "native")
            assert measured["engine"] == "native", measured
            kept = best.get(mode)
            if kept is None or measured["cpu_s"] < kept["cpu_s"]:
                best[mode] = measured
    if args.pure:
        for mode in ("few", "every"):
            best[f"{mode} (pure)"] = run(mode, args.sensors, args.duration, "pure")
    base = best["all-native"]
    print(
        f"{args.sensors} sensors, {args.duration:g} virtual s, best of {args.repeat} "
        "(CPU time of simulate())"
    )
    for mode, measured in best.items():
        print(
            f"  {mode:<14} {measured['cpu_s']:8.3f} s CPU {measured['wall_s']:8.3f} s wall  "
            f"x{measured['cpu_s'] / base['cpu_s']:.2f} of all-native  "
            f"({measured['events']} events, {measured['readings_to_python']} readings to Python)"
        )
    print(json.dumps(best))


if __name__ == "__main__":
    main()
