"""Where every edgesim setting comes from: one function per setting, one documented order.

Each setting can be given in up to four places. Unless a function says otherwise the first
one that is set wins:

1. the marker argument on the test (``@pytest.mark.edgesim(seed=3)``, ``statistical(trials=40)``);
2. the command-line option (``--edgesim-seed=7``);
3. the ini key (``edgesim_seed = 7`` under ``[tool.pytest.ini_options]``);
4. the default.

Two settings differ on purpose: ``--edgesim-trials`` on the command line overrides every
marker (that is what it is for; the ini key ``edgesim_trials`` is only a default for markers
that do not say), and the Docker mode and the engine also read an environment variable
(``EDGESIM_DOCKER``, ``EDGESIM_ENGINE``), between the option and the ini key, so that CI can
set them without editing files.

Values are checked here, once, in :func:`validate`, which the plugin calls at start-up: a
bad value is a ``pytest.UsageError`` naming the option, the ini key or the variable.
Under pytest-xdist the controller resolves the seed (``random`` included) and hands it to
the workers through ``workerinput`` (:func:`worker_input`), so every worker uses the
controller's seed.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

TIERS = ("deterministic", "statistical", "all")
UNDECIDED_MODES = ("fail", "pass", "auto")
DOCKER_MODES = ("auto", "require", "off")
DEFAULT_TIER = "all"
DEFAULT_TRIALS = 30
DOCKER_ENV = "EDGESIM_DOCKER"
CI_ENV = "CI"
WORKERINPUT_SEED = "edgesim_seed"
TRIAL_SEED_OPTION_DEST = "edgesim_trial_seed"
ON_REAL_OPTION_DEST = "edgesim_on_real"

_session_seed_key = pytest.StashKey["int | None"]()

#: setting -> (command-line option, ini key); the option's ``dest`` is the ini key's name
SETTINGS: dict[str, tuple[str, str]] = {
    "seed": ("--edgesim-seed", "edgesim_seed"),
    "tier": ("--edgesim-tier", "edgesim_tier"),
    "trials": ("--edgesim-trials", "edgesim_trials"),
    "report": ("--edgesim-report", "edgesim_report"),
    "html": ("--edgesim-html", "edgesim_html"),
    "scenario_dir": ("--edgesim-scenario-dir", "edgesim_scenario_dir"),
    "summary": ("--edgesim-summary", "edgesim_summary"),
    "undecided": ("--edgesim-undecided", "edgesim_undecided"),
    "docker": ("--edgesim-docker", "edgesim_docker"),
    "broker": ("--edgesim-broker", "edgesim_broker"),
    "keep_containers": ("--edgesim-keep-containers", "edgesim_keep_containers"),
    "time_scale": ("--edgesim-time-scale", "edgesim_time_scale"),
    "artifacts": ("--edgesim-artifacts", "edgesim_artifacts"),
    "baseline_dir": ("--edgesim-baseline-dir", "edgesim_baseline_dir"),
    "engine": ("--edgesim-engine", "edgesim_engine"),
}


def _from_option(config: pytest.Config, setting: str) -> Any:
    return config.getoption(SETTINGS[setting][1], default=None)


def _from_ini(config: pytest.Config, setting: str) -> str | None:
    value = config.getini(SETTINGS[setting][1])
    if isinstance(value, str):
        value = value.strip()
    return value or None


def _raw(config: pytest.Config, setting: str) -> tuple[Any, str]:
    """The command-line value, else the ini value, with where it came from (for messages)."""
    option, ini = SETTINGS[setting]
    value = _from_option(config, setting)
    if value is not None:
        return value, option
    return _from_ini(config, setting), f"ini key {ini}"


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise pytest.UsageError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
    return text


def _non_negative_int(value: Any, where: str, what: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise pytest.UsageError(f"{where}: expected {what}, got {value!r}") from None
    if number < 0:
        raise pytest.UsageError(f"{where}: expected {what}, got {value!r}")
    return number


# --- seed ---------------------------------------------------------------------------------
def _seed_option(value: Any, where: str, what: str) -> int:
    """A seed given as text (an option or an ini key), checked as every seed is
    (:func:`pytest_edgesim.core.scenario.schema.check_seed`)."""
    from pytest_edgesim.core.scenario.schema import check_seed
    from pytest_edgesim.errors import ScenarioError

    seed = _non_negative_int(value, where, what)
    try:
        return check_seed(seed, where)
    except ScenarioError as error:
        raise pytest.UsageError(str(error)) from None


def _parse_seed(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if str(value).strip().lower() == "random":
        return random.Random().getrandbits(32)
    return _seed_option(value, where, "a seed (an integer >= 0) or 'random'")


def session_seed(config: pytest.Config) -> int | None:
    """The seed given for the whole session (``--edgesim-seed`` or ``edgesim_seed``), or None.

    ``random`` is drawn once, on the controller; xdist workers receive the controller's value
    through ``workerinput``. None means "no override": each scenario runs with its own seed.
    """
    if _session_seed_key not in config.stash:
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and WORKERINPUT_SEED in workerinput:
            seed = workerinput[WORKERINPUT_SEED]
        else:
            seed = _parse_seed(*_raw(config, "seed"))
        config.stash[_session_seed_key] = seed
    return config.stash[_session_seed_key]


def seed_was_random(config: pytest.Config) -> bool:
    """True when the session seed was drawn because the user asked for ``random``."""
    value, _ = _raw(config, "seed")
    return value is not None and str(value).strip().lower() == "random"


def resolve_seed(config: pytest.Config, scenario_seed: int, marker_seed: int | None = None) -> int:
    """The seed a scenario runs with: the marker's ``seed=``, else the session seed, else
    the scenario's own ``seed``.

    A statistical trial runs with its trial seed instead (the fixture asks the trials module
    first); this function gives the base every other run uses.
    """
    if marker_seed is not None:
        return int(marker_seed)
    seed = session_seed(config)
    return int(scenario_seed) if seed is None else seed


def worker_input(config: pytest.Config) -> dict[str, Any]:
    """What the xdist controller sends each worker (merged into ``node.workerinput``)."""
    return {WORKERINPUT_SEED: session_seed(config)}


# --- selection and trials -------------------------------------------------------------------
def resolve_tier(config: pytest.Config) -> str:
    """Which tiers run: ``deterministic``, ``statistical`` or ``all`` (the default)."""
    value, where = _raw(config, "tier")
    return DEFAULT_TIER if value is None else _choice(value, where, TIERS)


def resolve_trials(
    config: pytest.Config, marker_trials: int | None, default: int = DEFAULT_TRIALS
) -> int:
    """Trials of a statistical test: ``--edgesim-trials`` (overrides every marker), else the
    marker's ``trials=``, else the ini key ``edgesim_trials``, else ``default``."""
    option = _from_option(config, "trials")
    if option is not None:
        return _trial_count(option, SETTINGS["trials"][0])
    if marker_trials is not None:
        return int(marker_trials)
    ini = _from_ini(config, "trials")
    if ini is not None:
        return _trial_count(ini, f"ini key {SETTINGS['trials'][1]}")
    return default


def _trial_count(value: Any, where: str) -> int:
    count = _non_negative_int(value, where, "a number of trials (an integer >= 1)")
    if count < 1:
        raise pytest.UsageError(f"{where}: expected a number of trials >= 1, got {value!r}")
    return count


def undecided_mode(config: pytest.Config) -> str:
    """What an undecided sequential verdict does: ``fail``, ``pass`` or ``auto`` (default)."""
    value, where = _raw(config, "undecided")
    return "auto" if value is None else _choice(value, where, UNDECIDED_MODES)


def undecided_fails(config: pytest.Config) -> bool:
    """Whether an undecided verdict fails the test; ``auto`` fails when ``$CI`` is set."""
    mode = undecided_mode(config)
    if mode == "auto":
        return os.environ.get(CI_ENV, "").strip().lower() not in ("", "0", "false", "no")
    return mode == "fail"


def replay_trial_seed(config: pytest.Config) -> int | None:
    """``--edgesim-trial-seed``: run each statistical test as one trial with this seed
    (the replay command a failing statistical test prints). Command line only."""
    value = config.getoption(TRIAL_SEED_OPTION_DEST, default=None)
    if value is None:
        return None
    return _seed_option(value, "--edgesim-trial-seed", "a trial seed (an integer >= 0)")


def on_real_trials(config: pytest.Config) -> int | None:
    """``--edgesim-on-real N``: run each selected deterministic ``edge_scenario`` test on real
    components (a Mosquitto broker, the gateways' containers) for N trials with the seed in
    force, after one run of its models for reference. Command line only."""
    value = config.getoption(ON_REAL_OPTION_DEST, default=None)
    if value is None:
        return None
    return _trial_count(value, "--edgesim-on-real")


# --- files and output -----------------------------------------------------------------------
def _path(config: pytest.Config, setting: str) -> Path | None:
    """A path option: relative to the invocation directory on the command line, relative to
    the ini file's directory in the ini file."""
    option = _from_option(config, setting)
    if option is not None:
        return (config.invocation_params.dir / Path(option)).resolve()
    ini = _from_ini(config, setting)
    if ini is None:
        return None
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return (base / Path(ini)).resolve()


def scenario_dir(config: pytest.Config) -> Path | None:
    """Where ``@pytest.mark.edgesim(scenario=...)`` paths are looked up after the test's folder."""
    return _path(config, "scenario_dir")


def report_path(config: pytest.Config) -> Path | None:
    """Where the JSON report goes (``--edgesim-report``), or None for no report."""
    return _path(config, "report")


def artifacts_dir(config: pytest.Config) -> Path | None:
    """Where failing tests' counterexamples go (``--edgesim-artifacts``), or None."""
    return _path(config, "artifacts")


DEFAULT_BASELINE_DIR = ".edgesim/baselines"


def baseline_dir(config: pytest.Config) -> Path:
    """Where ``--edgesim-save`` writes and ``--edgesim-compare`` reads baselines: the option
    or the ini key ``edgesim_baseline_dir``, else ``.edgesim/baselines`` under the rootdir."""
    return _path(config, "baseline_dir") or (config.rootpath / DEFAULT_BASELINE_DIR).resolve()


def html_path(config: pytest.Config) -> Path | None:
    """Where the HTML report goes (``--edgesim-html``), or None for no page."""
    return _path(config, "html")


def _flag(config: pytest.Config, setting: str) -> bool:
    """A yes/no setting: the command-line flag, else the ini key (true/false, yes/no, 1/0)."""
    if _from_option(config, setting):
        return True
    ini = SETTINGS[setting][1]
    try:
        return bool(config.getini(ini))
    except ValueError as exc:  # (pytest 8 reads the value here; pytest 9 at start-up)
        expected = "expected true/false, yes/no or 1/0"
        raise pytest.UsageError(f"ini key {ini}: {exc} ({expected})") from None


def summary_requested(config: pytest.Config) -> bool:
    """Whether the terminal summary is shown: ``-v``, ``--edgesim-summary`` or the ini key."""
    if _flag(config, "summary"):
        return True
    return int(config.getoption("verbose", default=0) or 0) > 0


def _option_variable_ini(
    config: pytest.Config, setting: str, variable: str, choices: tuple[str, ...]
) -> str | None:
    """One of ``choices`` from the option, else the environment variable, else the ini key
    (None when none says)."""
    option = _from_option(config, setting)
    if option is not None:
        return _choice(option, SETTINGS[setting][0], choices)
    environment = os.environ.get(variable, "").strip()
    if environment:
        return _choice(environment, f"environment variable {variable}", choices)
    ini = _from_ini(config, setting)
    if ini is not None:
        return _choice(ini, f"ini key {SETTINGS[setting][1]}", choices)
    return None


# --- the engine ------------------------------------------------------------------------------
def engine_setting(config: pytest.Config) -> str | None:
    """The engine virtual-time runs use: ``auto``, ``pure`` or ``native`` (docs/engine.md), or
    None when nothing says (the core's default, ``auto``).

    Order: ``--edgesim-engine``, then ``$EDGESIM_ENGINE``, then the ini key. The core reads
    the variable (``core.native.requested_engine``): the plugin sets it for the session
    from the option or the ini key, so that xdist workers and the processes tests start
    run the same engine.
    """
    from pytest_edgesim.core.native import ENGINE_ENV, ENGINES

    return _option_variable_ini(config, "engine", ENGINE_ENV, ENGINES)


# --- the Docker tier -------------------------------------------------------------------------
def docker_mode(config: pytest.Config) -> str:
    """``auto`` (skip Docker items when no engine), ``require`` (fail them) or ``off`` (skip).

    Order: ``--edgesim-docker``, then ``$EDGESIM_DOCKER``, then the ini key, then ``auto``.
    """
    return _option_variable_ini(config, "docker", DOCKER_ENV, DOCKER_MODES) or "auto"


def docker_broker(config: pytest.Config) -> str | None:
    """The broker the Docker tier uses (reserved for the Docker tier)."""
    value, _ = _raw(config, "broker")
    return None if value is None else str(value)


BROKER_BACKENDS = ("docker", "process", "external=HOST:PORT")


def broker_backend(config: pytest.Config) -> tuple[str, str | None, int | None] | None:
    """``--edgesim-broker`` parsed: ``("docker", None, None)``, ``("process", None, None)``,
    ``("external", host, port)``, or None (the default: docker when the engine answers,
    else a local ``mosquitto`` process)."""
    value, where = _raw(config, "broker")
    if value is None:
        return None
    text = str(value).strip()
    if text in ("docker", "process"):
        return text, None, None
    kind, _, address = text.partition("=")
    host, _, port = address.rpartition(":")
    if kind == "external" and host and port.isdigit() and 0 < int(port) < 65536:
        return "external", host.strip("[]"), int(port)
    raise pytest.UsageError(
        f"{where}: expected one of {', '.join(BROKER_BACKENDS)} (e.g. external=localhost:1883), "
        f"got {value!r}"
    )


def resolve_time_scale(config: pytest.Config, marker_value: Any = None) -> float:
    """How much faster than the wall clock a live run goes: the marker's ``time_scale=``,
    else ``--edgesim-time-scale``, else the ini key, else 1.0 (real time)."""
    if marker_value is not None:
        value, where = marker_value, "edgesim(time_scale=...)"
    else:
        value, where = _raw(config, "time_scale")
        if value is None:
            return 1.0
    try:
        scale = float(str(value).strip())
    except ValueError:
        scale = -1.0
    if not 0 < scale <= 1000:
        raise pytest.UsageError(f"{where}: expected a number in (0, 1000], got {value!r}")
    return scale


def keep_containers(config: pytest.Config) -> bool:
    """Whether the Docker tier leaves containers running (reserved for the Docker tier)."""
    return _flag(config, "keep_containers")


def validate(config: pytest.Config) -> None:
    """Resolve every setting once so that a bad value stops the run at start-up."""
    session_seed(config)
    resolve_tier(config)
    resolve_trials(config, None)
    undecided_mode(config)
    broker_backend(config)
    resolve_time_scale(config)
    replay_trial_seed(config)
    on_real_trials(config)
    docker_mode(config)
    engine_setting(config)
    summary_requested(config)
    keep_containers(config)
