"""What every image build shares: the image label, the build errors, the host's cache
directory (downloaded wheels, build locks) and the lock that keeps xdist workers from
building one tag twice at once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from docker.errors import ImageNotFound

from pytest_edgesim.errors import EdgesimError

#: where a build reports its progress, one line at a time
Progress = Callable[[str], None]

IMAGE_LABEL = "edgesim.image"
CACHE_ENV = "EDGESIM_CACHE_DIR"


class ImageError(EdgesimError):
    """An image a scenario asks for cannot be had: it is not on the engine, its build
    context is missing, or its build fails. A configuration problem, not a test outcome."""


class ImageBuildError(ImageError):
    """An image could not be built; the message ends with the last lines of the build log."""

    def __init__(self, message: str, log_tail: list[str] | None = None):
        self.log_tail = list(log_tail or [])
        if self.log_tail:
            message += f"\n--- last {len(self.log_tail)} lines of the build log ---\n"
            message += "\n".join(self.log_tail)
        super().__init__(message)


def cache_dir() -> Path:
    """Where downloaded wheels and build locks live (``$EDGESIM_CACHE_DIR`` overrides)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        path = Path(configured)
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pytest-edgesim"
    path.mkdir(parents=True, exist_ok=True)
    return path


def image_present(client: docker.DockerClient, reference: str) -> bool:
    """Whether the engine has ``reference`` (a tag or an id) locally."""
    try:
        client.images.get(reference)
    except ImageNotFound:
        return False
    return True


@contextmanager
def build_lock(name: str) -> Iterator[None]:
    """An exclusive lock between processes on this host (xdist workers building together)."""
    try:
        import fcntl
    except ImportError:  # Windows: concurrent builds of one tag are wasteful, not wrong
        yield
        return
    locks = cache_dir() / "locks"
    locks.mkdir(exist_ok=True)
    with open(locks / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
