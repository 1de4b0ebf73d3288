"""Which broker a run uses: Mosquitto from a Debian release, the user's image or build
context, and the user's ``mosquitto.conf``; how that becomes an image and a command.

A :class:`BrokerChoice` is a value (a scenario's ``broker:`` section, or one entry of
``@pytest.mark.edgesim(broker=[...])``); its :attr:`~BrokerChoice.key` says when two runs
can share one broker container: the same source and a configuration of the same content.

The user's configuration is mounted read-only as ``/edgesim/user/user.conf``, and
Mosquitto reads ``/edgesim/mosquitto.conf``, which edgesim writes: an ``include_dir`` of the
user's file followed by the one thing edgesim must add, ``listener 1883`` (the port it
publishes), unless the user's file already listens on 1883 on every address. Nothing else
is added: authentication, persistence, limits and logging are the user's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_edgesim.docker.build_cache import Progress, cache_dir

if TYPE_CHECKING:
    import docker

MQTT_PORT = 1883
#: where the generated configuration and the user's are mounted in the broker container
CONFIG_PATH = "/edgesim/mosquitto.conf"
USER_CONFIG_DIR = "/edgesim/user"
#: what edgesim adds to a user's configuration (when it does not listen on 1883 already)
ADDED_LISTENER = f"listener {MQTT_PORT}"
_VERSION = re.compile(r"mosquitto version (\S+)")


@dataclass(frozen=True)
class BrokerChoice:
    """A broker to run: at most one of ``release`` (a Debian release's Mosquitto),
    ``image`` (on the engine) and ``build`` (a build context directory), and the user's
    ``config`` file. All unset: the project's broker with its test configuration."""

    release: str | None = None
    image: str | None = None
    build: Path | None = None
    config: Path | None = None

    @property
    def is_default(self) -> bool:
        return self == BrokerChoice()

    @property
    def source(self) -> str:
        """Where the broker comes from, as reports say it: ``trixie``, ``image NAME``..."""
        if self.image is not None:
            return f"image {self.image}"
        if self.build is not None:
            return f"build {self.build}"
        return self.release or "bookworm"

    @property
    def key(self) -> str:
        """Equal for choices that can share a container: the source and the content (not
        the path) of the configuration."""
        config = hashlib.sha256(self.config.read_bytes()).hexdigest() if self.config else "-"
        source = self.image or str(self.build or "") or self.release or "default"
        kind = "image" if self.image else "build" if self.build else "release"
        return f"{kind}:{source}:{config}"

    def configuration(self) -> str:
        """What the broker is configured with, for reports (never the file's content)."""
        if self.config is None:
            if self.image is not None or self.build is not None:
                return "the image's own configuration"
            return "edgesim's test configuration (anonymous, no persistence)"
        added = ADDED_LISTENER if adds_listener(self.config.read_text(errors="replace")) else ""
        return f"{self.config} (edgesim added: {added or 'nothing'})"


def adds_listener(config_text: str) -> bool:
    """Whether edgesim must add its listener: the configuration does not already listen on
    port 1883 on every address (``listener 1883``, ``listener 1883 0.0.0.0`` or ``port 1883``)."""
    for line in config_text.splitlines():
        words = line.split("#", 1)[0].split()
        ours = len(words) >= 2 and words[0] in ("listener", "port") and words[1] == str(MQTT_PORT)
        if ours and (len(words) == 2 or words[2] in ("0.0.0.0", "::")):
            return False
    return True


def launch_settings(choice: BrokerChoice) -> tuple[list[str] | None, dict[str, Any]]:
    """``(command, volumes)`` that start the broker of ``choice``: None and no volumes (the
    image's own command) without a user configuration."""
    if choice.config is None:
        return None, {}
    text = choice.config.read_text(errors="replace")
    lines = [
        "# Written by edgesim: the user's configuration, then only what edgesim must add.",
        f"include_dir {USER_CONFIG_DIR}",
    ]
    if adds_listener(text):
        lines.append(f"{ADDED_LISTENER}  # the port edgesim publishes")
    generated = "\n".join(lines) + "\n"
    digest = hashlib.sha256(generated.encode()).hexdigest()[:16]
    path = cache_dir() / "broker-config" / f"{digest}.conf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(generated)
        partial.replace(path)
    volumes = {
        str(path): {"bind": CONFIG_PATH, "mode": "ro"},
        str(choice.config): {"bind": f"{USER_CONFIG_DIR}/user.conf", "mode": "ro"},
    }
    return ["mosquitto", "-c", CONFIG_PATH], volumes


def broker_image(
    client: docker.DockerClient,
    choice: BrokerChoice,
    offline: bool | None = None,
    progress: Progress | None = None,
) -> str:
    """The image of ``choice`` on the engine, built (offline for a release) if missing."""
    from pytest_edgesim.docker import debian_base
    from pytest_edgesim.docker.images import (
        ImageSpec,
        ensure_image,
        image_specs,
        require_image,
        user_image_spec,
    )

    if choice.image is not None:
        return require_image(client, choice.image, "broker")
    if choice.build is not None:
        spec = user_image_spec(choice.build, "eclipse-mosquitto:2")
        return ensure_image(
            ImageSpec(spec.name, spec.context, spec.registry_base, origin="user"),
            client,
            offline,
            progress,
        )
    if choice.release is None:
        return ensure_image("broker", client, offline, progress)
    base = debian_base.ensure_base_image(
        client, debian_base.broker_recipe(choice.release), progress
    )
    project = image_specs()["broker"]
    variant = "" if choice.release == debian_base.SUITE else choice.release
    spec = ImageSpec(project.name, project.context, project.registry_base, variant=variant)
    return ensure_image(spec, client, progress=progress, base=base)


def describe_version(container: Any, choice: BrokerChoice, image: str) -> str:
    """``mosquitto 2.0.21 (trixie)``: the version the broker in ``container`` reports
    (``mosquitto -h``), and where it came from."""
    version = "unknown version"
    try:
        _, output = container.exec_run(["mosquitto", "-h"], demux=False)
        found = _VERSION.search((output or b"").decode(errors="replace"))
        if found:
            version = f"mosquitto {found.group(1)}"
    except Exception as error:  # a broker image without mosquitto (or without exec)
        version = f"unknown version ({type(error).__name__})"
    return f"{version} ({_source(container, choice, image)})"


def _source(container: Any, choice: BrokerChoice, image: str) -> str:
    if choice.image is not None or choice.build is not None or choice.release is not None:
        return choice.source
    from pytest_edgesim.docker.images import BASE_LABEL

    base = str((container.image.labels or {}).get(BASE_LABEL, ""))
    if base.startswith("edgesim/base:"):
        return base.split(":", 1)[1].split("-", 1)[0]
    return base or image
