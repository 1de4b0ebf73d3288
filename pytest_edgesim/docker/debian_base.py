"""A Debian base image made without a registry: a minbase root filesystem, ``docker import``ed.

The root filesystem comes from ``mmdebstrap`` when installed (faster; works without root
through user namespaces) or ``debootstrap`` (needs root), from the Debian mirror apt uses
on this host (``$EDGESIM_DEBIAN_MIRROR`` overrides). Everything the images need is
installed at this point (mosquitto, python3, iproute2, nftables), so Dockerfiles built on
it only copy and configure. The tag is a digest of the recipe, so it is made once per engine.
The project's base is bookworm; a broker of another Debian release (trixie, forky) builds
on a base of that release with Mosquitto only (:func:`broker_recipe`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

from pytest_edgesim.docker.build_cache import (
    IMAGE_LABEL,
    ImageBuildError,
    Progress,
    build_lock,
    cache_dir,
    image_present,
)
from pytest_edgesim.docker.container import LOG_TAIL_LINES

SUITE = "bookworm"
PACKAGES = ("mosquitto", "python3", "iproute2", "nftables")
#: the packages of a broker's base for another release than bookworm (no Python in it)
BROKER_PACKAGES = ("mosquitto", "iproute2", "nftables")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
MIRROR_ENV = "EDGESIM_DEBIAN_MIRROR"
REPOSITORY = "edgesim/base"
RECIPE_LABEL = "edgesim.recipe"
# Bump when the way the root filesystem is made or trimmed changes.
_RECIPE_SCHEME = "edgesim-debian-base-v1"
_TRIMMED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")
_DPKG_EXCLUDES = [f"path-exclude=/{path}/*" for path in _TRIMMED] + [
    "path-include=/usr/share/doc/*/copyright"
]
_MMDEBSTRAP_HOOKS = ("/usr/share/mmdebstrap/hooks/merged-usr",)
_IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/bash"]',
)


@dataclass(frozen=True)
class BaseRecipe:
    """What goes into the base: a Debian suite, the packages added to minbase, the mirror."""

    suite: str = SUITE
    packages: tuple[str, ...] = PACKAGES
    mirror: str = DEFAULT_MIRROR

    @property
    def digest(self) -> str:
        text = "\0".join([_RECIPE_SCHEME, self.suite, self.mirror, *sorted(self.packages)])
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}:{self.suite}-{self.digest[:12]}"


def default_recipe(suite: str = SUITE, packages: tuple[str, ...] = PACKAGES) -> BaseRecipe:
    """The recipe of the base for ``suite`` (bookworm: the project's base): from the mirror
    ``$EDGESIM_DEBIAN_MIRROR`` names, else the one apt on this host uses for the suite (or
    for bookworm, as the archive serves every release), else deb.debian.org."""
    mirror = os.environ.get(MIRROR_ENV) or apt_mirror(suite) or apt_mirror(SUITE) or DEFAULT_MIRROR
    return BaseRecipe(suite=suite, packages=packages, mirror=mirror.rstrip("/"))


def broker_recipe(release: str) -> BaseRecipe:
    """The base a broker of Debian ``release`` builds on: the project's base for bookworm
    (so ``release: bookworm`` is the default broker), else minbase with Mosquitto only."""
    if release == SUITE:
        return default_recipe()
    return default_recipe(release, BROKER_PACKAGES)


def apt_mirror(suite: str, apt_dir: Path = Path("/etc/apt")) -> str | None:
    """The first http(s) URI apt on this host uses for ``suite``, if any."""
    for uri, suites in _apt_sources(apt_dir):
        if suite in suites and uri.startswith(("http://", "https://")):
            return uri
    return None


def ensure_base_image(
    client: docker.DockerClient, recipe: BaseRecipe | None = None, progress: Progress | None = None
) -> str:
    """The tag of the Debian base, made now if the engine does not have it yet."""
    recipe = recipe or default_recipe()
    if image_present(client, recipe.tag):
        return recipe.tag
    with build_lock(f"debian-base-{recipe.suite}"):
        if not image_present(client, recipe.tag):
            build_base_image(client, recipe, progress or (lambda line: None))
    return recipe.tag


def build_base_image(client: docker.DockerClient, recipe: BaseRecipe, progress: Progress) -> None:
    """Make the root filesystem, trim it, and import it as ``recipe.tag``."""
    progress(f"making the Debian base {recipe.tag} ({recipe.suite} from {recipe.mirror})")
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)

    def emit(line: str) -> None:
        tail.append(line)
        progress(line)

    if shutil.which("mmdebstrap"):
        # Without the merged-usr hook, bookworm pulls in usrmerge and with it 50 MB of perl.
        hooks = [f"--hook-dir={path}" for path in _MMDEBSTRAP_HOOKS if Path(path).is_dir()]
        command = [
            "mmdebstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}",
            '--aptopt=APT::Install-Recommends "false"',
            # A testing release's Release file is valid for a week: a mirror or snapshot
            # that lags behind is still signed, so accept it (forky, on a frozen archive).
            '--aptopt=Acquire::Check-Valid-Until "false"', *hooks,
            *(f"--dpkgopt={option}" for option in _DPKG_EXCLUDES),
            recipe.suite, "-", recipe.mirror,
        ]  # fmt: skip
        _import_tar(client, command, recipe, emit, tail)
        return
    if not shutil.which("debootstrap"):
        raise ImageBuildError(
            "building without a registry needs mmdebstrap or debootstrap on this host: "
            "`apt-get install -y mmdebstrap` (or debootstrap), then `edgesim images build`"
        )
    if os.geteuid() != 0:
        raise ImageBuildError(
            "debootstrap needs root: run `sudo edgesim images build --offline` once, "
            "or install mmdebstrap, which does not"
        )
    with tempfile.TemporaryDirectory(prefix="edgesim-rootfs-", dir=cache_dir()) as workdir:
        rootfs = Path(workdir, "rootfs")
        try:
            _run(
                [
                    "debootstrap", "--variant=minbase",
                    f"--include={','.join(recipe.packages)}",
                    recipe.suite, str(rootfs), recipe.mirror,
                ],
                emit,
                tail,
            )  # fmt: skip
            _trim(rootfs)
            command = ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."]
            _import_tar(client, command, recipe, emit, tail)
        finally:
            _unmount_below(rootfs)


def _import_tar(
    client: docker.DockerClient,
    command: list[str],
    recipe: BaseRecipe,
    emit: Progress,
    tail: deque[str],
) -> None:
    """Stream ``command``'s stdout (a root filesystem tar) into the engine as ``recipe.tag``."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    errors = threading.Thread(target=_forward, args=(process.stderr, emit), daemon=True)
    errors.start()
    changes = [*_IMAGE_CHANGES, f"LABEL {IMAGE_LABEL}=base {RECIPE_LABEL}={recipe.digest}"]
    try:
        response = client.api.import_image(src=process.stdout, changes=changes, stream_src=True)
    except docker.errors.DockerException as error:
        process.kill()
        process.wait()
        raise ImageBuildError(f"importing the Debian base failed: {error}", list(tail)) from error
    finally:
        returncode = process.wait()
        errors.join()
    image_id = _imported_id(response)
    if returncode != 0 or image_id is None:
        if image_id is not None:
            client.images.remove(image_id, force=True)
        raise ImageBuildError(
            f"making the Debian base failed ({command[0]} exited with {returncode})", list(tail)
        )
    repository, _, tag = recipe.tag.partition(":")
    client.api.tag(image_id, repository, tag)
    size_mb = client.images.get(image_id).attrs.get("Size", 0) / 1e6
    emit(f"made {recipe.tag} ({size_mb:.0f} MB)")


def _run(command: list[str], emit: Progress, tail: deque[str]) -> None:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    _forward(process.stdout, emit)
    if process.wait() != 0:
        raise ImageBuildError(
            f"{command[0]} failed with exit status {process.returncode}", list(tail)
        )


def _forward(stream: object, emit: Progress) -> None:
    for raw in stream:  # type: ignore[attr-defined]
        emit(raw.decode(errors="replace").rstrip())


def _imported_id(response: str) -> str | None:
    for line in response.splitlines():
        try:
            status = json.loads(line).get("status", "")
        except ValueError:
            continue
        if isinstance(status, str) and status.startswith("sha256:"):
            return status
    return None


def _trim(rootfs: Path) -> None:
    """Drop what a test image never reads: apt's caches and lists, docs, man pages, locales."""
    for relative in ("var/cache/apt/archives", "var/lib/apt/lists", *_TRIMMED):
        for path in (rootfs / relative).glob("*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    excludes = rootfs / "etc/dpkg/dpkg.cfg.d/edgesim-slim"
    excludes.write_text("".join(f"{option}\n" for option in _DPKG_EXCLUDES))


def _unmount_below(rootfs: Path) -> None:
    """Unmount anything a failed debootstrap left mounted inside ``rootfs``."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(rootfs.resolve()) + "/"
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def _apt_sources(apt_dir: Path) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(URI, suites) of every ``deb`` source, from one-line and deb822 files."""
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        for line in _read_lines(path):
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            if len(words) > 1 and words[1].startswith("["):
                while words and not words[1].endswith("]"):
                    del words[1]
                del words[1]
            if len(words) >= 3:
                yield words[1], (words[2],)
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in "\n".join(_read_lines(path)).split("\n\n"):
            fields = _deb822_fields(stanza)
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    yield uri, tuple(fields.get("suites", "").split())


def _deb822_fields(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if line.startswith("#"):
            continue
        if line[:1] in (" ", "\t") and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []
