"""The documentation's examples, run: a doc example that stops working fails here.

Docs are part of the product. Every fenced block in README.md and docs/*.md whose info
string is ``python``, ``yaml`` or ``console`` is an example, tested by what it is:

- ``python`` with a ``def test_...``: a test file, run with ``pytester`` (in a subprocess,
  with ``--edgesim-scenario-dir`` at the repository's ``scenarios/`` and Docker required);
  every test in it must pass. ``import pytest`` is added when the block leaves it out.
- other ``python``: a program, run in a fresh interpreter from a directory laid out like
  the repository (:data:`REPO_ENTRIES` linked in, so that ``scenarios/basic.yaml`` resolves
  and what it writes lands in a temporary directory). It runs under the module name
  ``doc_example``, so an ``if __name__ == "__main__":`` part (a server) is not run.
- ``yaml`` with an ``edgesim: 1`` line: a scenario; it must load with no notes, and run.
  A replay ``file`` it names is made up next to it, with the named column.
- other ``yaml``: a fragment, tested only when the doc says where it goes, with
  ``<!-- doc-test: fragment in PATH -->`` on the line before the fence (PATH: ``network``,
  or ``top level``): it is merged there into a small scenario (:data:`FRAGMENT_BASE`)
  that must then load.
- ``console``: each ``$ COMMAND`` (continued over lines while a quote is open or a line
  ends in ``\\``) that runs ``edgesim run``, ``edgesim validate`` or ``python -c`` is run
  with bash from the same directory and must exit with 0. Other commands (installs,
  builds, deployments, the whole suite) are not run; a block with none to run must be
  skipped explicitly.

A block is left untested only by saying so in the doc, on the line before its fence:
``<!-- doc-test: skip: REASON -->`` (rendered as nothing). ``test_skipped_blocks_are_counted``
holds their number, so that nobody excludes the documentation quietly. Blocks with another info
string (output, ``json``, ``text``, protocol traces) are illustrations, not examples.
"""

from __future__ import annotations

import copy
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_edgesim import Scenario, simulate

REPO = Path(__file__).resolve().parents[2]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
EXAMPLE_LANGUAGES = {"python", "yaml", "console"}
#: info strings of blocks that show rather than run: output, protocol frames, file contents
ILLUSTRATION_LANGUAGES = {"", "text", "json"}
#: what a doc example may use from the repository, linked into its working directory
REPO_ENTRIES = ("scenarios", "containers", "example_tests", "scripts")
#: how many example blocks the docs skip (<!-- doc-test: skip: ... -->): a new skip changes
#: this number in the same commit, so that excluding an example is a visible choice
SKIPPED_EXAMPLES = 15
#: a guard against a hanging example, not a budget: on a fresh machine the first example that
#: needs Docker also builds the project's images (about a minute)
PROGRAM_TIMEOUT_S = 300

FENCE = re.compile(r"^\s*```(?P<info>[^`\s]*)\s*$")
CLOSING_FENCE = re.compile(r"^\s*```\s*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<directive>.*?)\s*-->\s*$")
RUNNABLE_COMMANDS = (("edgesim", "run"), ("edgesim", "validate"), ("python", "-c"))

#: the scenario a YAML fragment is merged into: the node names the docs' fragments use
FRAGMENT_BASE = {
    "edgesim": 1,
    "name": "fragment",
    "duration": "5s",
    "devices": [
        {"name": "temp", "count": 3, "topic": "sensors/{name}"},
        {"name": "humidity", "topic": "sensors/humidity"},
    ],
    "gateways": [
        {"name": "gateway", "subscribe": "sensors/#", "aggregate": {"count": 10}},
        {"name": "edge-gw", "subscribe": "sensors/#"},
    ],
}


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its info string, the directive before it, its text."""

    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    directive: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO).as_posix()}:{self.line}"

    @property
    def kind(self) -> str:
        if self.directive is not None and self.directive.startswith("skip"):
            return "skipped"
        if self.language == "python":
            return "test file" if re.search(r"^def test_", self.text, re.M) else "program"
        if self.language == "yaml":
            return "scenario" if re.search(r"^edgesim: 1", self.text, re.M) else "fragment"
        return "console"


def read_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not CLOSING_FENCE.match(lines[end]):
            end += 1
        assert end < len(lines), f"{path}:{index + 1}: unclosed code fence"
        directive = DIRECTIVE.match(lines[index - 1]) if index > 0 else None
        blocks.append(
            Block(
                path=path,
                line=index + 1,
                language=opening["info"],
                directive=directive["directive"] if directive else None,
                text=textwrap.dedent("\n".join(lines[index + 1 : end])) + "\n",
            )
        )
        index = end + 1
    return blocks


ALL_BLOCKS = [block for path in DOC_FILES for block in read_blocks(path)]
EXAMPLES = [block for block in ALL_BLOCKS if block.language in EXAMPLE_LANGUAGES]


def examples(*kinds: str) -> list[Any]:
    return [pytest.param(b, id=b.where) for b in EXAMPLES if b.kind in kinds]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory laid out like the repository, for what an example reads and writes."""
    for name in REPO_ENTRIES:
        (tmp_path / name).symlink_to(REPO / name, target_is_directory=True)
    return tmp_path


def run_in(workdir: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=PROGRAM_TIMEOUT_S,
        check=False,
    )


def explain(block: Block, completed: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{block.where}: exit code {completed.returncode}\n"
        f"--- stdout\n{completed.stdout[-3000:]}--- stderr\n{completed.stderr[-3000:]}"
    )


# --- the rules themselves ----------------------------------------------------------------


def test_every_block_is_an_example_or_an_illustration() -> None:
    """A ```bash or ```py block would be neither tested nor skipped: say console or python."""
    for block in ALL_BLOCKS:
        assert block.language in EXAMPLE_LANGUAGES | ILLUSTRATION_LANGUAGES, (
            f"{block.where}: ```{block.language} is not a kind this test knows: use one of "
            f"{sorted(EXAMPLE_LANGUAGES)} for an example, or text/json for an illustration"
        )


def test_every_directive_is_understood() -> None:
    for block in ALL_BLOCKS:
        if block.directive is None:
            continue
        assert block.language in EXAMPLE_LANGUAGES, (
            f"{block.where}: a doc-test directive before a ```{block.language} block, "
            "which is not an example anyway"
        )
        directive = block.directive
        if directive.startswith("skip"):
            assert re.fullmatch(r"skip: \S.*", directive), (
                f"{block.where}: write the reason: <!-- doc-test: skip: REASON -->"
            )
        else:
            assert block.kind == "fragment" and re.fullmatch(
                r"fragment in (network|top level)", directive
            ), f"{block.where}: unknown doc-test directive {directive!r}"


def test_skipped_blocks_are_counted() -> None:
    skipped = [block.where for block in EXAMPLES if block.kind == "skipped"]
    assert len(skipped) == SKIPPED_EXAMPLES, (
        f"{len(skipped)} example blocks are skipped, SKIPPED_EXAMPLES says {SKIPPED_EXAMPLES}: "
        f"{skipped}; test the new example, or change the number and say why in the skip"
    )


# --- the examples ------------------------------------------------------------------------


@pytest.mark.parametrize("block", examples("program"))
def test_program_runs(block: Block, workdir: Path) -> None:
    program = workdir / "doc_example.py"
    program.write_text(block.text, encoding="utf-8")
    runner = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='doc_example')"
    completed = run_in(workdir, [sys.executable, "-c", runner, str(program)])
    assert completed.returncode == 0, explain(block, completed)


@pytest.mark.parametrize("block", examples("test file"))
def test_test_file_passes(block: Block, pytester: pytest.Pytester) -> None:
    source = (
        block.text
        if re.search(r"^import pytest$", block.text, re.M)
        else ("import pytest\n\n\n" + block.text)
    )
    pytester.makepyfile(test_doc_example=source)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        f"--edgesim-scenario-dir={REPO / 'scenarios'}",
        "--edgesim-docker=require",
        "--hypothesis-profile=edgesim-ci",
        "-rA",
        timeout=PROGRAM_TIMEOUT_S,
    )
    outcomes = result.parseoutcomes()
    passed = outcomes.pop("passed", 0)
    outcomes.pop("warnings", None)
    output = "\n".join(result.outlines[-60:])
    assert passed > 0 and not outcomes, f"{block.where}: {passed} passed, {outcomes}\n{output}"


def make_replay_files(data: dict[str, Any], directory: Path) -> None:
    """Writes each replay ``file`` the scenario names: a header with its column, a few rows."""
    for device in data.get("devices") or []:
        value = device.get("value")
        if isinstance(value, dict) and value.get("model") == "replay":
            column = value.get("column", 0)
            header = column if isinstance(column, str) else "reading"
            file = directory / value["file"]
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(f"{header}\n0.0\n1.5\n0.2\n", encoding="utf-8")


@pytest.mark.parametrize("block", examples("scenario"))
def test_scenario_loads_and_runs(block: Block, tmp_path: Path) -> None:
    file = tmp_path / "doc-scenario.yaml"
    file.write_text(block.text, encoding="utf-8")
    make_replay_files(yaml.safe_load(block.text), tmp_path)
    scenario = Scenario.from_yaml(file)
    assert scenario.notes() == [], f"{block.where}: {scenario.notes()}"
    simulate(scenario)


@pytest.mark.parametrize("block", examples("fragment"))
def test_fragment_loads_in_a_scenario(block: Block) -> None:
    assert block.directive is not None, (
        f"{block.where}: a YAML block that is not a whole scenario (edgesim: 1): say where it "
        "goes (<!-- doc-test: fragment in network -->, or in top level) or skip it "
        "(<!-- doc-test: skip: REASON -->)"
    )
    fragment = yaml.safe_load(block.text)
    data = copy.deepcopy(FRAGMENT_BASE)
    place = block.directive.removeprefix("fragment in ")
    target = data if place == "top level" else data.setdefault(place, {})
    target.update(fragment)
    # as if the scenario were a file in scenarios/, where relative build contexts start
    Scenario.from_dict(data, base_dir=REPO / "scenarios")


def commands(block: Block) -> list[str]:
    """The ``$`` commands of a console block, each with its continuation lines."""
    found: list[str] = []
    pending: str | None = None
    for line in block.text.splitlines():
        if pending is None:
            if not line.startswith("$ "):
                continue  # output
            pending = line[2:]
        else:
            pending += "\n" + line
        if pending.endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        found.append(pending)
        pending = None
    assert pending is None, f"{block.where}: unfinished command {pending!r}"
    return found


def runnable(command: str) -> bool:
    words = shlex.split(command, comments=True)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0], re.S):
        words.pop(0)  # an environment assignment before the program
    if words and words[0] == "python3":
        words[0] = "python"
    return tuple(words[:2]) in RUNNABLE_COMMANDS


@pytest.mark.parametrize("block", examples("console"))
def test_console_commands_succeed(block: Block, workdir: Path) -> None:
    to_run = [command for command in commands(block) if runnable(command)]
    assert to_run, (
        f"{block.where}: no command here is run by this test ({RUNNABLE_COMMANDS}); "
        "skip the block explicitly (<!-- doc-test: skip: REASON -->)"
    )
    for command in to_run:
        completed = run_in(workdir, ["bash", "-c", command])
        assert completed.returncode == 0, f"$ {command}\n" + explain(block, completed)


def test_the_readme_says_what_the_test_command_needs_before_the_command() -> None:
    """A reader on a fresh machine runs the first command they see: what it needs
    (``mmdebstrap``, the Docker engine) must come before it, not after its failure."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Run the tests", 1)[1].split("\n## ", 1)[0]
    command = section.index("$ pytest -n 2 --edgesim-docker=require")
    assert "mmdebstrap" in section[:command]
    assert "Docker engine" in section[:command]
