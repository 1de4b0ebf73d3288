"""Hostile input: every file of the corpus (scripts/make_scenario_corpus.py) ends in one
clear ScenarioError from ``edgesim validate``, within a time and memory bound; no junk a
generator can make gets anything but a ScenarioError out of ``from_dict``/``from_yaml``;
an error about a file the scenario refers to never shows that file's content."""

from __future__ import annotations

import importlib.util
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_edgesim import Limits, Scenario, ScenarioError
from pytest_edgesim.cli.app import EXIT_FAILED, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[3]
CORPUS = Path(__file__).resolve().parent / "corpus"
_spec = importlib.util.spec_from_file_location(
    "make_scenario_corpus", ROOT / "scripts" / "make_scenario_corpus.py"
)
assert _spec is not None and _spec.loader is not None
corpus = importlib.util.module_from_spec(_spec)
sys.modules["make_scenario_corpus"] = corpus  # (dataclasses look their module up)
_spec.loader.exec_module(corpus)

#: the memory bound of one validation: a limit error must come before it
MEMORY_BYTES = 2**30
#: a guard against a hang, not the target: the 20 s target of issue 13 is measured by
#: benchmarks/bench_hostile_input.py (a timed assertion would fail on a loaded runner)
SECONDS = 120


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def validate(*paths: Path, timeout: float = SECONDS) -> subprocess.CompletedProcess[str]:
    """``edgesim validate PATHS`` in a process of at most 1 GiB, killed after ``timeout``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_edgesim.cli", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_bounded,
        check=False,
        env={**os.environ, "PYTHONUTF8": "1"},
    )


def _manifest() -> list[tuple[str, str, str]]:
    lines = (CORPUS / corpus.MANIFEST).read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t", 2)) for line in lines]  # type: ignore[misc]


def test_the_committed_corpus_is_what_the_script_writes(tmp_path: Path):
    corpus.write(corpus.small_cases(), tmp_path)

    written = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    committed = {path.name: path.read_bytes() for path in CORPUS.iterdir()}
    assert written == committed, "run: python scripts/make_scenario_corpus.py"
    assert sum(map(len, committed.values())) < 64 * 1024  # big cases are made at test time


def _one_error_each(done: subprocess.CompletedProcess[str], cases: list[tuple[Path, str]]):
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == EXIT_FAILED
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    for path, expected in cases:
        said = [line for line in lines if line.startswith(f"{path}:") or line == str(path)]
        assert len(said) == 1, (path, said)
        assert expected in said[0], (path, said[0])
    assert len(lines) == len(cases)  # one line per problem, nothing else


def test_every_committed_case_is_one_clear_error_within_the_bound():
    cases = [(CORPUS / name, expected) for name, kind, expected in _manifest() if kind == "error"]
    assert len(cases) >= 40

    done = validate(*(path for path, _ in cases), timeout=SECONDS * 2)

    _one_error_each(done, cases)


def test_edgesim_run_refuses_every_committed_case_as_a_usage_error(
    capsys: pytest.CaptureFixture[str],
):
    for name, _, expected in _manifest():
        assert main(["run", str(CORPUS / name)]) == EXIT_USAGE, name
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1 and expected in err, (name, err)


def test_no_error_shows_the_content_of_a_file_that_is_not_declared_data():
    done = validate(CORPUS / "replay-secret-not-csv.yaml", CORPUS / "replay-secret-header.yaml")

    assert done.returncode == EXIT_FAILED
    for secret in ("alice", "$6$", "root", "19000"):
        assert secret not in done.stderr.replace(str(CORPUS), "")
    assert "passwd-like:2: column 0 is not a number\n" in done.stderr


def test_a_declared_csv_is_quoted_short_and_escaped():
    done = validate(CORPUS / "replay-csv-long-cell.yaml")

    quoted = done.stderr.partition("is not a number: ")[2].strip()
    assert quoted == repr("x" * 40) + "..."
    assert "\x1b" not in done.stderr


@pytest.mark.parametrize("case", list(corpus.big_cases()), ids=lambda case: case.name)
def test_a_big_case_ends_within_the_bound(tmp_path: Path, case):
    (path,) = corpus.write(iter([case]), tmp_path)

    done = validate(path)

    if case.valid:
        assert done.returncode == 0, done.stderr[-3000:]
        assert case.expected in done.stdout
    else:
        _one_error_each(done, [(path, case.expected)])


def test_a_fifo_is_refused_at_once(tmp_path: Path):
    os.mkfifo(tmp_path / "values.csv")
    path = tmp_path / "fifo.yaml"
    path.write_text(corpus._replay("values.csv"))
    os.mkfifo(tmp_path / "scenario.yaml")

    done = validate(path, tmp_path / "scenario.yaml", timeout=10)

    _one_error_each(
        done,
        [
            (path, "values.csv: is a FIFO (named pipe), not a regular file"),
            (tmp_path / "scenario.yaml", "the scenario file is a FIFO (named pipe)"),
        ],
    )


def test_a_lone_surrogate_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = tmp_path / "s.yaml"
    path.write_text('edgesim: 1\nduration: 1s\ndevices:\n  - {name: t, topic: "a/\\ud800"}\n')

    assert main(["run", str(path)]) == EXIT_USAGE
    assert "devices[0].topic: contains U+D800, a lone surrogate" in capsys.readouterr().err


# --- limits --------------------------------------------------------------------------------
def test_a_limit_names_itself_and_how_to_raise_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "fleet.yaml"
    path.write_text("edgesim: 1\ndevices:\n  - {name: a, count: 3}\n  - {name: b, count: 3}\n")

    with pytest.raises(ScenarioError) as caught:
        Scenario.from_yaml(path, limits=Limits(devices=5))
    assert str(caught.value) == (
        f"{path}:4: devices[1].count: the scenario has 6 devices by this entry: more than the "
        "limit of 5 devices (after count expansion) (raise it with EDGESIM_LIMIT_DEVICES=N or "
        "Scenario.from_yaml(..., limits=Limits(devices=N)))"
    )
    monkeypatch.setenv("EDGESIM_LIMIT_DEVICES", "5")
    with pytest.raises(ScenarioError, match="more than the limit of 5 devices"):
        Scenario.from_yaml(path)
    monkeypatch.setenv("EDGESIM_LIMIT_DEVICES", "6")
    assert len(Scenario.from_yaml(path).node_names) == 8


def test_a_raised_limit_lets_a_deeper_file_through(tmp_path: Path):
    path = tmp_path / "deep.yaml"
    path.write_text("edgesim: 1\ndescription: " + "[" * 100 + "]" * 100 + "\n")

    with pytest.raises(ScenarioError, match="nested too deep"):
        Scenario.from_yaml(path)
    with pytest.raises(ScenarioError, match=r"description: must be a string, got \[\[\["):
        Scenario.from_yaml(path, limits=Limits(depth=200))


def test_overrides_keep_the_scenario_limits():
    scenario = Scenario.from_dict({"edgesim": 1}, limits=Limits(devices=2))

    with pytest.raises(ScenarioError, match="more than the limit of 2 devices"):
        scenario.with_overrides({"devices": [{"name": "t", "count": 3}]})


@pytest.mark.parametrize(
    ("limits", "variable"),
    [({"depth": 0}, None), ({"nodes": True}, None), ({}, "x"), ({}, "-3"), ({"depth": 401}, None)],
)
def test_a_bad_limit_is_a_scenario_error(
    monkeypatch: pytest.MonkeyPatch, limits: dict[str, object], variable: str | None
):
    if variable is not None:
        monkeypatch.setenv("EDGESIM_LIMIT_NODES", variable)
    with pytest.raises(ScenarioError, match=r"must be (a whole number of at least 1|at most 400)"):
        Scenario.from_dict({"edgesim": 1}, limits=Limits(**limits) if limits else None)


def test_the_deepest_limit_allowed_is_safe():
    deep: object = "x"
    for _ in range(399):
        deep = {"a": deep}

    with pytest.raises(ScenarioError, match="description: must be a string, got"):
        Scenario.from_dict({"edgesim": 1, "description": deep}, limits=Limits(depth=400))


def test_a_count_expanded_fleet_is_named_not_built():
    scenario = Scenario.from_dict(
        {"edgesim": 1, "devices": [{"name": "s-{index:06d}", "count": 200_000}]}
    )

    assert "devices" not in vars(scenario)  # (made when a run asks for it)
    assert scenario.node_names[2] == "s-000000"
    assert scenario.devices[-1].topic == "sensors/s-199999"


# --- from_dict and overrides with what code can hand over -------------------------------------
def _deep(levels: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def _cycle() -> list[object]:
    items: list[object] = []
    items.append(items)
    return items


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"edgesim": 1, "devices": (x for x in [])}, "must be a mapping, a list"),
        ({"edgesim": 1, "description": _deep(5000)}, "nested too deep"),
        ({"edgesim": 1, "devices": _cycle()}, "or a value that contains itself"),
        ({"edgesim": 1, "name": b"basic"}, "is binary data"),
        ({"edgesim": 1, "tags": {1, 2}}, "got set"),
        ({"edgesim": 1, "seed": 10**5000}, "digits"),
        ({"edgesim": 1, "description": "a\udc80"}, "a lone surrogate"),
    ],
    ids=["generator", "5000-deep", "cycle", "bytes", "set", "huge-int", "surrogate"],
)
def test_from_dict_refuses_what_is_no_scenario_value(data: dict[str, object], message: str):
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_dict(data)
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_dict({"edgesim": 1}).with_overrides(
            {key: value for key, value in data.items() if key != "edgesim"}
        )


# --- properties -------------------------------------------------------------------------------
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=5)
    | st.sampled_from(["1s", "20ms", "1Mbps", "0.4bps", "*", "sensors/#", "{index}", "b*"])
)
_junk = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["name", "count", "value", "model", "min", "max", "between", "bandwidth", "x"]
            )
            | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)
_fields = st.sampled_from(
    ["name", "seed", "duration", "devices", "gateways", "network", "broker", "cloud", "edgesim"]
)
_scenarios = st.fixed_dictionaries(
    {"edgesim": st.sampled_from([1, 1.0, True, "1", None])},
    optional={"devices": st.lists(_junk, max_size=3), "network": _junk},
).flatmap(lambda base: st.dictionaries(_fields, _junk, max_size=4).map(lambda x: {**base, **x}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scenarios)
def test_from_dict_raises_nothing_but_a_scenario_error(data: dict[str, object]):
    try:
        Scenario.from_dict(data)
    except ScenarioError as exc:
        assert exc.problems and all(problem.startswith("<dict>") for problem in exc.problems)


_yaml_text = st.one_of(
    _scenarios.map(lambda data: yaml.safe_dump(data, allow_unicode=True)),
    st.text(alphabet="edgsim: 1\n-[]{},&*!<>|'\"#?%@`\t\x00\x1bé\ud800 ab0.", max_size=80).map(
        lambda text: "edgesim: 1\n" + text
    ),
)


@pytest.fixture(scope="module")
def junk_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("junk") / "junk.yaml"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_yaml_text)
def test_from_yaml_raises_nothing_but_a_scenario_error(junk_file: Path, text: str):
    junk_file.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        Scenario.from_yaml(junk_file)
    except ScenarioError as exc:
        assert exc.problems and all(problem.startswith(str(junk_file)) for problem in exc.problems)


def test_a_path_with_a_nul_is_an_error_not_a_traceback():
    with pytest.raises(ScenarioError, match="the scenario file is not a valid path"):
        Scenario.from_yaml("a\x00b.yaml")
    replay = {"model": "replay", "file": "a\x00b.csv"}
    with pytest.raises(ScenarioError, match=r"devices\[0\]\.value\.file: .*: is not a valid path"):
        Scenario.from_dict({"edgesim": 1, "devices": [{"name": "t", "value": replay}]})
