from __future__ import annotations

import contextlib
import shutil
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pytest_edgesim.docker import debian_base
from pytest_edgesim.docker.images import (
    CONTEXT_LABEL,
    DIGEST_LABEL,
    IMAGE_LABEL,
    LOG_TAIL_LINES,
    ImageBuildError,
    ImageError,
    ImageSpec,
    containers_dir,
    context_digest,
    ensure_image,
    image_specs,
    list_images,
    offline_from_environment,
    resolve_base,
    user_image_spec,
)
from pytest_edgesim.docker.labels import resource_labels

UNPULLABLE = "edgesim-test.invalid/no-such-base:1"
REPOSITORY = Path(__file__).resolve().parents[2]


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
    assert config["Cmd"] == ["python3", "-m", "pytest_edgesim.gateway"]
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


# --- a user's build context never takes a project image's name ------------------------------
@pytest.fixture
def user_contexts(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[Path]:
    """A directory for a user's build contexts; the images built from it are removed after."""
    yield tmp_path
    root = str(tmp_path.resolve())
    for image in docker_client.images.list(filters={"label": CONTEXT_LABEL}):
        if (image.labels or {}).get(CONTEXT_LABEL, "").startswith(root):
            docker_client.images.remove(image.id, force=True)


def test_a_user_node_named_gateway_does_not_replace_the_gateway_image(
    docker_client: docker.DockerClient,
    user_contexts: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The review's repro: a lockstep node built from a directory called ``gateway``."""
    from pytest_edgesim.cli.app import main

    context = user_contexts / "clash" / "gateway"
    shutil.copytree(REPOSITORY / "containers" / "threshold-node", context)
    scenario = (REPOSITORY / "example_tests" / "threshold-node.yaml").read_text()
    scenario = scenario.replace("build: ../containers/threshold-node", "build: clash/gateway")
    (user_contexts / "clash.yaml").write_text(scenario)
    project_tag = ensure_image("gateway", docker_client)

    assert main(["run", str(user_contexts / "clash.yaml"), "--duration", "5s"]) == 0
    capsys.readouterr()
    (user_built,) = [
        image
        for image in list_images(docker_client)
        if image.origin == "user" and image.context == str(context.resolve())
    ]
    assert user_built.tags and all(
        tag.startswith("edgesim-user/gateway:") for tag in user_built.tags
    )
    latest = docker_client.images.get("edgesim/gateway:latest")
    assert latest.labels.get(CONTEXT_LABEL) is None  # the project's, not the user's node
    assert docker_client.images.get(project_tag).labels[IMAGE_LABEL] == "gateway"
    assert latest.id != docker_client.images.get(user_built.tags[0]).id

    assert main(["images", "list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    (user_row,) = [row for row in rows if str(context.resolve()) in row]
    assert user_row.startswith("user:gateway ")
    assert any(row.startswith("gateway ") and project_tag in row for row in rows)


def test_a_user_context_named_mqtt_broker_does_not_replace_the_broker_image(
    docker_client: docker.DockerClient, user_contexts: Path
) -> None:
    from pytest_edgesim.core.scenario.schema import GatewaySpec
    from pytest_edgesim.docker.lockstep_gateway import resolve_image

    context = user_contexts / "mqtt-broker"
    context.mkdir()
    (context / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY src/ /src/\n")
    broker_latest = docker_client.images.get(ensure_image("broker", docker_client, latest=True)).id
    spec = GatewaySpec.model_validate(
        {
            "name": "gw",
            "implementation": "docker",
            "subscribe": "s/#",
            "docker": {"mode": "lockstep", "build": "mqtt-broker"},
        }
    )
    tag, command = resolve_image(spec, docker_client, user_contexts)
    assert tag.startswith("edgesim-user/mqtt-broker:") and command is None
    assert docker_client.images.get("edgesim/mqtt-broker:latest").id == broker_latest
    built = docker_client.images.list(name="edgesim-user/mqtt-broker")
    assert "edgesim-user/mqtt-broker:latest" not in [tag for image in built for tag in image.tags]


def test_user_image_names_are_valid_repositories(tmp_path: Path) -> None:
    assert user_image_spec(tmp_path / "My Node!", "base").repository == "edgesim-user/my-node"
    assert user_image_spec(tmp_path / "gateway", "base").repository == "edgesim-user/gateway"
    assert user_image_spec(tmp_path / "__", "base").repository == "edgesim-user/node"
    assert image_specs()["gateway"].repository == "edgesim/gateway"


def test_images_build_points_latest_at_the_current_build(
    docker_client: docker.DockerClient, scratch_specs: Path
) -> None:
    """``edgesim images build`` re-points a ``latest`` that another build took."""
    spec = _spec(
        scratch_specs,
        "edgesim-test-latest",
        """\
        ARG BASE_IMAGE
        FROM ${BASE_IMAGE}
        COPY Dockerfile /context-marker
        """,
    )
    latest = "edgesim/edgesim-test-latest:latest"
    first = ensure_image(spec, docker_client)
    assert docker_client.images.get(latest).id == docker_client.images.get(first).id
    dockerfile = (spec.context / "Dockerfile").read_text()
    (spec.context / "Dockerfile").write_text(dockerfile + "# another version\n")
    second = ensure_image(spec, docker_client)
    assert docker_client.images.get(latest).id == docker_client.images.get(second).id

    (spec.context / "Dockerfile").write_text(dockerfile)  # back to the first version
    assert ensure_image(spec, docker_client) == first
    assert docker_client.images.get(latest).id == docker_client.images.get(second).id
    assert ensure_image(spec, docker_client, latest=True) == first
    assert docker_client.images.get(latest).id == docker_client.images.get(first).id


@pytest.mark.parametrize(
    ("value", "offline"),
    [("", None), ("auto", None), ("1", True), ("Yes", True), ("0", False), ("false", False)],
)
def test_edgesim_offline_is_read_strictly(
    monkeypatch: pytest.MonkeyPatch, value: str, offline: bool | None
) -> None:
    monkeypatch.setenv("EDGESIM_OFFLINE", value)
    assert offline_from_environment() is offline


def test_an_unknown_edgesim_offline_value_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESIM_OFFLINE", "maybe")
    with pytest.raises(ImageError, match="EDGESIM_OFFLINE='maybe': expected 1, 0 or auto"):
        offline_from_environment()


class _FakeImage:
    def __init__(self, tag: str, created: str):
        self.tags = [tag]
        self.attrs = {"Created": created}


class _FakeImages:
    def __init__(self, images: list[_FakeImage]):
        self.images = images
        self.removed: list[str] = []

    def list(self, name: str, filters: dict[str, str]) -> list[_FakeImage]:
        return list(self.images)

    def remove(self, tag: str, noprune: bool) -> None:
        self.removed.append(tag)


class _FakeClient:
    def __init__(self, images: list[_FakeImage]):
        self.images = _FakeImages(images)


def test_pruning_keeps_the_newest_builds_and_every_recent_one():
    # Five builds: the three newest are kept by rank, the fourth because it is recent (another
    # checkout on a shared engine may be using it), the fifth is old and goes.
    from pytest_edgesim.docker.images import _created_epoch_s, prune_images

    created = [
        "2026-12-04T15:00:00.123456789Z",
        "2026-12-04T14:00:00Z",
        "2026-12-04T13:00:00Z",
        "2026-12-04T12:00:00Z",
        "2026-12-01T12:00:00Z",
    ]
    client = _FakeClient([_FakeImage(f"edgesim/gateway:{n}", c) for n, c in enumerate(created)])
    now = _created_epoch_s(created[0])
    assert now is not None
    removed = prune_images(client, "edgesim/gateway", now=now)  # type: ignore[arg-type]
    assert removed == ["edgesim/gateway:4"]
    assert client.images.removed == ["edgesim/gateway:4"]
    assert _created_epoch_s("not a time") is None


def test_prune_spares_the_build_just_made(docker_client, broker_image) -> None:
    """On a shared engine the build a session just made may be the oldest of its
    repository (a build the cache answered keeps its first creation time): pruning after
    it never untags it."""
    import secrets

    from pytest_edgesim.docker.images import prune_images

    repository = f"edgesim-test/prune-{secrets.token_hex(4)}"
    container = docker_client.api.create_container(broker_image)["Id"]
    tags = []
    try:
        for index in range(4):  # four images, each created after the one before
            docker_client.api.commit(container, repository=repository, tag=f"t{index}")
            tags.append(f"{repository}:t{index}")
            time.sleep(1.1)  # (creation times compare as text: a second apart is unambiguous)
        removed = prune_images(docker_client, repository, keep=1, keep_recent_s=0, spare=tags[0])
        assert sorted(removed) == tags[1:3]
        left = {tag for image in docker_client.images.list(name=repository) for tag in image.tags}
        assert left == {tags[0], tags[3]}
    finally:
        docker_client.api.remove_container(container, force=True)
        for tag in tags:
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(tag)
