"""Reading a file a user names (a scenario, a replay value file) without trusting it.

Only a regular file is read (a FIFO would block forever, ``/dev/zero`` never ends), at most
``max_bytes`` of it, as UTF-8 text. Problems are :class:`FileProblem`, whose message names
the kind of problem and, where one is known, the line, and never the file's content.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileProblem(Exception):
    """Why a file cannot be read as text; ``line`` is 1-based where a line is to blame."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"  # (where the system lets a directory be opened)
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_text_file(path: Path, max_bytes: int, *, limit_hint: str) -> str:
    """The text of the regular file ``path`` (UTF-8, at most ``max_bytes`` bytes).

    ``limit_hint`` says how to raise the size limit; it ends the too-large message."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileProblem("no such file") from None
    except IsADirectoryError:
        raise FileProblem("is a directory, not a file") from None
    except OSError as exc:
        raise FileProblem(f"cannot be opened ({exc.strerror})") from None
    except ValueError:  # a NUL in the path
        raise FileProblem("is not a valid path") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FileProblem(f"is {_kind(mode)}, not a regular file")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise FileProblem(f"cannot be read ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise FileProblem(f"is larger than the limit of {max_bytes:,} bytes ({limit_hint})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileProblem("is not UTF-8 text (a binary file?)", line) from None
