"""The ``edgesim`` command: ``run`` prints the metrics and the same digest as ``simulate()``;
``validate`` checks files. Called in process through ``cli.main``, and once as a command."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_edgesim import Scenario, simulate
from pytest_edgesim.cli.app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _output_paths, main

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
BASIC = SCENARIOS / "basic.yaml"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def printed_digest(out: str) -> str:
    match = re.search(r"^trace digest: ([0-9a-f]{64})$", out, re.MULTILINE)
    assert match, out
    return match.group(1)


def test_run_prints_the_table_and_the_digest_of_simulate(capsys):
    code, out, err = run_cli(capsys, "run", str(BASIC))

    assert code == EXIT_OK
    assert err == ""  # no progress bar when stderr is not a terminal
    expected = simulate(BASIC)
    assert printed_digest(out) == expected.trace_digest
    assert out.startswith(f"scenario basic ({BASIC}), seed 42: 60s virtual in "), out.splitlines()[
        0
    ]
    assert f", {expected.events} scheduled events\n" in out
    cloud = next(line for line in out.splitlines() if line.startswith("cloud "))
    assert cloud.split()[1:3] == [str(expected.metrics.node("cloud").sent)] * 2


def test_links_that_carry_only_pubacks_are_labelled(capsys):
    """basic.yaml forwards at QoS 1: cloud->gateway carries the cloud's PUBACKs only."""
    code, out, _ = run_cli(capsys, "run", str(BASIC))
    assert code == EXIT_OK
    links = {line.split()[0]: line for line in out.splitlines() if "->" in line.split(" ")[0]}
    assert "cloud->gateway" in links and links["cloud->gateway"].split()[1] == "(PUBACKs)"
    assert "(PUBACKs)" not in links["gateway->cloud"]
    assert "(PUBACKs): the link carries only acknowledgements of QoS 1 messages" in out


def test_seed(capsys):
    code, out, _ = run_cli(capsys, "run", str(BASIC), "--seed", "5")

    assert code == EXIT_OK
    assert ", seed 5:" in out.splitlines()[0]
    assert printed_digest(out) == simulate(BASIC, seed=5).trace_digest
    assert printed_digest(out) != simulate(BASIC).trace_digest


def test_set_overrides_fields(capsys):
    code, out, _ = run_cli(
        capsys, "run", str(BASIC), "--set", "network.links[0].latency=80ms", "--set", "seed=3"
    )

    assert code == EXIT_OK
    expected = Scenario.from_yaml(BASIC).with_overrides(
        {"network.links[0].latency": "80ms", "seed": 3}
    )
    assert printed_digest(out) == simulate(expected).trace_digest
    uplink = next(line for line in out.splitlines() if line.startswith("temp-0->broker"))
    assert uplink.split()[-1] == "80.0"  # max ms


def test_duration(capsys):
    code, out, _ = run_cli(capsys, "run", str(BASIC), "--duration", "10s")

    assert code == EXIT_OK
    assert ": 10s virtual in " in out.splitlines()[0]
    assert printed_digest(out) == simulate(BASIC, until="10s").trace_digest


def test_a_bad_duration_is_a_usage_error(capsys):
    code, _, err = run_cli(capsys, "run", str(BASIC), "--duration", "soon")
    assert code == EXIT_USAGE
    assert err.startswith("--duration: must be a duration such as '20ms'")
    assert "Traceback" not in err


def test_trace_writes_one_json_line_per_event(capsys, tmp_path: Path):
    trace = tmp_path / "out.jsonl"

    code, out, _ = run_cli(capsys, "run", str(BASIC), "--duration", "20s", "--trace", str(trace))

    assert code == EXIT_OK
    lines = trace.read_text().splitlines()
    expected = simulate(BASIC, until="20s", trace="full")
    assert expected.trace is not None
    assert len(lines) == len(expected.trace) > 0
    assert f"trace ({len(lines)} events) written to {trace}" in out
    events = [json.loads(line) for line in lines]
    assert {"t", "kind", "node", "topic"} <= set(events[0])
    assert [event["t"] for event in events] == sorted(event["t"] for event in events)
    # keeping the full trace does not change the digest
    assert printed_digest(out) == expected.trace_digest == simulate(BASIC, until="20s").trace_digest


def test_run_prints_what_reached_where(capsys):
    code, out, _ = run_cli(capsys, "run", str(SCENARIOS / "lossy.yaml"))

    assert code == EXIT_OK
    expected = simulate(SCENARIOS / "lossy.yaml").delivery("*", "cloud")
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("delivery "))
    assert header.split()[1:] == [
        "sent", "delivered", "lost", "dup", "late", "loss", "cut", "overflow", "rejected",
        "pending", "unknown", "ratio",
    ]  # fmt: skip
    total = next(line for line in lines if line.startswith("cloud <- * "))
    assert total.split()[3:8] == [
        str(n)
        for n in (
            expected.sent,
            expected.delivered,
            expected.lost,
            expected.duplicated,
            expected.reordered,
        )
    ]
    assert total.split()[12] == str(expected.lost_by_cause["pending"])
    assert "cloud <- field-sensor-0 " in out


def test_json_and_csv(capsys, tmp_path: Path):
    report, table = tmp_path / "result.json", tmp_path / "metrics.csv"

    code, out, _ = run_cli(
        capsys, "run", str(BASIC), "--duration", "5s", "--json", str(report), "--csv", str(table)
    )

    assert code == EXIT_OK
    data = json.loads(report.read_text())
    assert data["trace_digest"] == printed_digest(out)
    assert (data["seed"], data["virtual_time_s"]) == (42, 5.0)
    cloud = data["deliveries"]["flows"]["cloud"]
    assert sorted(cloud) == ["temp-0", "temp-1", "temp-2"]
    assert set(cloud["temp-0"]) >= {"sent", "delivered", "lost", "lost_by_cause"}
    assert table.read_text().count("\n") > 5


def test_output_folders_are_made_and_bad_output_paths_stop_the_run_before_it_starts(
    capsys, tmp_path: Path
):
    report = tmp_path / "new" / "folder" / "result.json"
    code, out, _ = run_cli(capsys, "run", str(BASIC), "--duration", "1s", "--json", str(report))
    assert code == EXIT_OK and json.loads(report.read_text())["seed"] == 42

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for option, value, problem in [
        ("--json", str(tmp_path), "is a directory, not a file"),
        ("--csv", str(blocker / "metrics.csv"), "cannot write there"),
        ("--trace", str(blocker / "trace.jsonl"), "cannot write there"),
    ]:
        code, out, err = run_cli(capsys, "run", str(BASIC), option, value)
        assert code == EXIT_USAGE, err
        assert err.startswith(f"edgesim: {option} {value}: {problem}")
        assert out == "" and "Traceback" not in err  # nothing ran

    # the check itself writes nothing: no empty file, and (a bad argument found before it)
    # no folder either
    probe = tmp_path / "never-written.json"
    args = argparse.Namespace(json=str(probe), csv=None, trace=None)
    assert _output_paths(args) == {"json": probe} and not probe.exists()
    folder = tmp_path / "not-made"
    code, _, _ = run_cli(
        capsys, "run", str(BASIC), "--duration", "soon", "--json", str(folder / "r.json")
    )
    assert code == EXIT_USAGE and not folder.exists()


@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_a_seed_out_of_range_is_a_usage_error(capsys, seed: str):
    code, out, err = run_cli(capsys, "run", str(BASIC), "--seed", seed)
    assert code == EXIT_USAGE and out == ""
    assert err.startswith("--seed: ") and "Traceback" not in err


def test_a_subscription_nothing_publishes_on_is_a_note_not_an_error(capsys):
    unheard = ["--set", "gateways[0].subscribe=[site/+/+/temperature]"]
    code, out, err = run_cli(capsys, "validate", str(BASIC), *unheard)
    assert code == EXIT_OK and out.startswith(f"{BASIC}: ok")
    assert err.startswith(
        f"{BASIC}: note: gateways[0].subscribe[0]: 'site/+/+/temperature' matches no topic "
        "published in the scenario (sites/lab/temp-0/temperature, "
    )
    code, _, err = run_cli(capsys, "run", str(BASIC), "--duration", "1s", *unheard)
    assert code == EXIT_OK and "note: gateways[0].subscribe[0]" in err
    assert Scenario.from_yaml(BASIC).notes() == []
    # a gateway's forward topic counts as published: a second gateway may listen to it
    chained = Scenario.from_yaml(BASIC).with_overrides(
        {"gateways[0].subscribe": ["cloud/#"], "gateways[0].forward.to": "cloud"}
    )
    assert chained.notes() == []


def test_validate_the_shipped_scenarios(capsys):
    files = sorted(str(path) for path in SCENARIOS.glob("*.yaml"))

    code, out, err = run_cli(capsys, "validate", *files)

    assert code == EXIT_OK
    assert err == ""
    assert [line.split(": ")[0] for line in out.splitlines()] == files
    assert f"{BASIC}: ok (6 nodes, 60s, seed 42)" in out


def test_validate_with_overrides(capsys):
    code, out, _ = run_cli(capsys, "validate", str(BASIC), "--set", "duration=5s")
    assert code == EXIT_OK
    assert out == f"{BASIC}: ok (6 nodes, 5s, seed 42)\n"

    code, _, err = run_cli(capsys, "validate", str(BASIC), "--set", "devices[0].count=0")
    assert code == EXIT_FAILED
    assert err == f"{BASIC}: override 'devices[0].count': must be at least 1, got 0\n"


def test_a_bad_override_in_run_is_a_usage_error(capsys):
    code, out, err = run_cli(capsys, "run", str(BASIC), "--set", "devices[9].count=1")
    assert code == EXIT_USAGE
    assert out == ""
    assert err == f"{BASIC}: override 'devices[9].count': devices has 1 item(s)\n"


def test_the_edgesim_command(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "pytest_edgesim.cli", "run", str(BASIC), "--duration", "5s"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )

    assert done.returncode == EXIT_OK, done.stderr
    assert printed_digest(done.stdout) == simulate(BASIC, until="5s").trace_digest


def test_a_run_with_faults_says_so_with_what_they_cost(capsys, tmp_path):
    """A fault run never reads as a clean one: the faults line names each fault and what it
    lost, the delivery table counts the losses by cause, and the JSON carries them."""
    scenario = tmp_path / "restart.yaml"
    scenario.write_text(
        BASIC.read_text() + "\nfaults:\n  - {at: 25500ms, action: restart, target: gateway}\n"
    )
    report = tmp_path / "result.json"
    code, out, _ = run_cli(capsys, "run", str(scenario), "--json", str(report))

    assert code == EXIT_OK
    expected = simulate(scenario)
    (fault,) = expected.faults
    line = next(line for line in out.splitlines() if line.startswith("faults: "))
    assert line == f"faults: {fault}"
    assert line.startswith("faults: t=25.5s restart gateway (lost ")  # what it held
    lost = expected.delivery("*", "cloud").lost_by_cause
    assert lost["node_down"] > 0
    assert "down" in next(line for line in out.splitlines() if line.startswith("delivery "))
    assert json.loads(report.read_text())["faults"] == [fault.to_dict()]
    clean_code, clean_out, _ = run_cli(capsys, "run", str(BASIC))
    assert clean_code == EXIT_OK and "faults:" not in clean_out


def test_version_says_which_engine_runs(capsys, monkeypatch):
    monkeypatch.setenv("EDGESIM_ENGINE", "pure")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.rstrip().endswith(", engine: pure (EDGESIM_ENGINE=pure)")


def test_every_cause_of_loss_has_a_column_heading():
    from pytest_edgesim.core.metrics.delivery import LOST_CAUSES
    from pytest_edgesim.core.metrics.tables import _CAUSE_HEADINGS

    assert set(LOST_CAUSES) <= set(_CAUSE_HEADINGS)


def test_the_backhaul_outage_scenario_runs_and_counts_its_losses(capsys):
    """The fault schedule's example: what the full buffer and the sleeping sensors lost are
    columns of the delivery table."""
    code, out, _ = run_cli(capsys, "run", str(BASIC.parent / "backhaul-outage.yaml"))

    assert code == EXIT_OK
    heading = next(line for line in out.splitlines() if line.startswith("delivery "))
    assert "store-full" in heading and "asleep" in heading
