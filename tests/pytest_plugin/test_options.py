"""Options, ini keys, the report header and setting resolution (pytest_plugin.settings)."""

from __future__ import annotations

import os
import sys

import pytest

OPTIONS = (
    "--edgesim-seed",
    "--edgesim-tier",
    "--edgesim-trials",
    "--edgesim-report",
    "--edgesim-scenario-dir",
    "--edgesim-summary",
    "--edgesim-undecided",
    "--edgesim-docker",
    "--edgesim-broker",
    "--edgesim-keep-containers",
    "--edgesim-engine",
)


def test_every_option_and_ini_key_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["edgesim: edge and IoT scenarios in virtual time:"])
    for option in OPTIONS:
        result.stdout.fnmatch_lines([f"*{option}*"])
        ini_key = option.removeprefix("--").replace("-", "_")
        result.stdout.fnmatch_lines([f"*{ini_key} *"])


def test_header_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["edgesim: seed per-scenario, tier all, docker auto, engine *"])


def test_header_shows_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest(
        "--edgesim-seed=42", "--edgesim-tier=statistical", "--edgesim-docker=off"
    )
    result.stdout.fnmatch_lines(["edgesim: seed 42, tier statistical, docker off, engine *"])


def test_header_says_which_engine_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_edgesim.core import native

    monkeypatch.delenv("EDGESIM_ENGINE", raising=False)
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    if native.native_available():
        expected = f"native {native._native.ENGINE_VERSION} (pure for what it does not cover)"
    else:
        expected = "pure (the native engine is not built)"
    result.stdout.fnmatch_lines([f"edgesim: seed *, engine {expected}"])


def test_header_says_when_the_pure_engine_is_forced(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGESIM_ENGINE", "pure")
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["edgesim: seed *, engine pure (EDGESIM_ENGINE=pure)"])


ENGINE_TEST = """
from pytest_edgesim import Scenario
from pytest_edgesim.core.native import choose_engine


def test_engine(pytestconfig):
    scenario = Scenario.from_yaml(pytestconfig.rootpath / "small.yaml")
    assert choose_engine(scenario).engine == "pure"
"""


@pytest.mark.parametrize(
    ("arguments", "ini", "environment"),
    [
        (["--edgesim-engine=pure"], None, None),
        (["--edgesim-engine=pure"], "native", "native"),  # the option wins
        ([], "native", "pure"),  # then the environment variable
        ([], "pure", None),  # then the ini key
    ],
)
@pytest.mark.usefixtures("small_scenario")
def test_the_engine_option_forces_the_pure_engine(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    ini: str | None,
    environment: str | None,
) -> None:
    monkeypatch.delenv("EDGESIM_ENGINE", raising=False)
    if environment is not None:
        monkeypatch.setenv("EDGESIM_ENGINE", environment)
    if ini is not None:
        pytester.makeini(f"[pytest]\nedgesim_engine = {ini}\n")
    pytester.makepyfile(ENGINE_TEST)
    result = pytester.runpytest(*arguments)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["edgesim: seed *, engine pure (EDGESIM_ENGINE=pure)"])
    assert os.environ.get("EDGESIM_ENGINE") == environment  # the session's setting is undone


def test_an_unknown_engine_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("--edgesim-engine=fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--edgesim-engine: expected one of auto, pure, native, got 'fast'"]
    )


def test_random_seed_is_drawn_and_shown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("--edgesim-seed=random")
    header = [line for line in result.outlines if line.startswith("edgesim: seed ")]
    assert len(header) == 1
    assert header[0].split()[2].rstrip(",").isdigit()


def test_ini_keys_are_read(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        edgesim_seed = 9
        edgesim_tier = deterministic
        edgesim_docker = require
        """
    )
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["edgesim: seed 9, tier deterministic, docker require, engine *"])
    result = pytester.runpytest("--edgesim-seed=3")  # the command line wins over the ini key
    result.stdout.fnmatch_lines(["edgesim: seed 3, tier deterministic, docker require, engine *"])


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--edgesim-seed=abc"], "", "*--edgesim-seed: expected a seed*'abc'*"),
        (["--edgesim-seed=-3"], "", "*--edgesim-seed: expected a seed*"),
        (["--edgesim-trials=0"], "", "*--edgesim-trials: expected a number of trials >= 1*"),
        ([], "edgesim_tier = nightly", "*ini key edgesim_tier: expected one of*'nightly'*"),
        ([], "edgesim_undecided = maybe", "*ini key edgesim_undecided: expected one of*"),
        ([], "edgesim_trials = many", "*ini key edgesim_trials: expected a number of trials*"),
    ],
)
def test_bad_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_bad_choice_on_the_command_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--edgesim-tier=nightly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--edgesim-tier: invalid choice: 'nightly'*"])


def test_docker_mode_reads_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nedgesim_docker = off\n")
    pytester.makepyfile("def test_plain(): pass")
    monkeypatch.setenv("EDGESIM_DOCKER", "require")
    pytester.runpytest().stdout.fnmatch_lines(["*docker require, engine *"])
    pytester.runpytest("--edgesim-docker=auto").stdout.fnmatch_lines(["*docker auto, engine *"])


RESOLUTION = """
import pytest
from pytest_edgesim.pytest_plugin import settings as config

def test_trials(request):
    assert config.resolve_trials(request.config, 7) == {trials_marker}
    assert config.resolve_trials(request.config, None) == {trials_default}

def test_undecided(request):
    assert config.undecided_fails(request.config) is {undecided}

def test_seed(request):
    assert config.resolve_seed(request.config, 5) == {seed_scenario}
    assert config.resolve_seed(request.config, 5, marker_seed=8) == 8

def test_paths(request):
    directory = config.scenario_dir(request.config)
    assert (directory.name if directory else None) == {scenario_dir!r}
"""


@pytest.mark.parametrize(
    ("args", "ini", "env_ci", "expected"),
    [
        (
            [],
            "",
            "",
            dict(
                trials_marker=7,
                trials_default=30,
                undecided=False,
                seed_scenario=5,
                scenario_dir=None,
            ),
        ),
        (
            [],
            "edgesim_trials = 12\nedgesim_seed = 4\nedgesim_scenario_dir = here",
            "",
            dict(
                trials_marker=7,
                trials_default=12,
                undecided=False,
                seed_scenario=4,
                scenario_dir="here",
            ),
        ),
        (
            ["--edgesim-trials=3", "--edgesim-seed=2", "--edgesim-scenario-dir=there"],
            "edgesim_trials = 12\nedgesim_scenario_dir = here",
            "",
            dict(
                trials_marker=3,
                trials_default=3,
                undecided=False,
                seed_scenario=2,
                scenario_dir="there",
            ),
        ),
        (
            [],
            "",
            "true",
            dict(
                trials_marker=7,
                trials_default=30,
                undecided=True,
                seed_scenario=5,
                scenario_dir=None,
            ),
        ),
        (
            ["--edgesim-undecided=pass"],
            "",
            "true",
            dict(
                trials_marker=7,
                trials_default=30,
                undecided=False,
                seed_scenario=5,
                scenario_dir=None,
            ),
        ),
        (
            ["--edgesim-undecided=fail"],
            "",
            "",
            dict(
                trials_marker=7,
                trials_default=30,
                undecided=True,
                seed_scenario=5,
                scenario_dir=None,
            ),
        ),
    ],
)
def test_resolution_order(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    ini: str,
    env_ci: str,
    expected: dict[str, object],
) -> None:
    """Marker > command line > ini key > default (trials: command line > marker > ini)."""
    monkeypatch.setenv("CI", env_ci)
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(RESOLUTION.format(**expected))
    pytester.runpytest(*args).assert_outcomes(passed=4)


def test_plugin_import_is_light(pytester: pytest.Pytester) -> None:
    """Loading the plugin imports none of the simulator, pydantic or YAML."""
    result = pytester.run(
        sys.executable,
        "-c",
        "import sys, pytest_edgesim.pytest_plugin.hooks; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml') "
        "or m in ('pytest_edgesim.core.simulation', 'pytest_edgesim.core.scenario')]; print(heavy)",
    )
    assert result.outlines[-1] == "[]"


@pytest.mark.parametrize("key", ["edgesim_summary", "edgesim_keep_containers"])
def test_a_bad_yes_no_ini_value_stops_the_run_at_start_up(
    pytester: pytest.Pytester, key: str
) -> None:
    pytester.makeini(f"[pytest]\n{key} = maybe\n")
    pytester.makepyfile("def test_never_runs():\n    pass\n")
    result = pytester.runpytest()
    output = result.stdout.str() + result.stderr.str()
    assert "maybe" in output and "1 passed" not in output  # stopped before running anything
    assert result.ret != 0


@pytest.mark.parametrize("option", ["--edgesim-seed", "--edgesim-trial-seed"])
def test_a_seed_option_beyond_the_seed_range_is_a_usage_error(
    pytester: pytest.Pytester, option: str
) -> None:
    pytester.makepyfile("def test_never_runs():\n    pass\n")
    result = pytester.runpytest(f"{option}={2**63}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}: must be from 0 to 2**63-1, got {2**63}*"])
