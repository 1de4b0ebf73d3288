"""Benchmark: how long ``edgesim validate`` takes, and how much memory, on the big hostile cases.

    python benchmarks/bench_hostile_input.py            # every big case of the fuzz corpus
    python benchmarks/bench_hostile_input.py --case devices-100000 --repeat 3

The cases are the ones ``scripts/make_scenario_corpus.py`` makes at test time (nesting
100,000 deep, a 10,000-digit integer, an alias bomb, 100,000 devices, ...). Each is validated
in a fresh process, as a user runs it; the benchmark prints the wall time (best of
``--repeat``) and the peak resident memory of that process. The targets (issue 13): every
case ends, with its own clear error or ``ok``, within 20 s and 1 GiB.

The test suite (tests/core/scenario/test_hostile_input.py) checks what each case says and
that it stays inside 1 GiB; its time limit only guards against a hang, since a timed
assertion would fail on a loaded CI runner for no fault of the code.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 20.0
TARGET_BYTES = 2**30


def _corpus():
    spec = importlib.util.spec_from_file_location(
        "make_scenario_corpus", ROOT / "scripts" / "make_scenario_corpus.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_scenario_corpus"] = module
    spec.loader.exec_module(module)
    return module


def measure(path: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit code) of ``edgesim validate path``."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest_edgesim.cli", "validate", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not all children's
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, child.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", action="append", help="only these cases (repeatable)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    corpus = _corpus()
    cases = [c for c in corpus.big_cases() if not args.case or c.name in args.case]
    print(f"{'case':<28} {'wall s':>8} {'peak MiB':>9}  exit  within target")
    worst = 0.0
    with tempfile.TemporaryDirectory() as directory:
        for case in cases:
            (path,) = corpus.write(iter([case]), Path(directory) / case.name)
            runs = [measure(path) for _ in range(max(1, args.repeat))]
            wall = min(run[0] for run in runs)
            peak = max(run[1] for run in runs)
            code = runs[-1][2]
            ok = wall <= TARGET_S and peak <= TARGET_BYTES
            worst = max(worst, wall)
            peak_text = f"{peak / 2**20:9.0f}"
            print(f"{case.name:<28} {wall:8.2f} {peak_text}  {code:>4}  {'yes' if ok else 'NO'}")
    print(f"slowest: {worst:.2f} s (target {TARGET_S:g} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
