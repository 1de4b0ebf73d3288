"""Benchmark: what a schedule of 1,000 faults adds to the 1,000-sensor run.

    python benchmarks/bench_faults.py                    # 1,000 sensors, 600 s, 1,000 faults
    python benchmarks/bench_faults.py --faults 5000 --repeat 3

The run is bench_core's (scenarios/thousand-sensors.yaml, trace digest on). The schedule
spreads its faults over the run, one sensor each, in turn: a one-way partition of the
sensor's uplink for 1 s, a link change (200 ms, 10 % loss) for 5 s, an isolation for 2 s,
a clock drift of 100 ppm, a partition triggered 1 s after the sensor's uplink dropped its
first packet. Prints the wall time of the run without and with the schedule (the best of
``--repeat``) and the overhead in percent; the target is under 10 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "thousand-sensors.yaml"


def schedule(count: int, sensors: list[str], duration_s: float) -> list[dict]:
    faults: list[dict] = []
    for index in range(count):
        sensor = sensors[index % len(sensors)]
        at = f"{duration_s * index / count:.3f}s"
        shape = index % 5
        if shape == 0:
            fault = {"kind": "partition", "between": [sensor, "broker"], "one_way": True}
            faults.append({**fault, "at": at, "duration": "1s"})
        elif shape == 1:
            fault = {"kind": "link_change", "between": [sensor, "broker"], "latency": "200ms"}
            faults.append({**fault, "loss": 0.1, "at": at, "duration": "5s"})
        elif shape == 2:
            faults.append({"kind": "isolate", "target": sensor, "at": at, "duration": "2s"})
        elif shape == 3:
            faults.append({"kind": "clock_skew", "target": sensor, "at": at, "drift_ppm": 100})
        else:
            trigger = {"dropped": f"{sensor}->broker", "delay": "1s"}
            fault = {"kind": "partition", "between": [sensor, "broker"], "when": trigger}
            faults.append({**fault, "duration": "1s"})
    return faults


def timed(scenario) -> tuple[float, int]:
    from pytest_edgesim import simulate

    started = time.perf_counter()
    result = simulate(scenario)
    return time.perf_counter() - started, len(result.faults)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=600.0, help="virtual seconds")
    parser.add_argument("--faults", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from pytest_edgesim import Scenario

    plain = Scenario.from_yaml(SCENARIO).with_overrides(
        {"devices[0].count": args.sensors, "duration": f"{args.duration}s"}
    )
    faulted = plain.with_overrides(
        {"faults": schedule(args.faults, [d.name for d in plain.devices], args.duration)}
    )
    plain_runs, runs = [], []
    for _ in range(args.repeat):  # alternated, so that a busy moment of the machine hits both
        plain_runs.append(timed(plain)[0])
        runs.append(timed(faulted))
    without = min(plain_runs)
    with_faults = min(seconds for seconds, _ in runs)
    applied = runs[0][1]
    print(f"{args.sensors} sensors, {args.duration:g} s virtual, best of {args.repeat}")
    print(f"  without faults:   {without:.2f} s")
    print(f"  with {args.faults} faults: {with_faults:.2f} s ({applied} fault events)")
    print(f"  overhead:         {100 * (with_faults / without - 1):+.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
