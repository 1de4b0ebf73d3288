"""The ``edgesim`` command: run and validate scenarios (and, with Docker, manage images)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from pytest_edgesim import __version__
from pytest_edgesim.errors import EdgesimError, ScenarioError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_PROGRESS_AFTER_S = 1.0


class UsageError(EdgesimError):
    """A command-line mistake found before any work is done (exit code 2)."""


def _output_paths(args: argparse.Namespace) -> dict[str, Path]:
    """The files a run will write, checked before it starts (a long run is not lost to a
    typo in a path): missing folders are made, a folder or an unwritable place is refused."""
    outputs = {}
    for option in ("json", "csv", "trace"):
        value = getattr(args, option)
        if not value:
            continue
        path = Path(value)
        if path.is_dir():
            raise UsageError(f"--{option} {value}: is a directory, not a file")
        existed = path.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8"):
                pass
            if not existed:
                path.unlink()  # (only a probe: nothing is written unless the run ends)
        except OSError as exc:
            raise UsageError(f"--{option} {value}: cannot write there ({exc.strerror})") from None
        outputs[option] = path
    return outputs


def _write(option: str, path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise EdgesimError(f"--{option} {path}: cannot write ({exc.strerror})") from None


def _load(path: str, overrides: list[str] | None = None):  # -> Scenario
    from pytest_edgesim.core.scenario import Scenario

    scenario = Scenario.from_yaml(path)
    if overrides:
        scenario = scenario.with_overrides(overrides)
    return scenario


class _Progress:
    """A one-line progress bar on a terminal, shown only once a run has taken a while."""

    def __init__(self, stream: TextIO, total_ticks: int, shown: bool = True):
        self.stream = stream
        self.enabled = shown and stream.isatty()
        self.total = max(total_ticks, 1)
        self.started = time.perf_counter()
        self.shown = False

    def update(self, now_ticks: int, start_ticks: int) -> None:
        if not self.enabled or time.perf_counter() - self.started < _PROGRESS_AFTER_S:
            return
        fraction = (now_ticks - start_ticks) / self.total
        filled = int(fraction * 30)
        self.stream.write(
            f"\r[{'#' * filled}{' ' * (30 - filled)}] {fraction:4.0%}  "
            f"{now_ticks / 1e6:.1f}s virtual, {time.perf_counter() - self.started:.1f}s wall"
        )
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 72 + "\r")
            self.stream.flush()


@contextlib.contextmanager
def _phases_on_stderr(quiet: bool) -> Iterator[None]:
    """While a run is built and runs, the steps of what makes it wait (an image build for a
    gateway in a container) are lines on stderr (none with ``--quiet``)."""
    from pytest_edgesim.core import progress

    def sink(line: str, is_phase: bool) -> None:
        if is_phase:
            print(f"edgesim: {line}", file=sys.stderr, flush=True)

    previous = progress.set_sink(None if quiet else sink)
    try:
        yield
    finally:
        progress.set_sink(previous)


def cmd_run(args: argparse.Namespace) -> int:
    from pytest_edgesim.core.metrics.tables import (
        acknowledgement_links,
        delivery_table,
        metrics_tables,
    )
    from pytest_edgesim.core.simulation import Simulation

    # every argument is checked before anything is written or run
    scenario = _load(args.scenario, args.set)
    if args.seed is not None:
        from pytest_edgesim.core.scenario.schema import check_seed

        check_seed(args.seed, "--seed")
    target = scenario.duration_ticks
    if args.duration is not None:
        from pytest_edgesim.core.units import parse_duration

        try:
            target = parse_duration(args.duration)
        except ValueError as exc:
            raise ScenarioError(f"--duration: {exc}") from None
    outputs = _output_paths(args)
    plot = _plot_target(args.plot) if args.plot else None
    _print_notes(args.scenario, scenario)
    trace_mode = "full" if args.trace else "digest"
    with (
        _phases_on_stderr(args.quiet),
        Simulation(scenario, seed=args.seed, trace=trace_mode) as simulation,
    ):
        progress = _Progress(sys.stderr, target, shown=not args.quiet)
        for now in simulation.run_in_steps(target, steps=200):
            progress.update(now, 0)
        progress.done()
        result = simulation.result()
    gateways = [g.name for g in scenario.spec.gateways]
    focus = [*gateways, scenario.spec.broker.name, scenario.spec.cloud.name]
    print(
        f"scenario {result.scenario} ({args.scenario}), seed {result.seed}: "
        f"{result.virtual_time_s:g}s virtual in {result.wall_time_s:.2f}s wall, "
        f"{result.events} scheduled events"
    )
    print()
    acks_only = acknowledgement_links(
        result.metrics.links,
        cloud=scenario.spec.cloud.name,
        broker=scenario.spec.broker.name,
        devices=(device.name for device in scenario.devices),
    )
    tables = metrics_tables(
        result.metrics, limit=None if args.all else 12, focus=focus, acks_only=acks_only
    )
    print(tables)
    print()
    deliveries = delivery_table(result.deliveries, limit=None if args.all else 12)
    if deliveries:
        print(deliveries)
        print()
    if "json" in outputs:
        _write("json", outputs["json"], result.to_json() + "\n")
        print(f"metrics written to {args.json}")
    if "csv" in outputs:
        _write("csv", outputs["csv"], result.metrics.to_csv())
        print(f"metrics CSV written to {args.csv}")
    if "trace" in outputs:
        try:
            count = result.write_trace(outputs["trace"])
        except OSError as exc:
            raise EdgesimError(f"--trace {args.trace}: cannot write ({exc.strerror})") from None
        print(f"trace ({count} events) written to {args.trace}")
    if plot is not None:
        for written in _write_plots(plot, result, _command_line(args)):
            print(f"charts written to {written}")
    if result.swarm_profile is not None:  # what the seed drew (docs/faults.md)
        print(f"swarm profile (seed {result.seed}): {result.swarm_profile.describe()}")
    if result.faults:  # a run with faults never reads as a clean one
        print(f"faults: {result.describe_faults()}")
    print(f"trace digest: {result.trace_digest}")
    return EXIT_OK


def _plot_target(value: str) -> Path:
    """Where ``--plot`` writes, checked before the run (and matplotlib is there): a ``.html``
    file, or a folder (made if missing) for the page and one SVG per chart."""
    from pytest_edgesim.reporting.charts import ChartsUnavailable, require_matplotlib

    try:
        require_matplotlib("--plot")
    except ChartsUnavailable as exc:
        raise UsageError(str(exc)) from None
    path = Path(value)
    try:
        if path.suffix.lower() in (".html", ".htm"):
            if path.is_dir():
                raise UsageError(f"--plot {value}: is a directory, not a file")
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            if path.exists() and not path.is_dir():
                raise UsageError(
                    f"--plot {value}: not a folder (give a folder for the page and the SVG "
                    "charts, or a file ending in .html for the page alone)"
                )
            path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--plot {value}: cannot write there ({exc.strerror})") from None
    return path


def _write_plots(target: Path, result: Any, command: str) -> list[Path]:
    """The run's page (and, for a folder, each chart as an SVG file); the paths written."""
    from pytest_edgesim.reporting.page import run_charts, run_page

    data = result.to_dict()
    if target.suffix.lower() in (".html", ".htm"):
        _write("plot", target, run_page(data, command))
        return [target]
    written = [target / "report.html"]
    _write("plot", written[0], run_page(data, command))
    for name, svg in run_charts(data).items():
        path = target / f"{name}.svg"
        _write("plot", path, '<?xml version="1.0" encoding="utf-8"?>\n' + svg)
        written.append(path)
    return written


def _command_line(args: argparse.Namespace) -> str:
    """The ``edgesim run`` command that repeats this run (for the page)."""
    import shlex

    words = ["edgesim", "run", args.scenario]
    if args.seed is not None:
        words += ["--seed", str(args.seed)]
    if args.duration is not None:
        words += ["--duration", args.duration]
    for override in args.set or ():
        words += ["--set", override]
    return shlex.join(words)


def cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.scenarios:
        try:
            scenario = _load(path, args.set)
        except ScenarioError as exc:
            failed += 1
            print(str(exc), file=sys.stderr)
            continue
        print(
            f"{path}: ok ({len(scenario.node_names)} nodes, "
            f"{scenario.duration_ticks / 1e6:g}s, seed {scenario.seed})"
        )
        _print_notes(path, scenario)
    return EXIT_FAILED if failed else EXIT_OK


def _print_notes(path: str, scenario: Any) -> None:
    for note in scenario.notes():
        print(f"{path}: note: {note}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgesim",
        description="Run IoT/edge scenarios in virtual time (the engine behind pytest-edgesim).",
    )
    parser.add_argument("--version", action="version", version=f"edgesim {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run a scenario and print its metrics and digest")
    run.add_argument("scenario", metavar="SCENARIO", help="a scenario YAML file")
    run.add_argument("--seed", type=int, help="root seed (default: the scenario's seed)")
    run.add_argument("--duration", metavar="S", help="virtual time to run, e.g. 30s or 500ms")
    run.add_argument(
        "--set",
        action="append",
        metavar="PATH=VALUE",
        help="override a field by dotted path, e.g. network.default.latency=50ms (repeatable)",
    )
    run.add_argument("--json", metavar="FILE", help="write the result and metrics as JSON")
    run.add_argument("--csv", metavar="FILE", help="write the metrics as CSV")
    run.add_argument("--trace", metavar="FILE", help="write every event as JSON Lines")
    run.add_argument(
        "--plot",
        metavar="DIR_OR_FILE",
        help="draw the run's charts (messages over time, latency per flow): a folder gets "
        "report.html and one SVG per chart, a .html file the page alone (needs the [html] "
        "extra)",
    )
    run.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress on stderr (image build steps, the progress bar of a long run)",
    )
    run.add_argument("--all", action="store_true", help="show every node, link and topic")
    run.set_defaults(handler=cmd_run)

    validate = commands.add_parser("validate", help="check scenario files without running them")
    validate.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    validate.add_argument("--set", action="append", metavar="PATH=VALUE")
    validate.set_defaults(handler=cmd_validate)

    from pytest_edgesim.cli.docker import add_docker_commands

    add_docker_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"edgesim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EdgesimError as exc:
        print(f"edgesim: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("edgesim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
