"""An image build reports its steps as phases to ``pytest_edgesim.core.progress`` and the
rest of its output as details, when its caller gives no ``progress`` of its own."""

from __future__ import annotations

from pytest_edgesim.core import progress
from pytest_edgesim.docker import images


def test_steps_are_phases_and_the_rest_details() -> None:
    seen: list[tuple[str, bool]] = []
    previous = progress.set_sink(lambda line, is_phase: seen.append((line, is_phase)))
    try:
        for line in (
            "building edgesim/gateway:0123 from /x/gateway on debian:bookworm-slim",
            "Step 3/9 : RUN pip install --no-index /wheels/*",
            " ---> Running in 5d1c2b",
            "Successfully installed paho-mqtt-2.1.0",
            "pulling eclipse-mosquitto:2",
            "making the Debian base edgesim/debian:bookworm (bookworm from http://deb)",
            "I: retrieving InRelease",
            "built edgesim/gateway:0123",
        ):
            images._to_progress_sink(line)
    finally:
        progress.set_sink(previous)
    assert [line.split()[0] for line, is_phase in seen if is_phase] == [
        "building",
        "Step",
        "pulling",
        "making",
        "built",
    ]
    assert [line for line, is_phase in seen if not is_phase] == [
        " ---> Running in 5d1c2b",
        "Successfully installed paho-mqtt-2.1.0",
        "I: retrieving InRelease",
    ]
