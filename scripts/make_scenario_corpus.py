"""Write the hostile-scenario corpus (tests/core/scenario/corpus/): files that must each end
in one clear ScenarioError from ``edgesim validate``, within 20 s and 1 GiB.

    python scripts/make_scenario_corpus.py          # rewrite the committed (small) corpus

Every case is ``CASE.yaml`` (with its companion files, such as a replay value file) and a
line in ``expected.txt``: ``CASE.yaml<TAB>what the error says``. Cases that would weigh
megabytes (a 100,000-deep nesting, a 100,000-device file) are not committed:
:func:`big_cases` makes them at test time; tests/core/scenario/test_hostile_input.py runs
both and checks that the committed corpus is what this script writes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "core" / "scenario" / "corpus"
MANIFEST = "expected.txt"


@dataclass(frozen=True)
class Case:
    """A scenario file, the files it refers to, and what its error must say.

    ``valid`` cases must validate (``expected`` is then what ``edgesim validate`` prints)."""

    name: str
    scenario: bytes
    expected: str
    files: dict[str, bytes] = field(default_factory=dict)
    valid: bool = False


def _case(name: str, text: str, expected: str, **files: bytes) -> Case:
    return Case(name, text.encode("utf-8", "surrogatepass"), expected, dict(files))


def _laughs(levels: int, width: int, merge: bool = False) -> str:
    lines = ["edgesim: 1", "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * width)
        if merge:
            keys = ", ".join(f"k{i}: [{refs}]" for i in range(2))
            lines.append(f"x{level}: &a{level} {{<<: *a{level - 1}, {keys}}}")
        else:
            lines.append(f"x{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def _replay(file: str, column: str = "0") -> str:
    return (
        "edgesim: 1\ndevices:\n  - name: t\n"
        f"    value: {{model: replay, file: {file}, column: {column}}}\n"
    )


SECRET = b"root:x:0:0\nalice:$6$s4lt$Zm9vYmFyYmF6cXV4:19000:0:99999:7:::\n"


def small_cases() -> Iterator[Case]:
    """The committed corpus: every class of hostile input, each file a few kB at most."""
    # memory and recursion
    yield _case("alias-bomb-9x10", _laughs(9, 10), "x5: aliases expand this value too far")
    yield _case("alias-bomb-30x2", _laughs(30, 2), "x17: aliases expand this value too far")
    yield _case("alias-bomb-merge-keys", _laughs(20, 2, merge=True), "aliases expand")
    yield _case(
        "alias-recursive-list", "edgesim: 1\ndevices: &a [*a]\n", "devices: an alias refers"
    )
    yield _case(
        "alias-recursive-map", "edgesim: 1\nnetwork: &a {x: *a}\n", "network: an alias refers"
    )
    yield _case("alias-recursive-merge", "edgesim: 1\nx: &a {<<: *a}\n", "a recursive alias")
    yield _case("alias-undefined", "edgesim: 1\ndevices: *nope\n", "found undefined alias")
    yield _case(
        "nesting-900-flow", "edgesim: 1\nx: " + "[" * 900 + "]" * 900 + "\n", "nested too deep"
    )
    block = "".join(" " * level + f"k{level}:\n" for level in range(100))
    yield _case("nesting-100-block", "edgesim: 1\n" + block, "nested too deep")
    yield _case(
        "count-ten-million",
        "edgesim: 1\ndevices:\n  - {name: d, count: 10000000}\n",
        "devices[0].count: the scenario has 10,000,000 devices",
    )
    # what the YAML reader refuses
    yield _case("control-nul", "edgesim: 1\nname: a\x00b\n", "U+0000 (NUL)")
    yield _case("control-escape", "edgesim: 1\ndescription: \x1b[31mred\n", "U+001B (ESC)")
    yield _case("control-bell-in-key", "edgesim: 1\nna\x07me: x\n", "U+0007")
    yield Case("not-utf8", b"edgesim: 1\nname: caf\xe9\n", "is not UTF-8 text")
    yield _case("lone-surrogate-escape", 'edgesim: 1\nname: "a\\ud800"\n', "a lone surrogate")
    yield _case(
        "lone-surrogate-in-topic",
        'edgesim: 1\ndevices:\n  - {name: t, topic: "s/\\udfff"}\n',
        "a lone surrogate",
    )
    yield _case("integer-40-digits", "edgesim: 1\nseed: " + "7" * 40 + "\n", "digits")
    yield _case("integer-bad-tag", "edgesim: 1\nseed: !!int abc\n", "cannot be read as int")
    yield _case("timestamp-bad", "edgesim: 1\ndescription: 2020-13-45\n", "cannot be read")
    yield _case("binary-bad", "edgesim: 1\nname: !!binary '*'\n", "is binary data")
    yield _case("python-tag", "edgesim: 1\nx: !!python/object:os.system ls\n", "invalid YAML")
    yield _case("two-documents", "edgesim: 1\n---\nedgesim: 1\n", "a single document")
    yield _case("not-a-mapping", "- edgesim\n- 1\n", "a scenario must be a mapping")
    yield _case("empty", "", "the file is empty")
    # replay value files
    yield _case(
        "replay-binary",
        _replay("binary.csv"),
        "is not UTF-8 text",
        **{"binary.csv": b"1\n2\n\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"},
    )
    yield _case("replay-dev-zero", _replay("/dev/zero"), "is a device, not a regular file")
    yield _case("replay-directory", _replay("."), "is a directory")
    yield _case("replay-missing", _replay("nope.csv"), "no such file")
    yield _case(
        "replay-secret-not-csv",
        _replay("passwd-like"),
        "passwd-like:2: column 0 is not a number",
        **{"passwd-like": SECRET},
    )
    yield _case(
        "replay-secret-header",
        _replay("passwd-like", column="user"),
        "has no column 'user'",
        **{"passwd-like": SECRET},
    )
    yield _case(
        "replay-csv-long-cell",
        _replay("long.csv"),
        "long.csv:3: column 0 is not a number: 'xxxxxxxx",
        **{"long.csv": b"value\n1.5\n" + b"x" * 500 + b"\x1b\n"},
    )
    yield _case("replay-nan", _replay("nan.csv"), "not a finite number", **{"nan.csv": b"1\nnan\n"})
    yield _case(
        "replay-csv-nul",
        _replay("nul.csv"),
        "nul.csv:2: column 0 is not a number: '2\\x00'",
        **{"nul.csv": b"1\n2\x00\n"},
    )
    # values that would not mean what they say
    yield _case("version-float", "edgesim: 1.0\n", "unsupported scenario version 1.0")
    yield _case("version-true", "edgesim: true\n", "unsupported scenario version True")
    yield _case("version-string", "edgesim: '1'\n", "unsupported scenario version '1'")
    yield _case("name-bytes-literal", "edgesim: 1\nname: b'basic'\n", "name: must be printable")
    yield _case("name-binary", "edgesim: 1\nname: !!binary YmFzaWM=\n", "name: is binary data")
    yield _case("name-number", "edgesim: 1\nname: 5\n", "name: must be a string")
    yield _case(
        "bandwidth-rounds-to-zero",
        "edgesim: 1\nnetwork:\n  default: {bandwidth: 0.4}\n",
        "must be at least 1 bit/s",
    )
    yield _case(
        "bandwidth-unit-rounds-to-zero",
        "edgesim: 1\nnetwork:\n  default: {bandwidth: 0.0004kbps}\n",
        "must be at least 1 bit/s",
    )
    yield _case(
        "random-walk-min-above-max",
        "edgesim: 1\ndevices:\n  - name: t\n    value: {model: random_walk, min: 5, max: 1}\n",
        "min (5) must not be above max (1)",
    )
    yield _case(
        "partition-node-and-itself",
        "edgesim: 1\nnetwork:\n  partitions:\n    - between: [broker, broker]\n",
        "both sides are",
    )
    yield _case(
        "partition-overlapping-sides",
        "edgesim: 1\nnetwork:\n  partitions:\n    - between: [[broker, cloud], 'b*']\n",
        "'broker' is on both sides",
    )
    yield _case(
        "replay-negative-column",
        _replay("v.csv", column="-1"),
        "an index from 0",
        **{"v.csv": b"1\n"},
    )


def big_cases() -> Iterator[Case]:
    """Cases made at test time (too big to commit)."""
    deep = "[" * 100_000 + "]" * 100_000
    yield _case("nesting-100000-flow", f"edgesim: 1\nx: {deep}\n", "nested too deep")
    yield _case("nesting-100000-unclosed", "edgesim: 1\nx: " + "{a: " * 100_000, "nested too deep")
    block = "".join(" " * level + f"k{level}:\n" for level in range(900))
    yield _case("nesting-900-block", "edgesim: 1\n" + block, "nested too deep")
    yield _case("integer-10000-digits", "edgesim: 1\nseed: " + "9" * 10_000 + "\n", "digits")
    yield _case(
        "string-200000-chars", "edgesim: 1\ndescription: " + "x" * 200_000 + "\n", "characters"
    )
    yield _case("alias-bomb-wide", _laughs(6, 100), "aliases expand this value too far")
    zeros = ",".join(["0"] * 100_000)
    yield _case(
        "values-100000",
        f"edgesim: 1\ndescription: [{zeros}]\n",
        "description: must be a string, got a list of 100,000 items",
    )
    yield _case(
        "values-1100000", f"edgesim: 1\nx: [{(zeros + ',') * 10}0]\n", "the file is too big"
    )
    yield _case(
        "duration-90000-chars",
        "edgesim: 1\nduration: " + "x" * 90_000 + "\n",
        "... (90,000 characters)",
    )
    devices = "".join(f"  - {{name: d-{index:06d}, qos: 0}}\n" for index in range(100_000))
    yield Case(
        "devices-100000",
        f"edgesim: 1\ndevices:\n{devices}".encode(),
        "ok (100002 nodes",
        valid=True,
    )


def write(cases: Iterator[Case], directory: Path) -> list[Path]:
    """Write ``cases`` and their manifest into ``directory``; the scenario files."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest, paths = [], []
    for case in cases:
        path = directory / f"{case.name}.yaml"
        path.write_bytes(case.scenario)
        for name, content in case.files.items():
            (directory / name).write_bytes(content)
        manifest.append(f"{path.name}\t{'valid' if case.valid else 'error'}\t{case.expected}\n")
        paths.append(path)
    (directory / MANIFEST).write_text("".join(manifest), encoding="utf-8")
    return paths


def main() -> int:
    for stale in CORPUS.glob("*"):
        stale.unlink()
    paths = write(small_cases(), CORPUS)
    size = sum(path.stat().st_size for path in CORPUS.iterdir())
    print(f"{len(paths)} cases, {size:,} bytes in {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
