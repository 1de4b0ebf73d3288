"""The project's images: where their build contexts live, and building them at most once.

An image is tagged ``edgesim/<name>:<digest>``, where the digest is a sha256 over the build
context's source files and the base image's id, so an unchanged context is never rebuilt;
``edgesim/<name>:latest`` names the newest build. A user's build context (a lockstep
gateway's ``docker.build``) is built the same way into a namespace of its own,
``edgesim-user/<directory>:<digest>`` (no ``latest``), so whatever its directory is called
it never replaces a project image.
The base is the official image (``eclipse-mosquitto:2``, ``python:3.12-slim``) when it is
present or can be pulled, else a Debian base made locally (:mod:`.debian_base`); see
:func:`resolve_base` for the order and ``EDGESIM_OFFLINE`` to force either.

The contexts live in ``containers/`` in the repository, shipped inside the package as
``pytest_edgesim/_containers`` (a symlink in a checkout, real files in a wheel).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import docker
from docker.errors import APIError, DockerException, ImageNotFound
from docker.utils import parse_repository_tag

from pytest_edgesim import __version__
from pytest_edgesim.docker.build_cache import (
    IMAGE_LABEL,
    ImageBuildError,
    ImageError,
    Progress,
    build_lock,
    cache_dir,
    image_present,
)
from pytest_edgesim.docker.container import LOG_TAIL_LINES
from pytest_edgesim.errors import EdgesimError

DIGEST_LABEL = "edgesim.context-digest"
BASE_LABEL = "edgesim.base"
#: "project" (the images of ``containers/``) or "user" (a scenario's ``docker.build``)
ORIGIN_LABEL = "edgesim.origin"
#: the build context directory of a user's image
CONTEXT_LABEL = "edgesim.context"
PROJECT_NAMESPACE = "edgesim"
USER_NAMESPACE = "edgesim-user"
OFFLINE_ENV = "EDGESIM_OFFLINE"
KEEP_BUILDS = 3
#: a build younger than this is never pruned: on a shared engine another checkout (a CI job,
#: a second worktree) may be about to use it
KEEP_RECENT_S = 24 * 3600
IMAGE_NAMES = ("broker", "gateway")

# pip runs inside the build from its wheel; wheels are fetched for every CPython the package
# supports, so whichever python3 the base has finds its own.
PIP_TOOL = "pip==25.1.1"
WHEEL_PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
_DIGEST_SCHEME = "edgesim-image-v1"


@dataclass(frozen=True)
class ImageSpec:
    """How to build one image: its context directory and the official base it expects.

    ``include_package`` copies the pytest_edgesim source into the context as ``src/``;
    ``wheel_requirements`` (a file in the context) has edgesim put pip and those wheels
    into ``wheels/``. ``origin`` says whose context it is: the project's images live in
    ``edgesim/``, a user's (see :func:`user_image_spec`) in ``edgesim-user/``.
    """

    name: str
    context: Path
    registry_base: str
    include_package: bool = False
    wheel_requirements: str | None = None
    origin: Literal["project", "user"] = "project"
    #: ``registry_base`` is an image of this engine (a project image), built on as it is
    local_base: bool = False
    #: a project image built on another base than its usual one (the broker of a Debian
    #: release other than bookworm) lives in ``edgesim/<directory>-<variant>``
    variant: str = ""

    @property
    def repository(self) -> str:
        if self.origin == "user":
            return f"{USER_NAMESPACE}/{self.name}"
        suffix = f"-{self.variant}" if self.variant else ""
        return f"{PROJECT_NAMESPACE}/{self.context.name}{suffix}"


def user_image_spec(context: Path, registry_base: str) -> ImageSpec:
    """The spec of a user's build context: built like the project's images, with the
    pytest_edgesim source (the node SDK) as ``src/``, into ``edgesim-user/<directory>``.

    The directory name is made a valid repository name (lower case; other characters
    than letters, digits, ``.``, ``_`` and ``-`` become ``-``).
    """
    name = re.sub(r"[^a-z0-9._-]+", "-", context.name.lower())
    name = re.sub(r"^[._-]+|[._-]+$", "", re.sub(r"[._-]{2,}", "-", name)) or "node"
    return ImageSpec(name, context.resolve(), registry_base, include_package=True, origin="user")


@dataclass(frozen=True)
class BuiltImage:
    """An edgesim image present on the engine (a row of ``edgesim images list``).

    ``origin`` is "project" (``broker``, ``gateway``, the Debian ``base``) or "user" (built
    from ``context``, a scenario's ``docker.build``).
    """

    name: str
    tags: tuple[str, ...]
    size_bytes: int
    context_digest: str
    base: str
    origin: str = "project"
    context: str = ""

    @property
    def label(self) -> str:
        """The name, ``user:``-prefixed for a user's image."""
        return self.name if self.origin == "project" else f"user:{self.name}"

    def row(self, label_width: int = 8) -> str:
        """The line ``edgesim images list`` prints, the label padded to ``label_width``."""
        tags = ", ".join(self.tags) or "<untagged>"
        notes = [f"on {self.base}"] if self.base else []
        if self.origin == "user":
            notes.append(f"built from {self.context or 'a user context'}")
        details = f"  ({', '.join(notes)})" if notes else ""
        return f"{self.label:<{label_width}} {self.size_bytes / 1e6:7.1f} MB  {tags}{details}"

    def __str__(self) -> str:
        return self.row()


def containers_dir() -> Path:
    """The directory holding the build contexts (one subdirectory per image)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_containers", package.parent / "containers"):
        if candidate.is_dir():
            return candidate
    raise EdgesimError(f"no container build contexts under {package}; reinstall pytest-edgesim")


def image_specs() -> dict[str, ImageSpec]:
    root = containers_dir()
    return {
        "broker": ImageSpec("broker", root / "mqtt-broker", "eclipse-mosquitto:2"),
        "gateway": ImageSpec(
            "gateway",
            root / "gateway",
            "python:3.12-slim",
            include_package=True,
            wheel_requirements="requirements.txt",
        ),
    }


def ensure_image(
    name: str | ImageSpec,
    client: docker.DockerClient | None = None,
    offline: bool | None = None,
    progress: Progress | None = None,
    *,
    latest: bool = False,
    base: str | None = None,
) -> str:
    """The tag of the image ``name`` (``broker``, ``gateway`` or a spec), built if missing.

    ``offline``: ``True`` builds on the local Debian base, ``False`` requires the official
    base (pulling it), ``None`` decides as :func:`resolve_base` says; ``base`` (an image on
    the engine) overrides all three. Build output goes to
    ``progress`` line by line (by default to :mod:`pytest_edgesim.core.progress`, its steps as
    phases). Raises :class:`ImageBuildError` with the log's last lines.
    A build of a project image points ``<repository>:latest`` at it; ``latest=True`` does
    so also when the image was already built (``edgesim images build``).
    """
    spec = name if isinstance(name, ImageSpec) else _spec_named(name)
    if client is None:
        from pytest_edgesim.docker.engine import connect

        client = connect()
    report = progress or _to_progress_sink
    if base is None:
        base = resolve_base(spec, client, offline, report)
    base_id = client.images.get(base).id
    digest = context_digest(spec, base_id)
    tag = f"{spec.repository}:{digest[:16]}"
    if not image_present(client, tag):
        with build_lock("image-" + spec.repository.replace("/", "-")):
            if not image_present(client, tag):
                _build(spec, client, base, digest, tag, report)
                return tag
    if latest:
        _point_latest(client, spec, tag)
    return tag


def _point_latest(client: docker.DockerClient, spec: ImageSpec, tag: str) -> None:
    """Make ``<repository>:latest`` name ``tag`` (project images only: a user's images have
    no ``latest``, as two of their contexts may share a directory name)."""
    if spec.origin != "project":
        return
    latest = f"{spec.repository}:latest"
    try:
        current = client.images.get(latest).id
    except ImageNotFound:
        current = None
    if current != client.images.get(tag).id:
        client.api.tag(tag, spec.repository, "latest")


_OFFLINE_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def offline_from_environment() -> bool | None:
    """``$EDGESIM_OFFLINE``: True (always the Debian base), False (always the official one)
    or None (auto, also when unset); any other value is an error naming the variable."""
    value = os.environ.get(OFFLINE_ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in _OFFLINE_VALUES:
        raise ImageError(
            f"{OFFLINE_ENV}={os.environ[OFFLINE_ENV]!r}: expected 1, 0 or auto "
            "(also true/false, yes/no)"
        )
    return _OFFLINE_VALUES[value]


def resolve_base(
    spec: ImageSpec, client: docker.DockerClient, offline: bool | None, progress: Progress
) -> str:
    """The base image to build ``spec`` on, made available locally.

    In auto mode (``offline=None`` and ``$EDGESIM_OFFLINE`` unset or ``auto``): the official
    base if present, else the local Debian base if already made, else a pull of the official
    base, else (no registry) the Debian base is made now.
    """
    if spec.local_base:
        return require_image(client, spec.registry_base, f"image {spec.name!r}")
    if offline is None:
        offline = offline_from_environment()
    from pytest_edgesim.docker import debian_base

    if offline is True:
        return debian_base.ensure_base_image(client, progress=progress)
    if image_present(client, spec.registry_base):
        return spec.registry_base
    if offline is None and image_present(client, debian_base.default_recipe().tag):
        return debian_base.default_recipe().tag
    try:
        _pull(client, spec.registry_base, progress)
    except (APIError, ImageNotFound) as error:
        reason = getattr(error, "explanation", None) or str(error)
        if offline is False:
            raise ImageBuildError(
                f"cannot pull {spec.registry_base} ({reason}); without a registry, build on "
                "the local Debian base: `edgesim images build --offline` or EDGESIM_OFFLINE=1"
            ) from error
        progress(f"cannot pull {spec.registry_base} ({reason}); using the local Debian base")
        return debian_base.ensure_base_image(client, progress=progress)
    return spec.registry_base


def context_digest(spec: ImageSpec, base_image_id: str) -> str:
    """sha256 over the base image id and every source file that goes into the context."""
    digest = hashlib.sha256(f"{_DIGEST_SCHEME}\0{spec.name}\0{base_image_id}\0".encode())
    if spec.wheel_requirements:
        digest.update(f"{PIP_TOOL}\0{','.join(WHEEL_PYTHON_VERSIONS)}\0".encode())
    for relative, path in sorted(_context_sources(spec)):
        digest.update(relative.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def list_images(client: docker.DockerClient | None = None) -> list[BuiltImage]:
    """Every image edgesim built (and the Debian base), newest first."""
    if client is None:
        from pytest_edgesim.docker.engine import connect

        client = connect()
    found = []
    for image in client.images.list(filters={"label": IMAGE_LABEL}):
        labels = image.labels or {}
        name = labels.get(IMAGE_LABEL, "?")
        # images built before the origin label: the project's are the ones it names
        project = (*IMAGE_NAMES, "base")
        origin = labels.get(ORIGIN_LABEL) or ("project" if name in project else "user")
        found.append(
            (
                image.attrs.get("Created", ""),
                BuiltImage(
                    name=name,
                    tags=tuple(sorted(image.tags)),
                    size_bytes=int(image.attrs.get("Size", 0)),
                    context_digest=labels.get(DIGEST_LABEL, ""),
                    base=labels.get(BASE_LABEL, ""),
                    origin=origin,
                    context=labels.get(CONTEXT_LABEL, ""),
                ),
            )
        )
    return [built for _, built in sorted(found, key=lambda item: item[0], reverse=True)]


def _spec_named(name: str) -> ImageSpec:
    specs = image_specs()
    if name not in specs:
        raise EdgesimError(f"unknown image {name!r}; the images are {', '.join(specs)}")
    return specs[name]


def _context_sources(spec: ImageSpec) -> Iterator[tuple[str, Path]]:
    """(path inside the context, file) for every source file of the context."""
    for path in spec.context.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path.relative_to(spec.context).as_posix(), path
    if spec.include_package:
        package = Path(__file__).resolve().parent.parent
        for path in package.rglob("*"):
            relative = path.relative_to(package)
            if relative.parts[0] == "_containers" or "__pycache__" in relative.parts:
                continue
            if path.is_file() and (path.suffix == ".py" or path.name == "py.typed"):
                yield f"src/pytest_edgesim/{relative.as_posix()}", path


def _build(
    spec: ImageSpec,
    client: docker.DockerClient,
    base: str,
    digest: str,
    tag: str,
    progress: Progress,
) -> None:
    progress(f"building {tag} from {spec.context} on {base}")
    with tempfile.TemporaryDirectory(prefix=f"edgesim-{spec.name}-") as context:
        for relative, path in _context_sources(spec):
            target = Path(context, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        if spec.wheel_requirements:
            fetch_wheels(
                spec.context / spec.wheel_requirements,
                Path(context, "wheels"),
                _engine_arch(client),
                progress,
            )
        labels = {
            IMAGE_LABEL: spec.name,
            ORIGIN_LABEL: spec.origin,
            DIGEST_LABEL: digest,
            BASE_LABEL: base,
            "edgesim.version": __version__,
        }
        if spec.origin == "user":
            labels[CONTEXT_LABEL] = str(spec.context)
        # One LABEL instruction: the builder's own labels option costs a step (~1 s) each.
        with open(Path(context, "Dockerfile"), "a") as dockerfile:
            pairs = " ".join(f"{key}={json.dumps(value)}" for key, value in labels.items())
            dockerfile.write(f"\nLABEL {pairs}\n")
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)

        def emit(line: str) -> None:
            tail.append(line)
            progress(line)

        try:
            stream = client.api.build(
                path=context,
                tag=tag,
                buildargs={"BASE_IMAGE": base},
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            )
            error = _follow_build(stream, emit)
        except DockerException as exception:
            error = str(exception)
    if error is not None:
        raise ImageBuildError(f"building {spec.name} image {tag} failed: {error}", list(tail))
    _point_latest(client, spec, tag)
    progress(f"built {tag}")
    prune_images(client, spec.repository, spare=tag)


def prune_images(
    client: docker.DockerClient,
    repository: str,
    keep: int = KEEP_BUILDS,
    keep_recent_s: float = KEEP_RECENT_S,
    now: float | None = None,
    spare: str | None = None,
) -> list[str]:
    """Untag the builds in ``repository`` (``edgesim/gateway``) beyond the ``keep`` newest
    that are also older than ``keep_recent_s``, and never the image tagged ``spare`` (the one
    just built: a build the cache answered keeps its first creation time); returns the tags
    removed.

    A recent build stays whatever its rank, since another checkout sharing the engine may be
    using it (each source tree has its own content hash); an image a container still uses
    stays too (the engine refuses), so a running session is safe.
    """
    now = time.time() if now is None else now
    builds = client.images.list(name=repository, filters={"label": IMAGE_LABEL})
    builds.sort(key=lambda image: str(image.attrs.get("Created", "")), reverse=True)
    removed = []
    for image in builds[keep:]:
        created = _created_epoch_s(str(image.attrs.get("Created", "")))
        if created is None or now - created < keep_recent_s:
            continue
        if spare is not None and spare in image.tags:
            continue
        for tag in image.tags:
            if not tag.startswith(f"{repository}:"):
                continue
            try:
                client.images.remove(tag, noprune=False)
            except APIError:
                continue
            removed.append(tag)
    return removed


def _created_epoch_s(created: str) -> float | None:
    """The engine's ``Created`` (RFC 3339 in UTC) as epoch seconds; None if unreadable."""
    try:
        moment = datetime.datetime.strptime(created[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def _follow_build(stream: Iterator[dict[str, object]], emit: Progress) -> str | None:
    """Feed the build's output to ``emit`` line by line; the error message, if it failed."""
    pending = ""
    for chunk in stream:
        if "error" in chunk:
            if pending:
                emit(pending)
            message = str(chunk["error"]).strip()
            emit(message)
            return message
        text = chunk.get("stream")
        if isinstance(text, str):
            pending += text
            *lines, pending = pending.split("\n")
            for line in lines:
                emit(line.rstrip("\r"))
        elif "status" in chunk:
            emit(" ".join(str(chunk[key]) for key in ("id", "status") if key in chunk))
    if pending:
        emit(pending)
    return None


def fetch_wheels(requirements: Path, destination: Path, arch: str, progress: Progress) -> None:
    """Put pip and the wheels of ``requirements`` for Linux/``arch`` into ``destination``.

    The first time, the host's pip downloads them (honouring ``PIP_INDEX_URL``,
    ``PIP_FIND_LINKS`` and the rest of its configuration); the set is then kept in the
    cache directory under a digest of what was asked, so later builds need no index.
    """
    key = hashlib.sha256(
        "\0".join([PIP_TOOL, arch, *WHEEL_PYTHON_VERSIONS, requirements.read_text()]).encode()
    ).hexdigest()[:16]
    cached = cache_dir() / "wheels" / f"{arch}-{key}"
    if not (cached / ".complete").exists():
        _download_wheels(requirements, cached, arch, progress)
    destination.mkdir(parents=True, exist_ok=True)
    for wheel in cached.glob("*.whl"):
        shutil.copyfile(wheel, destination / wheel.name)


def _download_wheels(requirements: Path, cached: Path, arch: str, progress: Progress) -> None:
    """pip download for each supported CPython, in parallel, into ``cached``."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix="partial-", dir=cached.parent))

    def download(python_version: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
            "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
            "--platform", f"manylinux_2_28_{arch}", "--platform", f"manylinux2014_{arch}",
            "--dest", str(partial / python_version), "-r", str(requirements), PIP_TOOL,
        ]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True)

    try:
        versions = WHEEL_PYTHON_VERSIONS
        with ThreadPoolExecutor(max_workers=len(versions)) as pool:
            results = dict(zip(versions, pool.map(download, versions), strict=True))
        failed = {version: run for version, run in results.items() if run.returncode != 0}
        if len(failed) == len(results):
            stderr = [line for run in failed.values() for line in run.stderr.splitlines()]
            raise ImageBuildError(
                f"cannot download the wheels in {requirements}: pip download failed for every "
                "Python version; give pip an index or a wheel directory (PIP_INDEX_URL, "
                "PIP_FIND_LINKS)",
                stderr[-LOG_TAIL_LINES:],
            )
        for version, run in failed.items():
            progress(f"no wheels for CPython {version}: {run.stderr.strip().splitlines()[-1:]}")
        cached.mkdir(parents=True, exist_ok=True)
        for wheel in partial.glob("*/*.whl"):
            shutil.copyfile(wheel, cached / wheel.name)
        (cached / ".complete").touch()
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    names = sorted(wheel.name for wheel in cached.glob("*.whl"))
    progress(f"wheels for {arch}: {', '.join(names)}")


def _engine_arch(client: docker.DockerClient) -> str:
    arch = str(client.info().get("Architecture", "x86_64"))
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def _pull(client: docker.DockerClient, reference: str, progress: Progress) -> None:
    repository, tag = parse_repository_tag(reference)
    progress(f"pulling {reference}")
    for chunk in client.api.pull(repository, tag or "latest", stream=True, decode=True):
        if "error" in chunk:
            raise APIError(str(chunk["error"]))
        if "progressDetail" not in chunk or not chunk["progressDetail"]:
            progress(" ".join(str(chunk[key]) for key in ("id", "status") if key in chunk))


def require_image(client: docker.DockerClient, reference: str, owner: str) -> str:
    """``reference`` when the engine has it; else an :class:`ImageError` naming ``owner``
    (``gateway 'gw'``) and the image. edgesim does not pull a ``docker.image``."""
    try:
        client.images.get(reference)
    except ImageNotFound:
        raise ImageError(
            f"{owner}: docker.image {reference!r} is not on the Docker engine (edgesim does not "
            f"pull it); pull or build it first (docker pull {reference}, or docker build -t "
            f"{reference} DIR), or check the name"
        ) from None
    except APIError as error:
        raise ImageError(
            f"{owner}: docker.image {reference!r} cannot be used: {error.explanation or error}"
        ) from None
    return reference


#: the lines of a build that are phases (a line of their own in the pytest terminal and in
#: ``edgesim run``): this module's own steps and the builder's ``Step N/M``
_PHASES = (
    "building ",
    "built ",
    "pulling ",
    "cannot pull ",
    "making the Debian base",
    "no wheels ",
    "Step ",
)


def _to_progress_sink(line: str) -> None:
    """Report a line to :mod:`pytest_edgesim.core.progress` (when no ``progress`` is given)."""
    from pytest_edgesim.core import progress

    if line.startswith(_PHASES):
        progress.phase(line)
    else:
        progress.detail(line)
