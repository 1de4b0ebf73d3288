"""The fixtures: edge_scenario, edgesim_seed, edge_coordinator, latency_network."""

from __future__ import annotations

import json

import pytest


def test_unmarked_test_gets_the_minimal_scenario(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_minimal(edge_scenario, edgesim_seed):
            assert edge_scenario.scenario.name == "edgesim-minimal"
            assert edge_scenario.seed == edgesim_seed == 0
            assert edge_scenario.result is None
            result = edge_scenario.run()
            assert result.virtual_time_s == 10.0
            assert edge_scenario.now == 10_000_000
            assert len(edge_scenario.nodes) == 6  # 3 sensors, broker, gateway, cloud
            assert edge_scenario.node("gateway").processed == 30
            assert len(edge_scenario.cloud_arrivals) == 3  # one aggregate per 10 readings
            assert edge_scenario.runs == [result]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_scenario_beside_the_test_file_with_overrides(
    pytester: pytest.Pytester, small_scenario: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.edgesim({small_scenario!r})
        def test_as_written(edge_scenario):
            assert edge_scenario.scenario.name == "small"
            assert edge_scenario.seed == 11
            assert edge_scenario.run().virtual_time_s == 4.0

        @pytest.mark.edgesim(scenario={small_scenario!r}, duration="1s", seed=5,
                             overrides={{"network.default.latency": "40ms"}})
        def test_overridden(edge_scenario, edgesim_seed):
            assert edge_scenario.seed == edgesim_seed == 5
            assert edge_scenario.scenario.duration_ticks == 1_000_000
            result = edge_scenario.run()
            assert result.virtual_time_s == 1.0
            assert result.metrics.node("gw").latency_ms["min"] >= 80.0  # two 40 ms hops
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_scenario_dir_from_option_and_ini(
    pytester: pytest.Pytester, small_scenario_text: str
) -> None:
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "small.yaml").write_text(small_scenario_text)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_dir.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.edgesim('small.yaml')\n"
        "def test_found(edge_scenario):\n"
        "    assert edge_scenario.scenario.name == 'small'\n"
    )
    pytester.runpytest("--edgesim-scenario-dir=scenarios").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nedgesim_scenario_dir = scenarios\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_missing_scenario_file_names_the_test_and_both_places(pytester: pytest.Pytester) -> None:
    (pytester.path / "scenarios").mkdir()
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim("nowhere.yaml")
        def test_missing(edge_scenario):
            pass
        """
    )
    result = pytester.runpytest("--edgesim-scenario-dir=scenarios")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_missing_scenario_file_names_the_test_and_both_places.py::test_missing: "
            "scenario file 'nowhere.yaml' not found; looked in:",
            f"  {pytester.path / 'nowhere.yaml'}",
            f"  {pytester.path / 'scenarios' / 'nowhere.yaml'}",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*no scenario directory: set --edgesim-scenario-dir*"])


def test_invalid_override_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(overrides={"network.default.loss": 7})
        def test_bad_loss(edge_scenario):
            pass
        """
    )
    # -rN: no short summary, which repeats the message in full when CI is set (pytest only
    # shortens it to the terminal's width elsewhere); the count is of the report itself
    result = pytester.runpytest("-rN")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*::test_bad_loss: the built-in minimal scenario*is invalid:*"])
    output = result.stdout.str()
    assert "Traceback" not in output
    # the problem once, not again under "During handling of the above exception"
    assert output.count("network.default.loss") == 2  # the marker's overrides, the problem
    assert "During handling" not in output


def test_a_bad_scenario_file_is_reported_once_without_empty_overrides(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", typo="edgesim: 1\nname: typo\nduraton: 5s\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim("typo.yaml")
        def test_typo(edge_scenario):
            pass
        """
    )
    result = pytester.runpytest("-rN")  # no short summary, as above
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(["*::test_typo: scenario 'typo.yaml' is invalid:*"])
    assert output.count("unknown field 'duraton'") == 1, output
    assert "marker's overrides" not in output and "During handling" not in output


def test_seed_resolution(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_scenario_or_option(edgesim_seed, request):
            expected = request.config.getoption("edgesim_seed")
            assert edgesim_seed == (int(expected) if expected else 0)

        @pytest.mark.edgesim(seed=77)
        def test_marker_wins(edge_scenario):
            assert edge_scenario.seed == 77
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
    pytester.runpytest("--edgesim-seed=1234").assert_outcomes(passed=2)


def test_partition_heal_and_set_link_while_paused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(duration="9s")
        def test_steer(edge_scenario):
            first = edge_scenario.run("3s")
            assert first.metrics.totals.dropped["partition"] == 0

            edge_scenario.network.partition("sensor*", "broker")
            assert edge_scenario.network.is_partitioned("broker", "gateway") is False
            cut = edge_scenario.run("6s")
            lost = cut.metrics.totals.dropped["partition"]
            assert lost >= 8  # 3 sensors x 3 s, less the odd reading in flight

            assert edge_scenario.network.heal() == 1
            edge_scenario.network.set_link("gateway", "cloud", latency_ms=250)
            healed = edge_scenario.run()
            assert healed.metrics.totals.dropped["partition"] == lost
            assert healed.metrics.node("gateway").delivered > cut.metrics.node("gateway").delivered
            last = edge_scenario.cloud_arrivals[-1]
            assert last.time - last.created_at >= 250_000

        def test_untouched(edge_scenario):
            assert edge_scenario.run("9s").metrics.totals.dropped["partition"] == 0
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_inject_and_record(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_inject(edge_scenario):
            edge_scenario.run("1s")
            edge_scenario.inject("sensors/manual", 99.0)
            sensor = next(name for name in edge_scenario.nodes if name.startswith("sensor"))
            edge_scenario.inject("sensors/manual", 98.0, source=sensor, qos=1)
            result = edge_scenario.run("1.5s")
            assert result.metrics.topics["sensors/manual"].sent == 2
            assert [action.name for action in edge_scenario.actions] == [
                "run", "inject", "inject", "run"]
            edge_scenario.record("p95_ms", 12.5)
            assert edge_scenario.recorded == {"p95_ms": [12.5]}

        def test_running_backwards_is_refused(edge_scenario):
            from pytest_edgesim.errors import SimulationError
            import pytest

            edge_scenario.run("2s")
            with pytest.raises(SimulationError, match="until is absolute"):
                edge_scenario.run("1s")
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_code_built_topology(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_edgesim.core.node import Node
        from pytest_edgesim.core.packet import PUBLISH, Message, Packet

        class Pinger(Node):
            def bind(self, context):
                super().bind(context)
                context.call_at(0, self.ping)

            def ping(self, _arg=None):
                message = Message("ping", 1, origin=self.name, seq=1, created_at=self.context.now)
                self.context.send(Packet(PUBLISH, self.name, "sink", message))

        class Sink(Node):
            def __init__(self, name):
                super().__init__(name)
                self.arrived_at = []

            def on_packet(self, packet):
                self.arrived_at.append(self.context.now)

        def test_latency(edge_coordinator, latency_network, edgesim_seed):
            sink = Sink("sink")
            network = latency_network(
                {"pinger": Pinger("pinger"), "sink": sink},
                default={"latency": "20ms"},
                links=[{"from": "pinger", "to": "sink", "latency": "35ms"}],
            )
            assert network.streams.root_seed == edgesim_seed
            edge_coordinator.run(until=1_000_000)
            assert sink.arrived_at == [35_000]

        def test_bad_link_settings(latency_network):
            from pytest_edgesim.errors import ScenarioError
            import pytest

            with pytest.raises(ScenarioError, match="latency_network default.loss"):
                latency_network({}, default={"loss": 3})
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


DOCKER_GATEWAY = """\
edgesim: 1
name: containers
duration: 2s
devices: [{name: sensor}]
gateways:
  - name: gw
    subscribe: sensors/#
    implementation: docker
    DOCKER_SETTINGS
"""


@pytest.mark.parametrize(
    ("docker", "field"),
    [
        ("", "gateways[[]0[]] (gw): implementation: docker (docker_mqtt)"),
        ("docker: {mode: mqtt}", "gateways[[]0[]] (gw): implementation: docker*"),
    ],
    ids=["default-mode", "mqtt-mode"],
)
def test_wall_clock_component_in_a_deterministic_test(
    pytester: pytest.Pytester, docker: str, field: str
) -> None:
    pytester.makefile(".yaml", containers=DOCKER_GATEWAY.replace("DOCKER_SETTINGS", docker))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim("containers.yaml")
        def test_wall_clock(edge_scenario):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_wall_clock: deterministic test, but scenario 'containers' "
            "(*containers.yaml) asks for components that run on the wall clock:",
            f"  {field}",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_docker_broker_in_a_deterministic_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(overrides={"broker.implementation": "docker"})
        def test_broker(edge_scenario):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*asks for components*", "  broker.implementation: docker"])


#: a Docker engine that is not there: docker items are then skipped or failed
DEAD_ENGINE = "unix:///nonexistent/edgesim-dead.sock"


def test_lockstep_gateway_is_allowed_but_needs_the_docker_tier(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", DEAD_ENGINE)
    pytester.makefile(
        ".yaml", containers=DOCKER_GATEWAY.replace("DOCKER_SETTINGS", "docker: {mode: lockstep}")
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim("containers.yaml")
        def test_lockstep(edge_scenario):
            pass
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*docker (gateway gw) needs a Docker engine*"])


GATEWAYS = """
import pytest

@pytest.mark.edgesim(duration="2s", gateway=["python_model", "docker"])
def test_gateway(edge_scenario, edgesim_gateway):
    assert edgesim_gateway == "python_model"
    implementations = {g.implementation for g in edge_scenario.scenario.spec.gateways}
    assert implementations == {"python_model"}
    edge_scenario.run()
"""


def test_gateway_parametrisation(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", DEAD_ENGINE)
    pytester.makepyfile(GATEWAYS)
    result = pytester.runpytest("-v", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_gateway[[]python_model[]] PASSED*",
            "*::test_gateway[[]docker[]] SKIPPED*",
            "SKIPPED*implementation: docker (gateway gateway) needs a Docker engine*",
        ]
    )


def test_docker_modes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", DEAD_ENGINE)
    pytester.makepyfile(GATEWAYS)
    result = pytester.runpytest("--edgesim-docker=require")
    # the environment, not the behaviour under test: an error, with no seeds or replay line
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of test_gateway[[]docker[]] _*",
            "*::test_gateway[[]docker[]]: implementation: docker (gateway gateway) needs a "
            "Docker engine: *; --edgesim-docker=require",
        ]
    )
    assert "replay" not in result.stdout.str()
    result = pytester.runpytest("--edgesim-docker=off", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*Docker items are off (--edgesim-docker=off)*"])


def test_require_ends_a_statistical_test_without_an_engine_as_an_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No engine under require is no trial outcome: not 0/N trials and a "refuted" verdict."""
    monkeypatch.setenv("DOCKER_HOST", DEAD_ENGINE)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.statistical(trials=5)
        @pytest.mark.edgesim(duration="2s", gateway="docker")
        def test_live(edge_scenario):
            edge_scenario.run()
        """
    )
    result = pytester.runpytest("--edgesim-docker=require", "--edgesim-report=report.json")
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "needs a Docker engine" in output and "--edgesim-docker=require" in output
    assert "refuted" not in output and "trials passed" not in output
    report = json.loads((pytester.path / "report.json").read_text())
    (test,) = report["tests"]
    assert test["outcome"] == "error", test


def test_statistical_gateway_keeps_the_docker_mode(pytester: pytest.Pytester) -> None:
    """In a deterministic test gateway='docker' means lockstep; statistical keeps mqtt."""
    pytester.makepyfile(
        """
        import pytest
        from pytest_edgesim.pytest_plugin import fixtures

        seen = []

        @pytest.fixture(autouse=True)
        def spy(monkeypatch):
            real = fixtures._check_components
            def check(item, scenario):
                docker = scenario.spec.gateways[0].docker
                seen.append((item.name, docker.mode if docker else "mqtt"))
                real(item, scenario)
            monkeypatch.setattr(fixtures, "_check_components", check)

        @pytest.mark.edgesim(gateway="docker")
        def test_deterministic(edge_scenario):
            pass

        @pytest.mark.statistical(trials=2)
        @pytest.mark.edgesim(gateway="docker")
        def test_statistical(edge_scenario):
            pass

        def test_modes():
            assert ("test_deterministic", "lockstep") in seen
            assert ("test_statistical", "mqtt") in seen
        """
    )
    # off: the statistical item would otherwise run live when an engine answers
    pytester.runpytest("--edgesim-docker=off").assert_outcomes(passed=1, skipped=2)
