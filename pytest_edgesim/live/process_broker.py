"""A local ``mosquitto`` process as the broker of live runs (no Docker needed).

It listens on a free loopback port with a configuration of its own in a temporary
directory, logs there, and is ready at its first CONNACK. Found through
``$EDGESIM_MOSQUITTO``, else ``mosquitto`` on the PATH or in ``/usr/sbin``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from pytest_edgesim.errors import EdgesimError
from pytest_edgesim.live.probe import mqtt_connack
from pytest_edgesim.live.processes import (
    Owner,
    command_line,
    owner_alive,
    pid_alive,
    this_owner,
)

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


#: where each process broker keeps its configuration, log and owner record
DIRECTORY_PREFIX = "edgesim-mosquitto-"
OWNER_FILE = "owner.json"


def reap_dead_process_brokers(root: Path | None = None) -> list[Path]:
    """Stop the mosquitto processes, and remove the directories, that process brokers of
    sessions that are gone (SIGKILLed) left on this host; returns the directories removed.

    A broker's directory records its owner (an :class:`~.processes.Owner`: boot id, pid
    namespace, pid, start time) and its own process id. Only an owner of this machine and
    pid namespace can be seen to be gone (a directory shared with another container is left
    to that container's sessions); a broker whose owner no longer runs is stopped only if its
    command line still names its directory's configuration (so a reused pid is never
    signalled).
    """
    removed = []
    for directory in sorted((root or Path(tempfile.gettempdir())).glob(DIRECTORY_PREFIX + "*")):
        try:
            record = json.loads((directory / OWNER_FILE).read_text())
            owner, broker = int(record["owner_pid"]), int(record["broker_pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one of ours, or still being written
        if not _owner_gone(record, owner):
            continue
        arguments = command_line(broker) if pid_alive(broker) else None
        if arguments is not None and str(directory / "mosquitto.conf") in arguments:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(broker, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


def _owner_gone(record: Mapping[str, object], owner_pid: int) -> bool:
    """Whether the session that wrote ``record`` is over and seen to be from here (a record
    of edgesim 0.2 names only the host and the pid: then by those, as 0.2 decided)."""
    owner = Owner.parse(str(record.get("owner", "")))
    if owner is not None:
        return owner_alive(owner) is False
    return record.get("host") == socket.gethostname() and not pid_alive(owner_pid)


class ProcessBroker:
    """A running mosquitto process: ``host``, ``port``, its ``logs()``, and ``stop()``.

    Its directory (configuration, log, and the owner record that lets a later session reap
    it when this one is killed) is ``$TMPDIR/edgesim-mosquitto-*``.
    """

    def __init__(self, binary: str, settings: Mapping[str, str] | None = None):
        self.binary = binary
        reap_dead_process_brokers()
        self.directory = Path(tempfile.mkdtemp(prefix=DIRECTORY_PREFIX))
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
        record = {"owner_pid": os.getpid(), "broker_pid": self.process.pid}
        (self.directory / OWNER_FILE).write_text(
            json.dumps({**record, "host": socket.gethostname(), "owner": str(this_owner())})
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
