"""Every kind of bad scenario file gives one ScenarioError naming the file, the line and the
field, and ``edgesim validate`` prints it without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from pytest_edgesim import Scenario, ScenarioError, SimulationError, simulate
from pytest_edgesim.cli.app import EXIT_FAILED, EXIT_USAGE, main

# (id, file content, line, field path, what the message says)
CASES = [
    (
        "syntax-error",
        """\
        edgesim: 1
        devices:
          - name: t
            topic: [a, b
        duration: 10s
        """,
        5,
        None,
        "invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence, started on line 4)",
    ),
    (
        "tab-indentation",
        "edgesim: 1\ndevices:\n\t- name: t\n",
        3,
        None,
        "invalid YAML: found character '\\t' that cannot start any token",
    ),
    (
        "unknown-field",
        """\
        edgesim: 1
        devices:
          - name: t
            topic: a/b
            pubish: {period: 1s}
        """,
        5,
        "devices[0].pubish",
        "unknown field 'pubish' (did you mean 'publish'?)",
    ),
    (
        "unknown-top-level-field",
        "edgesim: 1\nseed: 3\ndevics: []\n",
        3,
        "devics",
        "unknown field 'devics' (did you mean 'devices'?)",
    ),
    (
        "wrong-type",
        """\
        edgesim: 1
        devices:
          - name: t
            count: many
        """,
        4,
        "devices[0].count",
        "must be a whole number, got 'many'",
    ),
    (
        "wrong-type-list",
        "edgesim: 1\ndevices: 5\n",
        2,
        "devices",
        "must be a list, got 5",
    ),
    (
        "bad-duration-unit",
        """\
        edgesim: 1
        devices:
          - name: t
            publish: {period: 1 fortnight}
        """,
        4,
        "devices[0].publish.period",
        "unknown time unit 'fortnight' in '1 fortnight'",
    ),
    (
        "bad-duration-zero",
        "edgesim: 1\nname: z\nduration: 0\n",
        3,
        "duration",
        "must be longer than zero, got 0",
    ),
    (
        "bad-duration-text",
        "edgesim: 1\nduration: soon\n",
        2,
        "duration",
        "must be a duration such as '20ms', '1.5s' or 2 (seconds), got 'soon'",
    ),
    (
        "bad-topic-filter",
        """\
        edgesim: 1
        devices:
          - name: t
        gateways:
          - name: gw
            subscribe:
              - sensors/+
              - "a/#/b"
        """,
        8,
        "gateways[0].subscribe[1]",
        "'#' must be a whole level and the last one, in 'a/#/b'",
    ),
    (
        "wildcard-in-topic-name",
        "edgesim: 1\ndevices:\n  - name: t\n    topic: a/+/b\n",
        4,
        "devices[0].topic",
        "a topic name cannot contain the wildcards '+' or '#': 'a/+/b'",
    ),
    (
        "link-to-unknown-node",
        """\
        edgesim: 1
        devices:
          - name: t
        gateways:
          - name: gateway
            subscribe: "#"
        network:
          links:
            - {from: t, to: broker, latency: 1ms}
            - {from: gateway, to: clod, latency: 1ms}
        """,
        10,
        "network.links[1].to",
        "'clod' matches no node (did you mean 'cloud'?); nodes are: broker, cloud, t, gateway",
    ),
    (
        "partition-of-unknown-node",
        """\
        edgesim: 1
        devices:
          - name: t
        network:
          partitions:
            - between: [t, gw]
        """,
        6,
        "network.partitions[0].between[1]",
        "'gw' matches no node",
    ),
    (
        "forward-to-unknown-node",
        """\
        edgesim: 1
        gateways:
          - name: gw
            subscribe: "#"
            forward: {to: cluod}
        """,
        5,
        "gateways[0].forward.to",
        "'cluod' is not a node (did you mean 'cloud'?)",
    ),
    (
        "bad-value-field",
        """\
        edgesim: 1
        gateways:
          - name: gw
            subscribe: ["#"]
            aggregate: {count: 2, value_field: "sensor..temp"}
        """,
        5,
        "gateways[0].aggregate.value_field",
        "must be a field name, or a dotted path such as 'sensor.temp', got 'sensor..temp'",
    ),
    (
        "duplicate-names",
        """\
        edgesim: 1
        devices:
          - name: gw
        gateways:
          - name: gw
            subscribe: ["#"]
        """,
        5,
        "gateways[0].name",
        "the node name 'gw' is used twice",
    ),
    (
        "duplicate-expanded-device-names",
        """\
        edgesim: 1
        devices:
          - name: t
            count: 3
          - name: t-1
        """,
        5,
        "devices[1].name",
        "the node name 't-1' is used twice",
    ),
    (
        "duplicate-key",
        "edgesim: 1\nduration: 1s\nseed: 2\nduration: 2s\n",
        4,
        "duration",
        "duplicate key (first written on line 2)",
    ),
    (
        "loss-out-of-range",
        """\
        edgesim: 1
        devices:
          - name: t
        network:
          links:
            - from: t
              to: broker
              loss: 1.5
        """,
        8,
        "network.links[0].loss",
        "must be between 0 and 1, got 1.5",
    ),
    (
        "unknown-model",
        "edgesim: 1\ndevices:\n  - name: t\n    value: {model: sin}\n",
        4,
        "devices[0].value",
        "unknown model 'sin' (expected one of constant, random_walk, sine, replay)",
    ),
    # infinity, NaN and absurdly long durations: a clear error, never an OverflowError
    (
        "duration-inf",
        "edgesim: 1\nduration: .inf\n",
        2,
        "duration",
        "must be a finite number, got inf",
    ),
    (
        "duration-nan",
        "edgesim: 1\nduration: .nan\n",
        2,
        "duration",
        "must be a finite number, got nan",
    ),
    (
        "duration-too-long",
        "edgesim: 1\nduration: 1e400\n",
        2,
        "duration",
        "is too long (at most about 292,000 years), got '1e400'",
    ),
    (
        "latency-inf",
        "edgesim: 1\nnetwork:\n  default: {latency: .inf}\n",
        3,
        "network.default.latency",
        "must be a finite number, got inf",
    ),
    (
        "latency-nan",
        "edgesim: 1\nnetwork:\n  default: {latency: .nan}\n",
        3,
        "network.default.latency",
        "must be a finite number, got nan",
    ),
    (
        "jitter-inf",
        "edgesim: 1\nnetwork:\n  default: {jitter: .inf}\n",
        3,
        "network.default.jitter",
        "must be a finite number, got inf",
    ),
    (
        "bandwidth-inf",
        "edgesim: 1\nnetwork:\n  default: {bandwidth: .inf}\n",
        3,
        "network.default.bandwidth",
        "must be a finite number, got inf",
    ),
    (
        "bandwidth-nan",
        "edgesim: 1\nnetwork:\n  default: {bandwidth: .nan}\n",
        3,
        "network.default.bandwidth",
        "must be a finite number, got nan",
    ),
    (
        "rate-nan",
        "edgesim: 1\ndevices:\n  - name: t\n    publish: {mode: poisson, rate: .nan}\n",
        4,
        "devices[0].publish.rate",
        "must be a finite number, got nan",
    ),
    (
        "rate-inf",
        "edgesim: 1\ndevices:\n  - name: t\n    publish: {mode: poisson, rate: .inf}\n",
        4,
        "devices[0].publish.rate",
        "must be a finite number, got inf",
    ),
    (
        "rate-above-one-per-tick",
        "edgesim: 1\ndevices:\n  - name: t\n    publish: {mode: poisson, rate: 2000000/s}\n",
        4,
        "devices[0].publish.rate",
        "must be at most 1000000/s (one event per microsecond tick), got '2000000/s'",
    ),
    (
        "period-inf",
        "edgesim: 1\ndevices:\n  - name: t\n    publish: {period: .inf}\n",
        4,
        "devices[0].publish.period",
        "must be a finite number, got inf",
    ),
    (
        "count-inf",
        "edgesim: 1\ndevices:\n  - name: t\n    count: .inf\n",
        4,
        "devices[0].count",
        "must be a whole number, got inf",
    ),
    (
        "count-bool",
        "edgesim: 1\ndevices:\n  - name: t\n    count: true\n",
        4,
        "devices[0].count",
        "must be a whole number, got True",
    ),
    (
        "count-text",
        "edgesim: 1\ndevices:\n  - name: t\n    count: '3'\n",
        4,
        "devices[0].count",
        "must be a whole number, got '3'",
    ),
    (
        "qos-bool",
        "edgesim: 1\ndevices:\n  - name: t\n    qos: true\n",
        4,
        "devices[0].qos",
        "must be 0 or 1, got True",
    ),
    (
        "qos-float",
        "edgesim: 1\ndevices:\n  - name: t\n    qos: 1.0\n",
        4,
        "devices[0].qos",
        "must be 0 or 1, got 1.0",
    ),
    (
        "retain-text",
        "edgesim: 1\ndevices:\n  - name: t\n    retain: 'no'\n",
        4,
        "devices[0].retain",
        "must be true or false, got 'no'",
    ),
    (
        "retain-number",
        "edgesim: 1\ndevices:\n  - name: t\n    retain: 1\n",
        4,
        "devices[0].retain",
        "must be true or false, got 1",
    ),
    (
        "value-nan",
        "edgesim: 1\ndevices:\n  - name: t\n    value: {model: sine, amplitude: .nan}\n",
        4,
        "devices[0].value.amplitude",
        "must be a finite number, got nan",
    ),
    # an unknown field in a tagged sub-object: the fields of the variant its tag selects
    (
        "unknown-field-of-sine",
        "edgesim: 1\ndevices:\n  - name: t\n    value: {model: sine, amplitud: 3}\n",
        4,
        "devices[0].value.amplitud",
        "unknown field 'amplitud' (did you mean 'amplitude'?)",
    ),
    (
        "unknown-field-of-random-walk",
        "edgesim: 1\ndevices:\n  - name: t\n    value: {model: random_walk, stp: 1}\n",
        4,
        "devices[0].value.stp",
        "unknown field 'stp' (did you mean 'step'?)",
    ),
    (
        "unknown-field-lists-the-variants-fields",
        "edgesim: 1\ndevices:\n  - name: t\n    value: {model: sine, wobble: 1}\n",
        4,
        "devices[0].value.wobble",
        "unknown field 'wobble' (known fields: model, mean, amplitude, period, phase, noise)",
    ),
    (
        "misspelt-required-field-of-normal-delay",
        """\
        edgesim: 1
        gateways:
          - name: g
            subscribe: "#"
            processing_delay: {distribution: normal, mean: 1ms, stdev: 1ms}
        """,
        5,
        "gateways[0].processing_delay.stdev",
        "unknown field 'stdev' (did you mean 'stddev'?)",
    ),
    (
        "misspelt-required-field-of-gilbert-elliott",
        """\
        edgesim: 1
        network:
          default:
            loss: {model: gilbert_elliott, p_good_to_bad: 0.1, p_bad_to_god: 0.2}
        """,
        4,
        "network.default.loss.p_bad_to_god",
        "unknown field 'p_bad_to_god' (did you mean 'p_bad_to_good'?)",
    ),
    # seeds are whole numbers from 0 to 2**63-1; a bool or a fraction is never converted
    (
        "seed-true",
        "edgesim: 1\nseed: true\n",
        2,
        "seed",
        "must be a whole number from 0 to 2**63-1, got True",
    ),
    (
        "seed-fraction",
        "edgesim: 1\nseed: 1.5\n",
        2,
        "seed",
        "must be a whole number from 0 to 2**63-1, got 1.5",
    ),
    ("seed-negative", "edgesim: 1\nseed: -1\n", 2, "seed", "must be from 0 to 2**63-1, got -1"),
    (
        "seed-too-large",
        f"edgesim: 1\nseed: {2**63}\n",
        2,
        "seed",
        f"must be from 0 to 2**63-1, got {2**63}",
    ),
    (
        "publish-stop-before-start",
        "edgesim: 1\ndevices:\n  - name: t\n    publish: {period: 1s, start: 10s, stop: 5s}\n",
        4,
        "devices[0].publish",
        "stop must be after start",
    ),
    (
        "poisson-stop-at-start",
        "edgesim: 1\ndevices:\n  - name: t\n"
        "    publish: {mode: poisson, rate: 1, start: 2s, stop: 2s}\n",
        4,
        "devices[0].publish",
        "stop must be after start",
    ),
    (
        "forward-to-itself",
        """\
        edgesim: 1
        gateways:
          - name: gw
            subscribe: "#"
            forward: {to: gw}
        """,
        5,
        "gateways[0].forward.to",
        "a gateway cannot forward to itself ('gw')",
    ),
    # pydantic's own words, said in the scenario format's
    (
        "partition-with-three-sides",
        "edgesim: 1\nnetwork:\n  partitions:\n    - between: [a, b, c]\n",
        4,
        "network.partitions[0].between",
        "must name two sides (each a node pattern or a list of them), got ['a', 'b', 'c']",
    ),
    (
        "partition-with-one-side",
        "edgesim: 1\nnetwork:\n  partitions:\n    - between: [a]\n",
        4,
        "network.partitions[0].between",
        "must name two sides (each a node pattern or a list of them), got ['a']",
    ),
    (
        "count-fraction",
        "edgesim: 1\ndevices:\n  - name: t\n    count: 1.5\n",
        4,
        "devices[0].count",
        "must be a whole number, got 1.5",
    ),
    (
        "key-that-is-not-a-string",
        "edgesim: 1\ndevices:\n  - name: t\n    1: 2\n",
        4,
        "devices[0]",
        "unknown field 1 (known fields: name, count, type, topic, qos, retain,",
    ),
    (
        "empty-subscription-list",
        "edgesim: 1\ngateways:\n  - name: g\n    subscribe: []\n",
        4,
        "gateways[0].subscribe",
        "must have at least 1 item, got 0",
    ),
    (
        "bad-format-in-name-template",
        "edgesim: 1\ndevices:\n  - name: 't{index:zz}'\n    count: 2\n",
        3,
        "devices[0].name",
        "{index:zz}: 'zz' is not a format for a number (e.g. {index:03d} pads to three digits)",
    ),
    (
        "bad-format-in-topic-template",
        "edgesim: 1\ndevices:\n  - name: t\n    topic: 'a/{name:d}'\n",
        4,
        "devices[0].topic",
        "{name:d}: 'd' is not a format for a name",
    ),
    # a field that takes one of several kinds of value still gets one message
    (
        "offset-inf",
        "edgesim: 1\ndevices:\n  - name: t\n    publish: {offset: .inf}\n",
        4,
        "devices[0].publish.offset",
        "must be a finite number, got inf",
    ),
    (
        "offset-neither-duration-nor-random",
        "edgesim: 1\ndevices:\n  - name: t\n    publish: {offset: rand}\n",
        4,
        "devices[0].publish.offset",
        "must be a duration or 'random', got 'rand'",
    ),
    (
        "replay-column-of-the-wrong-kind",
        "edgesim: 1\ndevices:\n  - name: t\n    value: {model: replay, file: v.csv, column: 1.5}\n",
        4,
        "devices[0].value.column",
        "must be a string or a whole number, got 1.5",
    ),
    (
        "unsupported-version",
        "edgesim: 2\n",
        1,
        "edgesim",
        "unsupported scenario version 2 (this pytest-edgesim reads version 1)",
    ),
    (
        "not-a-mapping",
        "- a\n- b\n",
        1,
        None,
        "a scenario must be a mapping of fields",
    ),
]


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(dedent(content))
    return path


@pytest.mark.parametrize(
    ("content", "line", "field", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_one_clear_error_naming_file_line_and_field(
    tmp_path: Path, content: str, line: int, field: str | None, message: str
):
    path = write(tmp_path, "bad", content)

    with pytest.raises(ScenarioError) as caught:
        Scenario.from_yaml(path)

    assert len(caught.value.problems) == 1, caught.value.problems
    text = str(caught.value)
    where = f"{path}:{line}: " + (f"{field}: " if field else "")
    assert text.startswith(where), text
    assert message in text


@pytest.mark.parametrize(
    ("content", "message"),
    [(case[1], case[4]) for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_validate_prints_the_error_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
):
    path = write(tmp_path, "bad", content)

    code = main(["validate", str(path)])

    out, err = capsys.readouterr()
    assert code == EXIT_FAILED
    assert out == ""
    assert err.startswith(f"{path}:")
    assert message in err
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_run_refuses_a_bad_scenario_with_the_usage_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = write(tmp_path, "bad", "edgesim: 1\nduration: soon\n")

    assert main(["run", str(path)]) == EXIT_USAGE
    _, err = capsys.readouterr()
    assert err == (
        f"{path}:2: duration: must be a duration such as '20ms', '1.5s' or 2 (seconds), "
        "got 'soon'\n"
    )


def test_every_problem_in_a_file_is_reported_in_one_error_sorted_by_line(tmp_path: Path):
    path = write(
        tmp_path,
        "many",
        """\
        edgesim: 1
        duration: soon
        devices:
          - name: t
            count: 0
            qos: 2
        """,
    )

    with pytest.raises(ScenarioError) as caught:
        Scenario.from_yaml(path)

    assert [problem.split(": ")[:2] for problem in caught.value.problems] == [
        [f"{path}:2", "duration"],
        [f"{path}:5", "devices[0].count"],
        [f"{path}:6", "devices[0].qos"],
    ]


def test_a_missing_or_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ScenarioError, match=r"missing\.yaml: no such scenario file"):
        Scenario.from_yaml(missing)
    empty = write(tmp_path, "empty", "")
    with pytest.raises(ScenarioError, match=r"empty\.yaml: the file is empty"):
        Scenario.from_yaml(empty)

    good = write(tmp_path, "good", "edgesim: 1\n")
    assert main(["validate", str(good), str(missing)]) == EXIT_FAILED
    out, err = capsys.readouterr()
    assert out.startswith(f"{good}: ok (2 nodes, 60s, seed 0)")
    assert err == f"{missing}: no such scenario file\n"


def test_a_bad_dict_names_the_field():
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_dict({"edgesim": 1, "devices": [{"name": "t", "qos": 3}]})
    assert caught.value.problems == ["<dict>: devices[0].qos: must be one of 0 or 1, got 3"]


def test_the_edgesim_command_prints_no_traceback(tmp_path: Path):
    path = write(tmp_path, "bad", "edgesim: 1\ndevices:\n  - name: t\n    pubish: {}\n")

    done = subprocess.run(
        [sys.executable, "-m", "pytest_edgesim.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == EXIT_FAILED
    assert done.stdout == ""
    assert done.stderr == (
        f"{path}:4: devices[0].pubish: unknown field 'pubish' (did you mean 'publish'?)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "1e400"], "--duration: is too long (at most about 292,000 years)"),
        (["--duration", "inf"], "--duration: must be a duration such as"),
        (["--set", "duration=.inf"], "override 'duration': must be a finite number, got inf"),
        (["--set", "duration=.nan"], "override 'duration': must be a finite number, got nan"),
    ],
)
def test_run_refuses_non_finite_and_huge_durations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
):
    path = write(tmp_path, "ok", "edgesim: 1\nduration: 1s\n")

    assert main(["run", str(path), *argv]) == EXIT_USAGE
    _, err = capsys.readouterr()
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("until", [float("inf"), float("nan"), 1e300, "1e400", "soon"])
def test_simulate_refuses_an_until_that_is_no_duration(until: object):
    scenario = Scenario.from_dict({"edgesim": 1, "duration": "1s"})

    with pytest.raises(SimulationError, match=r"cannot run until .*: (must|is too long)"):
        simulate(scenario, until=until)


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        (-1, "seed: must be from 0 to 2**63-1, got -1"),
        (2**70, f"seed: must be from 0 to 2**63-1, got {2**70}"),
        (1.5, "seed: must be a whole number from 0 to 2**63-1, got 1.5"),
        ("7", "seed: must be a whole number from 0 to 2**63-1, got '7'"),
        (True, "seed: must be a whole number from 0 to 2**63-1, got True"),
    ],
)
def test_simulate_checks_the_seed_as_the_file_does(seed: object, message: str):
    scenario = Scenario.from_dict({"edgesim": 1, "duration": "1s"})

    with pytest.raises(ScenarioError) as caught:
        simulate(scenario, seed=seed)  # type: ignore[arg-type]
    assert caught.value.problems == [message]


@pytest.mark.parametrize("seed", [True, 1.5, "7", -1, 2**63])
def test_an_override_checks_the_seed_as_the_file_does(seed: object):
    scenario = Scenario.from_dict({"edgesim": 1})

    with pytest.raises(ScenarioError, match=r"^override 'seed': must be"):
        scenario.with_overrides({"seed": seed})


def test_the_largest_seed_is_accepted_everywhere():
    from pytest_edgesim.core.scenario.schema import MAX_SEED, check_seed

    scenario = Scenario.from_dict({"edgesim": 1, "duration": "1s", "seed": MAX_SEED})
    assert scenario.seed == MAX_SEED == 2**63 - 1
    assert simulate(scenario, seed=0).seed == 0
    assert simulate(scenario).seed == MAX_SEED
    assert check_seed(7, "--seed") == 7
    with pytest.raises(ScenarioError, match=r"^--seed: must be from 0 to 2\*\*63-1, got -3$"):
        check_seed(-3, "--seed")


def test_every_cross_check_problem_is_reported_at_once_in_line_order(tmp_path: Path):
    path = write(
        tmp_path,
        "many",
        """\
        edgesim: 1
        network:
          links:
            - {from: "[", to: g}
        devices:
          - name: t
            topic: a/+
          - name: u
          - name: u
          - name: r
            value: {model: replay, file: nope.csv}
        gateways:
          - name: g
            subscribe: a/#/b
        """,
    )

    with pytest.raises(ScenarioError) as caught:
        Scenario.from_yaml(path)

    assert [problem.split(": ")[:2] for problem in caught.value.problems] == [
        [f"{path}:4", "network.links[0].from"],
        [f"{path}:7", "devices[0].topic"],
        [f"{path}:9", "devices[2].name"],
        [f"{path}:11", "devices[3].value.file"],
        [f"{path}:14", "gateways[0].subscribe[0]"],
    ]


def test_a_device_whose_name_cannot_be_made_does_not_make_patterns_fail_too(tmp_path: Path):
    path = write(
        tmp_path,
        "template",
        """\
        edgesim: 1
        devices:
          - name: "t{index:zz}"
            count: 2
        gateways:
          - name: g
            subscribe: "a/#/b"
        network:
          links:
            - {from: "t*", to: g}
        """,
    )

    with pytest.raises(ScenarioError) as caught:
        Scenario.from_yaml(path)

    assert [problem.split(": ")[:2] for problem in caught.value.problems] == [
        [f"{path}:3", "devices[0].name"],
        [f"{path}:7", "gateways[0].subscribe[0]"],
    ]
