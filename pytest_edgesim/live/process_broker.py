"""A local ``mosquitto`` process as the broker of live runs (no Docker needed).

It listens on a free loopback port with a configuration of its own in a temporary
directory, logs there, and is ready at its first CONNACK. Found through
``$EDGESIM_MOSQUITTO``, else ``mosquitto`` on the PATH or in ``/usr/sbin``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from pytest_edgesim.errors import EdgesimError
from pytest_edgesim.live.probe import mqtt_connack

MOSQUITTO_ENV = "EDGESIM_MOSQUITTO"
LOG_TAIL_LINES = 40


def mosquitto_binary() -> str | None:
    """``$EDGESIM_MOSQUITTO``, else ``mosquitto`` on the PATH or in /usr/sbin."""
    return (
        os.environ.get(MOSQUITTO_ENV)
        or shutil.which("mosquitto")
        or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ProcessBroker:
    """A running mosquitto process: ``host``, ``port``, its ``logs()``, and ``stop()``."""

    def __init__(self, binary: str, settings: Mapping[str, str] | None = None):
        self.binary = binary
        self.directory = Path(tempfile.mkdtemp(prefix="edgesim-mosquitto-"))
        self.host = "127.0.0.1"
        self.port = _free_port()
        conf = self.directory / "mosquitto.conf"
        extra = "".join(f"{option} {value}\n" for option, value in (settings or {}).items())
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            # stderr is unbuffered (2.0.11 buffers stdout that is not a terminal); the
            # subscriptions are logged for gateways that are ready once subscribed
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
            "log_type subscribe\n" + extra
        )
        self.log_path = self.directory / "mosquitto.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )

    @classmethod
    def start(
        cls, binary: str, timeout_s: float = 10.0, settings: Mapping[str, str] | None = None
    ) -> ProcessBroker:
        """Run ``binary`` and wait for its first CONNACK; an error carries its log.
        ``settings``: more options for its ``mosquitto.conf`` (``{"max_queued_messages":
        "100"}``, see :func:`pytest_edgesim.live.broker_config.mosquitto_settings`)."""
        broker = cls(binary, settings)
        deadline = time.monotonic() + timeout_s
        while True:
            # our process must be alive for a CONNACK to be its own: under xdist another
            # worker's broker may have taken the port between the probe and mosquitto's bind
            alive = broker.process.poll() is None
            try:
                answered = alive and mqtt_connack(broker.host, broker.port) == 0
                if answered and broker.process.poll() is None:
                    return broker
            except OSError:
                pass
            if not alive or time.monotonic() > deadline:
                lines = "\n".join(broker.logs())
                broker.stop()
                raise EdgesimError(
                    f"{binary} did not accept MQTT connections on port {broker.port}:\n{lines}"
                )
            time.sleep(0.005)

    def logs(self) -> list[str]:
        """The process's last log lines."""
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]

    def stop(self) -> None:
        """Stop the process (killed if it does not end within 5 s) and remove its directory."""
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
