from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pytest_edgesim.docker import debian_base
from pytest_edgesim.docker.images import (
    DIGEST_LABEL,
    IMAGE_LABEL,
    LOG_TAIL_LINES,
    ImageBuildError,
    ImageSpec,
    containers_dir,
    context_digest,
    ensure_image,
    image_specs,
    list_images,
    resolve_base,
)
from pytest_edgesim.docker.labels import resource_labels

UNPULLABLE = "edgesim-test.invalid/no-such-base:1"


def _spec(root: Path, name: str, dockerfile: str) -> ImageSpec:
    context = root / name
    context.mkdir()
    (context / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    return ImageSpec(name, context, registry_base=UNPULLABLE)


@pytest.fixture
def scratch_specs(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[Path]:
    """A directory for throwaway build contexts; their images are removed afterwards."""
    yield tmp_path
    for image in docker_client.images.list(filters={"label": IMAGE_LABEL}):
        if any(tag.startswith("edgesim/edgesim-test-") for tag in image.tags):
            docker_client.images.remove(image.id, force=True)


def test_the_build_contexts_ship_with_the_package() -> None:
    root = containers_dir()
    assert (root / "mqtt-broker" / "Dockerfile").is_file()
    assert (root / "mqtt-broker" / "mosquitto.conf").is_file()
    assert (root / "gateway" / "Dockerfile").is_file()
    assert set(image_specs()) == {"broker", "gateway"}


def test_an_unchanged_context_is_never_rebuilt_and_a_changed_one_is(
    docker_client: docker.DockerClient, scratch_specs: Path
) -> None:
    spec = _spec(
        scratch_specs,
        "edgesim-test-cached",
        """\
        ARG BASE_IMAGE
        FROM ${BASE_IMAGE}
        COPY Dockerfile /context-marker
        """,
    )
    built: list[str] = []
    tag = ensure_image(spec, docker_client, progress=built.append)
    assert any(line.startswith("built ") for line in built)
    image_id = docker_client.images.get(tag).id

    again: list[str] = []
    assert ensure_image(spec, docker_client, progress=again.append) == tag
    assert again == []
    assert docker_client.images.get(tag).id == image_id
    assert docker_client.images.get(tag).labels[DIGEST_LABEL].startswith(tag.split(":")[1])

    (spec.context / "extra.txt").write_text("changed")
    assert ensure_image(spec, docker_client) != tag


def test_a_failed_build_raises_with_the_last_log_lines(
    docker_client: docker.DockerClient, scratch_specs: Path
) -> None:
    spec = _spec(
        scratch_specs,
        "edgesim-test-broken",
        """\
        ARG BASE_IMAGE
        FROM ${BASE_IMAGE}
        RUN for i in $(seq 1 60); do echo "log-line-$i"; done; exit 3
        """,
    )
    streamed: list[str] = []
    with pytest.raises(ImageBuildError) as raised:
        ensure_image(spec, docker_client, progress=streamed.append)
    error = raised.value
    assert "returned a non-zero code: 3" in str(error)
    assert len(error.log_tail) == LOG_TAIL_LINES
    assert "log-line-60" in str(error)
    assert "log-line-10" not in error.log_tail
    assert "log-line-1" in streamed


def test_without_a_registry_the_official_base_is_a_clear_error(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    spec = ImageSpec("probe", tmp_path, registry_base=UNPULLABLE)
    with pytest.raises(ImageBuildError, match=r"cannot pull .*edgesim images build --offline"):
        resolve_base(spec, docker_client, offline=False, progress=lambda line: None)


def test_an_official_base_present_locally_is_used(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    stand_in = "edgesim/edgesim-test-official:1"
    debian = debian_base.ensure_base_image(docker_client)
    docker_client.images.get(debian).tag(stand_in)
    try:
        spec = ImageSpec("probe", tmp_path, registry_base=stand_in)
        assert resolve_base(spec, docker_client, None, lambda line: None) == stand_in
        forced = resolve_base(spec, docker_client, True, lambda line: None)
        assert forced == debian_base.default_recipe().tag
    finally:
        docker_client.images.remove(stand_in)


def test_offline_mode_builds_on_the_debian_base(docker_client: docker.DockerClient) -> None:
    tag = ensure_image("broker", docker_client, offline=True)
    labels = docker_client.images.get(tag).labels
    assert labels["edgesim.base"] == debian_base.default_recipe().tag


def test_list_images_shows_the_built_images(docker_client: docker.DockerClient) -> None:
    tag = ensure_image("broker", docker_client)
    broker = next(image for image in list_images(docker_client) if tag in image.tags)
    assert broker.name == "broker"
    assert broker.size_bytes > 0
    assert tag.endswith(broker.context_digest[:16])
    assert "broker" in str(broker)


def test_the_context_digest_covers_files_and_base(tmp_path: Path) -> None:
    spec = ImageSpec("probe", tmp_path, registry_base=UNPULLABLE)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    first = context_digest(spec, "sha256:aaa")
    assert context_digest(spec, "sha256:aaa") == first
    assert context_digest(spec, "sha256:bbb") != first
    (tmp_path / "Dockerfile").write_text("FROM scratch\n# edited\n")
    assert context_digest(spec, "sha256:aaa") != first


def test_the_gateway_image_imports_the_package(
    docker_client: docker.DockerClient, test_session: str
) -> None:
    tag = ensure_image("gateway", docker_client)
    config = docker_client.images.get(tag).attrs["Config"]
    assert config["Cmd"] == ["python3", "-m", "pytest_edgesim.gateway_main"]
    output = docker_client.containers.run(
        tag,
        ["python3", "-c", "import pytest_edgesim, paho.mqtt, yaml; print(paho.mqtt.__version__)"],
        labels=resource_labels("smoke", session=test_session),
        remove=True,
    )
    assert output.decode().strip().startswith("2.")


def test_the_debian_mirror_is_read_from_apt_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one-line.example/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb822.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\n"
    )
    assert debian_base.apt_mirror("bookworm", tmp_path) == "http://one-line.example/debian"
    (tmp_path / "sources.list").unlink()
    assert debian_base.apt_mirror("bookworm", tmp_path) == "http://deb822.example/debian"
    assert debian_base.apt_mirror("trixie", tmp_path) is None


def test_the_base_recipe_tag_follows_its_content() -> None:
    recipe = debian_base.BaseRecipe()
    assert recipe.tag.startswith("edgesim/base:bookworm-")
    assert debian_base.BaseRecipe(mirror="http://other.example/debian").tag != recipe.tag
    assert debian_base.BaseRecipe(packages=("python3",)).tag != recipe.tag
