"""The image that runs a user's gateway logic: the project's gateway image plus the user's code.

``logic: 'mypkg.gateway:MovingAverage'`` names a module this process can import; the image
gets the top-level package (``mypkg``, a directory) or module (a single ``.py`` file) it
comes from, copied into ``/opt/edgesim/user`` on top of the gateway image (Python, paho-mqtt,
PyYAML and pytest_edgesim). The build checks that the logic's module imports there, so a
dependency the image lacks is a build error naming it, not a failed run. Built offline and
cached by content like the project's images, as ``edgesim-user/logic-<package>``.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_edgesim.docker.build_cache import ImageError, Progress, build_lock, cache_dir
from pytest_edgesim.docker.images import ImageSpec, ensure_image

if TYPE_CHECKING:
    import docker

USER_DIR = "/opt/edgesim/user"

_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
COPY user/ {user_dir}/
ENV PYTHONPATH={user_dir}:/opt/edgesim/lib
RUN python3 -c "import importlib; importlib.import_module({module!r})"
"""


def logic_source(reference: str, search: Path | None = None) -> Path:
    """The package directory or module file that ``module:Name`` comes from: where this
    Python imports it from, else beside the scenario file (``search``)."""
    top = reference.partition(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None and search is not None:
        for candidate in (search / top, search / f"{top}.py"):
            if candidate.is_dir() or candidate.is_file():
                return candidate
    if spec is None:
        raise ImageError(
            f"logic {reference!r}: cannot find {top!r} to put in the gateway image: install "
            "your package (pip install -e .), put its directory on sys.path (in pytest: the "
            "ini option pythonpath = .), or keep it beside the scenario file"
        )
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    if spec.origin is None or not spec.origin.endswith(".py"):
        raise ImageError(f"logic {reference!r}: {top!r} is not Python source ({spec.origin})")
    return Path(spec.origin)


def ensure_logic_image(
    reference: str,
    client: docker.DockerClient,
    search: Path | None = None,
    progress: Progress | None = None,
) -> str:
    """The tag of the image serving the logic ``reference``, built when its code changed
    (``search``: the scenario's directory, where the logic may be)."""
    source = logic_source(reference, search)
    base = ensure_image("gateway", client, progress=progress)
    name = "logic-" + source.stem.lower().replace("_", "-")
    context = cache_dir() / "logic-contexts" / name
    with build_lock(f"context-{name}"):
        shutil.rmtree(context, ignore_errors=True)
        (context / "user").mkdir(parents=True)
        if source.is_dir():
            shutil.copytree(
                source,
                context / "user" / source.name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        else:
            shutil.copyfile(source, context / "user" / source.name)
        module = reference.partition(":")[0]
        (context / "Dockerfile").write_text(_DOCKERFILE.format(user_dir=USER_DIR, module=module))
        spec = ImageSpec(name, context, base, origin="user", local_base=True)
        return ensure_image(spec, client, progress=progress)
