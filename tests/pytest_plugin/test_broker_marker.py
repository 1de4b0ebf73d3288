"""``@pytest.mark.edgesim(broker=...)``: test ids, the checks at collection, and what a
deterministic test says of a real broker. Collection needs no Docker engine."""

from __future__ import annotations

import pytest

SCENARIO = """\
edgesim: 1
broker:
  implementation: docker
  docker: {release: bookworm}
  config: mosquitto.conf
"""


def test_the_ids_name_the_brokers(pytester: pytest.Pytester) -> None:
    pytester.makefile(".conf", mosquitto="allow_anonymous true\n", strict="")
    pytester.makefile(".yaml", plant=SCENARIO)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(broker=[
            "bookworm",
            "trixie",
            {"release": "forky", "config": "strict.conf"},
            {"image": "eclipse-mosquitto:2.0.18"},
            {"release": "trixie", "id": "production"},
        ])
        def test_on_brokers(mqtt_broker):
            pass

        @pytest.mark.statistical(trials=2)
        @pytest.mark.edgesim(scenario="plant.yaml", broker=["bookworm", "trixie"])
        def test_live(edge_scenario):
            pass

        @pytest.mark.edgesim(scenario="plant.yaml")
        def test_scenario_broker(mqtt_broker):
            pass

        @pytest.mark.edgesim(broker="trixie")
        def test_one_broker(mqtt_broker):
            pass
        """
    )

    result = pytester.runpytest("--collect-only", "-q")

    collected = {line.split("::")[1] for line in result.outlines if "::" in line}
    assert collected == {
        "test_on_brokers[bookworm]",
        "test_on_brokers[trixie]",
        "test_on_brokers[forky-strict]",
        "test_on_brokers[eclipse-mosquitto:2.0.18]",
        "test_on_brokers[production]",
        "test_live[bookworm]",
        "test_live[trixie]",
        "test_scenario_broker[bookworm-mosquitto]",
        "test_one_broker[trixie]",
    }
    assert result.ret == 0


def test_mqtt_broker_takes_the_scenarios_configuration_under_each_release(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".conf", mosquitto="allow_anonymous true\n")
    pytester.makefile(".yaml", plant=SCENARIO)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(scenario="plant.yaml", broker=["trixie", {"image": "x:1"}])
        def test_it(mqtt_broker):
            print("PARAM", sorted(mqtt_broker.items()))
        """
    )
    pytester.makeconftest(
        """
        import pytest

        class Given(dict):  # stands in for the plugin's broker: what the fixture is given
            backend = "none"
            new_prefix = logs = end_test = lambda *args: ""

        @pytest.fixture(scope="session")
        def mqtt_broker(request):
            return Given(request.param)
        """
    )
    result = pytester.runpytest("-s", "-p", "no:randomly")

    result.assert_outcomes(passed=2)
    config = str(pytester.path / "mosquitto.conf")
    result.stdout.fnmatch_lines(
        [
            f"*PARAM [[]('config', '{config}'), ('release', 'trixie')[]]*",
            f"*PARAM [[]('config', '{config}'), ('image', 'x:1')[]]*",
        ]
    )


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ('"buster"', "*unknown release 'buster' (expected one of bookworm, trixie, forky)"),
        ("[]", "*edgesim(broker=[]): expected a Debian release*"),
        (
            '[{"release": "trixie", "image": "x"}]',
            "*give one of release, image and build, not release and image",
        ),
        (
            '[{"relase": "trixie"}]',
            "*unknown key 'relase' (the keys are release, image, build, config, id)",
        ),
        (
            '[{"release": "trixie", "config": "missing.conf"}]',
            "*config='missing.conf': the broker configuration 'missing.conf' (*) does not exist",
        ),
    ],
)
def test_bad_broker_arguments_are_collection_errors(
    pytester: pytest.Pytester, argument: str, expected: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.edgesim(broker={argument})
        def test_it(mqtt_broker):
            pass
        """
    )
    result = pytester.runpytest()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*invalid edgesim markers:", expected])


def test_broker_needs_a_fixture_it_chooses_for(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(broker=["trixie"])
        def test_it():
            pass
        """
    )
    result = pytester.runpytest()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*chooses the broker of the edge_scenario and mqtt_broker*"])


def test_a_deterministic_test_on_a_real_broker_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.edgesim(broker=["trixie"])
        def test_it(edge_scenario):
            edge_scenario.run()
        """
    )
    result = pytester.runpytest("--edgesim-docker=off")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*asks for components that run on the wall clock:", "  broker.implementation: docker"]
    )
