"""The pytest plugin (the ``pytest11`` entry point ``edgesim``): options, markers, hooks.

The whole user surface is here and in :mod:`.fixtures` and :mod:`.docker_fixtures`;
settings resolve in :mod:`.settings`, marker checks and tiers live in :mod:`.markers`, the
session record in :mod:`.session_report`. Importing this module loads none of the simulator
and nothing of Docker: the hooks import what they need when they run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from pytest_edgesim.pytest_plugin import (
    artifacts,
    baselines,
    html_report,
    markers,
    progress,
    replay,
    settings,
    signals,
    swarm_report,
    trials,
)
from pytest_edgesim.pytest_plugin.configuration_errors import (
    CONFIGURATION_ERROR,
    configuration_error,
    configuration_error_text,
    is_configuration_error,
    usage_error,
)
from pytest_edgesim.pytest_plugin.docker_fixtures import (
    _edgesim_brokers,
    _edgesim_mqtt_test,
    container_log_sections,
    docker_gateway,
    edgesim_broker,
    mqtt_broker,
    mqtt_broker_parameters,
)
from pytest_edgesim.pytest_plugin.fixtures import (
    edge_coordinator,
    edge_scenario,
    edgesim_gateway,
    edgesim_report,
    edgesim_seed,
    latency_network,
)
from pytest_edgesim.pytest_plugin.items import item_record, scenario_loaded
from pytest_edgesim.pytest_plugin.session_report import (
    CRASH_ATTRIBUTE,
    TIER_PROPERTY,
    SessionReport,
    session_report_key,
)

__all__ = [
    "_edgesim_brokers",
    "_edgesim_mqtt_test",
    "docker_gateway",
    "edge_coordinator",
    "edge_scenario",
    "edgesim_broker",
    "edgesim_gateway",
    "edgesim_report",
    "edgesim_seed",
    "latency_network",
    "mqtt_broker",
]

_tier_key = pytest.StashKey[str]()
_restore_signals_key = pytest.StashKey[Callable[[], None]]()
_worker_died_key = pytest.StashKey[bool]()
_keep_before_key = pytest.StashKey[bool]()
_kept_key = pytest.StashKey[list[tuple[str, str]]]()
_engine_before_key = pytest.StashKey["str | None"]()
_DOCKER_TIER = "Docker tier: "
_KEPT_OUTPUT = "edgesim_kept"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgesim", "edgesim: edge and IoT scenarios in virtual time")

    def add(option: str, ini: str, help: str, ini_type: str = "string", **kwargs: Any) -> None:
        group.addoption(option, dest=ini, help=help, **kwargs)
        parser.addini(ini, help=f"{help} (same as {option})", type=ini_type)  # type: ignore[arg-type]

    add(
        "--edgesim-seed",
        "edgesim_seed",
        "run every scenario with this seed (an integer, or 'random' to draw one and show it "
        "in the header); default: each scenario's own seed",
        metavar="N|random",
    )
    add(
        "--edgesim-tier",
        "edgesim_tier",
        "run only edgesim tests of this tier (default: all); other tests are not affected",
        choices=settings.TIERS,
    )
    add(
        "--edgesim-trials",
        "edgesim_trials",
        f"trials of every statistical test, overriding the markers (default: the marker's "
        f"trials=, else {settings.DEFAULT_TRIALS})",
        metavar="N",
    )
    add(
        "--edgesim-report",
        "edgesim_report",
        "write a JSON report of every scenario run to PATH",
        metavar="PATH",
    )
    add(
        "--edgesim-html",
        "edgesim_html",
        "write a self-contained HTML report with charts to PATH (verdicts, pass rate, "
        "latency, messages over time; needs the [html] extra)",
        metavar="PATH",
    )
    add(
        "--edgesim-scenario-dir",
        "edgesim_scenario_dir",
        "look up edgesim(scenario=...) paths here when they are not beside the test file",
        metavar="DIR",
    )
    add(
        "--edgesim-summary",
        "edgesim_summary",
        "show the edgesim summary at the end of the run (shown with -v anyway)",
        ini_type="bool",
        action="store_true",
        default=None,
    )
    add(
        "--edgesim-undecided",
        "edgesim_undecided",
        "whether an undecided sequential statistical test fails: fail, pass, or auto "
        "(fail when the CI environment variable is set; the default)",
        choices=settings.UNDECIDED_MODES,
    )
    group.addoption(
        "--edgesim-trial-seed",
        dest=settings.TRIAL_SEED_OPTION_DEST,
        metavar="SEED",
        help="replay one statistical trial: run each selected statistical test once, with "
        "this trial seed (a failing statistical test prints the command)",
    )
    group.addoption(
        "--edgesim-on-real",
        dest=settings.ON_REAL_OPTION_DEST,
        metavar="N",
        help="run each selected deterministic edge_scenario test on real components "
        "(Mosquitto, the gateways' containers) for N trials with the seed in force, after one "
        "run of its models, and say whether the real system fails the same way (a failing "
        "deterministic test prints the command)",
    )
    add(
        "--edgesim-artifacts",
        "edgesim_artifacts",
        "write each failing test's counterexample here: the scenario (and seed) of the failing "
        "run, a Hypothesis example's or a failing trial's, as a file edgesim run accepts",
        metavar="DIR",
    )
    group.addoption(
        "--edgesim-save",
        dest="edgesim_save",
        metavar="NAME",
        help="save this session's metrics as baseline NAME (NAME.json in the baseline "
        "directory): per test its pass rate, trials, and per flow delivery ratio and latency",
    )
    group.addoption(
        "--edgesim-compare",
        dest="edgesim_compare",
        metavar="NAME",
        help="compare this session's metrics with baseline NAME and show the comparison",
    )
    group.addoption(
        "--edgesim-compare-fail",
        dest="edgesim_compare_fail",
        metavar="METRIC:AMOUNT[%]",
        action="append",
        help="with --edgesim-compare: fail the session when METRIC (pass_rate, delivery_ratio, "
        "p50_ms, p95_ms, p99_ms) of a test is worse than the baseline by more than AMOUNT "
        "(or AMOUNT percent); repeatable",
    )
    add(
        "--edgesim-baseline-dir",
        "edgesim_baseline_dir",
        f"where baselines are saved (default: {settings.DEFAULT_BASELINE_DIR} under the rootdir)",
        metavar="DIR",
    )
    add(
        "--edgesim-engine",
        "edgesim_engine",
        "the engine of virtual-time runs: auto (the native engine where it is built and covers "
        "the scenario, else the pure one; the default), pure, or native (a scenario it cannot "
        "run is an error); wins over $EDGESIM_ENGINE",
        metavar="ENGINE",
    )
    add(
        "--edgesim-docker",
        "edgesim_docker",
        _DOCKER_TIER + "auto (skip Docker items when no engine is available; the default), "
        "require (fail them instead), off (skip them)",
        choices=settings.DOCKER_MODES,
    )
    add(
        "--edgesim-broker",
        "edgesim_broker",
        _DOCKER_TIER + "the MQTT broker of live runs and mqtt_broker: docker (a Mosquitto "
        "container; the default when the engine answers), process (a local mosquitto; the "
        "default otherwise) or external=HOST:PORT",
        metavar="BROKER",
    )
    add(
        "--edgesim-time-scale",
        "edgesim_time_scale",
        _DOCKER_TIER + "run live (wall-clock) scenarios this many times faster than real time "
        "(default 1; the marker's edgesim(time_scale=N) wins)",
        metavar="N",
    )
    add(
        "--edgesim-keep-containers",
        "edgesim_keep_containers",
        _DOCKER_TIER + "leave containers running after the session, for debugging; the run "
        "ends with a list of them and how to remove them, and no later session reaps them",
        ini_type="bool",
        action="store_true",
        default=None,
    )


class XdistHooks:
    """Registered only when pytest-xdist is active: hands the session seed to each worker,
    collects what each worker kept (``--edgesim-keep-containers``) for the summary, and
    makes the test a dead worker was running a failure that says why."""

    def __init__(self) -> None:
        self.down: dict[str, str] = {}
        self.started: dict[str, float] = {}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.started[nodeid] = time.perf_counter()

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput.update(settings.worker_input(node.config))

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        kept = getattr(node, "workeroutput", {}).get(_KEPT_OUTPUT, [])
        node.config.stash.setdefault(_kept_key, []).extend(
            (str(kind), str(name)) for kind, name in kept
        )
        if error:  # a worker that died (SIGKILL, a crash) could not remove its containers
            node.config.stash[_worker_died_key] = True
            self.down[str(node.gateway.id)] = str(error)

    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport) -> None:
        """The test was running when its worker died: it failed (``when`` is ``call``, not
        xdist's ``???``, so JUnit says failure, not a setup error), and says how it died."""
        worker = str(report.node.gateway.id)  # type: ignore[attr-defined]
        how = self.down.get(worker, "")
        report.longrepr = (
            f"worker {worker} died while running {crashitem}"
            + (f" ({how})" if how else "")
            + "; the process ended without reporting (killed by a signal such as SIGKILL, "
            "out of memory, or a crash of the interpreter)"
        )
        report.when = "call"
        if crashitem in self.started:  # (JUnit's time: how long it ran before it died)
            report.duration = time.perf_counter() - self.started[crashitem]
        setattr(report, CRASH_ATTRIBUTE, True)


#: pytest sessions running in this process now: more than one means a run inside a run
#: (pytester in-process), which shares the outer run's edgesim session id
_configured_sessions = 0


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    global _configured_sessions
    _configured_sessions += 1
    # `--hypothesis-profile=edgesim-ci` must find the profile registered before Hypothesis's
    # own pytest_configure loads it.
    if str(config.getoption("hypothesis_profile", None) or "").startswith("edgesim-"):
        from pytest_edgesim.strategies import register_profiles

        register_profiles()
    markers.register(config)
    settings.validate(config)
    if not _is_worker(config):
        baselines.validate(config)
    progress.configure(config)
    if _configured_sessions == 1:  # (a run inside a run leaves them to the outer one)
        config.stash[_restore_signals_key] = signals.interrupt_on_termination()
    if settings.keep_containers(config):
        from pytest_edgesim.docker import session as docker_session

        config.stash[_keep_before_key] = docker_session.set_keep(True)
    _set_engine(config)
    report = config.stash[session_report_key] = SessionReport(settings.session_seed(config))
    if not _is_worker(config):
        config.pluginmanager.register(report, "edgesim-report")
        html_report.configure(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(), "edgesim-xdist")


def _set_engine(config: pytest.Config) -> None:
    """``--edgesim-engine`` or the ini key, for the session: in ``$EDGESIM_ENGINE``, which the
    core reads (restored at the end of the session)."""
    from pytest_edgesim.core.native import ENGINE_ENV

    engine = settings.engine_setting(config)
    if engine is not None and os.environ.get(ENGINE_ENV) != engine:
        config.stash[_engine_before_key] = os.environ.get(ENGINE_ENV)
        os.environ[ENGINE_ENV] = engine


def _restore_engine(config: pytest.Config) -> None:
    from pytest_edgesim.core.native import ENGINE_ENV

    if _engine_before_key in config.stash:
        before = config.stash[_engine_before_key]
        if before is None:
            os.environ.pop(ENGINE_ENV, None)
        else:
            os.environ[ENGINE_ENV] = before


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_report_header(config: pytest.Config) -> str:
    from pytest_edgesim.core.native import engine_summary

    seed = settings.session_seed(config)
    return (
        f"edgesim: seed {'per-scenario' if seed is None else seed}, "
        f"tier {settings.resolve_tier(config)}, docker {settings.docker_mode(config)}, "
        f"engine {engine_summary()}"
    )


# --- collection -----------------------------------------------------------------------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Check the edgesim markers (a problem is a collection error); parametrise gateways
    and brokers."""
    definition = metafunc.definition
    problems = markers.marker_problems(definition, metafunc.fixturenames)
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        pytest.fail(f"{definition.nodeid}: invalid edgesim markers:\n{lines}", pytrace=False)
    gateways = markers.gateway_parameters(definition)
    if gateways:
        metafunc.parametrize("edgesim_gateway", gateways, ids=gateways, indirect=True)
    brokers = markers.broker_parameters(definition)
    on_mqtt_broker = brokers
    if "mqtt_broker" in metafunc.fixturenames:
        on_mqtt_broker = mqtt_broker_parameters(definition, brokers)
    if on_mqtt_broker:
        _parametrise_brokers(metafunc, brokers, on_mqtt_broker)


def _parametrise_brokers(
    metafunc: pytest.Metafunc,
    brokers: list[tuple[str, dict[str, str]]] | None,
    on_mqtt_broker: list[tuple[str, dict[str, str]]],
) -> None:
    """``edgesim_broker`` takes each ``broker=`` entry (laid over the scenario by
    ``edge_scenario``), ``mqtt_broker`` the entry laid over the scenario's broker."""
    columns = {"mqtt_broker": [entry for _, entry in on_mqtt_broker]}
    if brokers is not None and "edgesim_broker" in metafunc.fixturenames:
        columns["edgesim_broker"] = [entry for _, entry in brokers]
    columns = {name: values for name, values in columns.items() if name in metafunc.fixturenames}
    names = list(columns)
    rows = list(zip(*columns.values(), strict=True))
    values = [row[0] if len(names) == 1 else row for row in rows]
    ids = [test_id for test_id, _ in on_mqtt_broker]
    metafunc.parametrize(",".join(names), values, ids=ids, indirect=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each edgesim test its tier, then deselect the tiers ``--edgesim-tier`` excludes.

    Runs before ``-m`` is applied, so ``-m deterministic`` also selects unmarked edgesim tests.
    """
    wanted = settings.resolve_tier(config)
    on_real = settings.on_real_trials(config)
    kept, deselected = [], []
    for item in items:
        tier = markers.item_tier(item, getattr(item, "fixturenames", ()))
        if on_real is not None and tier == "deterministic":
            tier = trials.on_real_tier(item)
        if tier is not None:
            item.stash[_tier_key] = tier
            item.user_properties.append((TIER_PROPERTY, tier))
            if tier == "deterministic" and item.get_closest_marker("deterministic") is None:
                item.add_marker(pytest.mark.deterministic)
        if tier is not None and wanted != "all" and tier != wanted:
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


# --- running --------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """A statistical test runs as trials (:func:`.trials.run_protocol`)."""
    if item.stash.get(_tier_key, None) != "statistical":
        return None
    return trials.run_protocol(item, nextitem)


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """A test body stopped by a configuration or usage error is an error, not a failure; a
    statistical test whose verdict is *undecided* (and does not fail) is shown as such."""
    if report.when == "call" and report.failed and is_configuration_error(report):
        return "error", "E", "ERROR"
    return trials.report_status(report)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """After a passing body, ``deterministic(replay_check=True)`` replays each scenario run
    and compares traces."""
    record = item_record(item)
    _falsifying_scenarios()  # (forget those of an earlier test)
    result = yield
    if markers.replay_check_requested(item) and not trials.on_real_components(item):
        for edge in list(record.live):
            mismatch = edge.replay_mismatch()
            if mismatch is not None:
                pytest.fail(f"{item.nodeid}: {mismatch}", pytrace=False)
    if trials.current_trial(item) is None:  # (a statistical test judges them over its trials)
        problems = swarm_report.live_problems(record.live)
        if problems:
            pytest.fail(f"{item.nodeid}: " + "; ".join(problems), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing edgesim test's report gets an "edgesim" section: seeds, scenario, replay.

    A configuration error (:func:`configuration_error`) is reported as its message alone:
    no traceback through edgesim, no seeds (another seed would not change it). A usage
    error (:func:`usage_error`) keeps its traceback; both make the test an ERROR.
    """
    report = yield
    excinfo = call.excinfo
    if report.failed and excinfo is not None and configuration_error(excinfo.value):
        report.longrepr = configuration_error_text(item.nodeid, excinfo.value)
        setattr(report, CONFIGURATION_ERROR, True)
        return report
    if (
        report.failed
        and excinfo is not None
        and usage_error(excinfo.value, edgesim_test=_tier_key in item.stash)
    ):
        setattr(report, CONFIGURATION_ERROR, True)  # an ERROR, with its traceback
        if isinstance(item, pytest.Function):
            report.longrepr = _usage_error_repr(item, excinfo)
        return report
    if report.failed and report.when == "call":
        trial = trials.current_trial(item)
        where = "the failing run" if trial is None else trial.describe(trials.trial_budget(item))
        artifacts.save_counterexamples(item, call, where)
    if report.failed and _tier_key in item.stash:
        report.sections.append(("edgesim", _failure_section(item)))
    if report.failed:
        report.sections.extend(container_log_sections(item))
    if report.when == "call" and (report.failed or hasattr(report, "wasxfail")):
        report.sections.extend(_falsifying_sections())
    return report


def _usage_error_repr(item: pytest.Function, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
    """A usage error's traceback down to the test's own line that made the call: the frames
    inside edgesim that checked it say no more than the message."""
    import pytest_edgesim

    package = Path(pytest_edgesim.__file__).parent
    frames: list[TracebackType] = []
    raw: TracebackType | None = excinfo.tb
    while raw is not None:
        frames.append(raw)
        raw = raw.tb_next
    own = [
        index
        for index, frame in enumerate(frames)
        if package not in Path(frame.tb_frame.f_code.co_filename).parents
    ]
    if not own or own[-1] == len(frames) - 1:
        return item.repr_failure(excinfo)
    shortened: TracebackType | None = (
        None  # a new chain that ends at the test's frame (the exception is unchanged)
    )
    for frame in reversed(frames[: own[-1] + 1]):
        shortened = TracebackType(shortened, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    assert shortened is not None
    return item.repr_failure(
        pytest.ExceptionInfo.from_exc_info((excinfo.type, excinfo.value, shortened))
    )


def _falsifying_scenarios() -> list[Any]:
    """The scenarios of the falsifying example the running test's Hypothesis found (when
    ``pytest_edgesim.strategies`` is in use)."""
    strategies = sys.modules.get("pytest_edgesim.strategies")
    return [] if strategies is None else strategies.falsifying_scenarios()


def _falsifying_sections() -> list[tuple[str, str]]:
    """Each scenario of the falsifying example as a YAML file that ``edgesim run`` takes
    as it is (a report section: no ``E`` prefix to strip)."""
    return [
        (
            f"edgesim: falsifying scenario {scenario.name!r} (YAML: save it and run "
            "edgesim run FILE)",
            scenario.to_yaml(),
        )
        for scenario in _falsifying_scenarios()
    ]


def _failure_section(item: pytest.Item) -> str:
    if item.stash[_tier_key] == "statistical":
        lines = list(trials.failure_lines(item))
        if lines:
            return "\n".join(lines)
    record = item_record(item)
    seeds = list(dict.fromkeys(record.seeds))
    if seeds:
        shown = ", ".join(map(str, seeds[:10]))
        if len(seeds) > 10:
            shown += f", ... ({len(seeds)} in all)"
        lines = [f"seed{'s' if len(seeds) > 1 else ''}: {shown}"]
    else:
        session_seed = settings.session_seed(item.config)
        lines = [f"seed: {'per-scenario' if session_seed is None else session_seed}"]
    lines += [f"scenario: {scenario}" for scenario in dict.fromkeys(record.scenarios)]
    lines += swarm_report.profile_lines(record.live)
    replayable = scenario_loaded(item)
    if len(seeds) == 1 and item.stash[_tier_key] == "deterministic" and replayable:
        seed_option = f"--edgesim-seed={seeds[0]}"
        lines.append(f"replay: {replay.replay_command(item, seed_option)}")
        if "edge_scenario" in getattr(item, "fixturenames", ()):
            on_real = f"--edgesim-on-real={trials.ON_REAL_SUGGESTED_TRIALS}"
            lines.append(
                f"on real components: {replay.replay_command(item, seed_option, on_real)} "
                "(the same scenario and seed on Mosquitto and the gateways' containers; says "
                "whether they fail the same way)"
            )
    lines += [f"counterexample: {path} (edgesim run it)" for path in artifacts.written(item)]
    return "\n".join(lines)


# --- the end of the session -------------------------------------------------------------------
def _kept_here(config: pytest.Config) -> list[tuple[str, str]]:
    """``(kind, name)`` of what this process kept, asked of the engine (if it made anything)."""
    if not settings.keep_containers(config) or not _docker_used():
        return []
    from pytest_edgesim.docker import session as docker_session

    try:
        return docker_session.kept_by_this_process()
    except Exception as error:  # the engine went away: nothing to list
        sys.stderr.write(f"edgesim: cannot list the kept containers: {error}\n")
        return []


def _docker_used() -> bool:
    """Whether this process labelled anything (checked without loading the Docker tier)."""
    if "pytest_edgesim.docker.labels" not in sys.modules:
        return False  # nothing of the Docker tier was loaded, so nothing was labelled
    from pytest_edgesim.docker import session as docker_session

    return docker_session.labelled_anything()


def _write_kept(terminalreporter: Any, config: pytest.Config) -> None:
    """The kept containers and networks, and the command that removes them."""
    kept = [*config.stash.get(_kept_key, []), *_kept_here(config)]
    if not kept:
        return
    containers = [name for kind, name in kept if kind == "container"]
    networks = [name for kind, name in kept if kind == "network"]
    terminalreporter.write_sep("=", "edgesim: kept containers")
    terminalreporter.write_line(
        "--edgesim-keep-containers: left running; no later session reaps them:"
    )
    for kind, name in kept:
        terminalreporter.write_line(f"  {kind} {name}")
    commands = [f"docker rm -f {' '.join(containers)}"] if containers else []
    commands += [f"docker network rm {' '.join(networks)}"] if networks else []
    terminalreporter.write_line(f"remove them: {' && '.join(commands)}")
    terminalreporter.write_line(
        "  (or `edgesim cleanup`, which removes what every finished session left, kept or not)"
    )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _is_worker(config):
        return
    _write_kept(terminalreporter, config)
    report = config.stash[session_report_key]
    _write_baselines(terminalreporter, config, report)
    if not settings.summary_requested(config):
        return
    lines = report.summary_lines()
    lines += list(trials.summary_lines(terminalreporter))
    lines += swarm_report.summary_lines(terminalreporter)
    terminalreporter.write_sep("=", "edgesim")
    for line in lines:
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove every container, network and volume this process labelled (each xdist worker
    is its own session), however the run ended; fixtures normally got there first. A run
    inside another run in this process leaves them to the outer one, which owns them too."""
    global _configured_sessions
    _configured_sessions -= 1
    progress.unconfigure(config)
    if _restore_signals_key in config.stash:
        config.stash[_restore_signals_key]()
    if _keep_before_key in config.stash:
        from pytest_edgesim.docker import session as docker_session

        docker_session.set_keep(config.stash[_keep_before_key])
    _restore_engine(config)
    if _configured_sessions > 0:
        return
    if config.stash.get(_worker_died_key, False) and settings.docker_mode(config) != "off":
        _reap_dead_workers()
    if not _docker_used():
        return
    from pytest_edgesim.docker import session as docker_session

    if settings.keep_containers(config):
        docker_session.end_lease()  # what was kept is never reaped; the lease can go
        return
    try:
        docker_session.remove_this_session()
    except Exception as error:  # the engine went away: the next session reaps
        sys.stderr.write(f"edgesim: could not remove this session's containers: {error}\n")


def _reap_dead_workers() -> None:
    """Remove what dead xdist workers of this session left (their process is gone), by
    the end of the session rather than at the start of the next."""
    from pytest_edgesim.docker import session as docker_session

    try:
        docker_session.reap_dead_sessions()
    except Exception as error:  # the engine went away: the next session reaps
        sys.stderr.write(f"edgesim: could not remove what dead workers left: {error}\n")


def _write_baselines(terminalreporter: Any, config: pytest.Config, report: SessionReport) -> None:
    """The comparison with ``--edgesim-compare``'s baseline, and where the saved one went."""
    if report.comparison is not None:
        regressions = report.comparison["regressions"]
        title = "edgesim: baseline comparison"
        if regressions:
            title += f" ({regressions} regression{'s' if regressions > 1 else ''})"
        terminalreporter.write_sep("=", title, red=bool(regressions))
        every_row = int(config.getoption("verbose", default=0) or 0) > 0
        for line in baselines.comparison_lines(report.comparison, every_row):
            terminalreporter.write_line(line)
    saved = baselines.save_name(config)
    if saved is not None:
        path = baselines.baseline_path(config, saved)
        terminalreporter.write_line(f"edgesim: saved baseline {saved} to {path}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if _is_worker(config) and settings.keep_containers(config):
        config.workeroutput[_KEPT_OUTPUT] = _kept_here(config)  # type: ignore[attr-defined]
    if _is_worker(config):
        return
    report = config.stash[session_report_key]
    compared = baselines.compare_name(config)
    if compared is not None:
        path = baselines.baseline_path(config, compared)
        saved = baselines.load(config, compared)
        report.comparison = baselines.compare(
            report, saved, compared, path, baselines.thresholds(config)
        )
        if report.comparison["regressions"] and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    name = baselines.save_name(config)
    if name is not None:
        baselines.save(report, baselines.baseline_path(config, name), name)
    report_path = settings.report_path(config)
    if report_path is not None:
        report.write(report_path)
