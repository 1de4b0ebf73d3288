"""The lockstep protocol's wire format: frames, message types, the version, its errors.

Framing is length-prefixed: every frame is a 4-byte unsigned big-endian length followed by
that many bytes of UTF-8 JSON holding one object with a ``"type"``. Length prefixes were
chosen over JSON Lines because a frame's end never depends on the encoder: JSON Lines breaks
silently the day some encoder pretty-prints (a raw newline inside a frame), whereas a length
is checked before anything is read (a frame over :data:`MAX_FRAME_BYTES` is refused without
buffering it), a reader needs no scanning, and a frame with bad JSON inside is a clean,
reportable error that leaves the stream in sync. Every language can write four bytes.

This module needs only the standard library: the node-side SDK (inside containers) and the
coordinator side both use it. ``docs/protocol.md`` is the full specification.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

PROTOCOL_VERSION = 1
#: the default TCP port a node listens on inside its container
DEFAULT_PORT = 7883
MAX_FRAME_BYTES = 16 * 1024 * 1024

HELLO = "hello"
ADVANCE = "advance"
REPLY = "reply"
SHUTDOWN = "shutdown"
BYE = "bye"
ERROR = "error"
MESSAGE_TYPES = (HELLO, ADVANCE, REPLY, SHUTDOWN, BYE, ERROR)

_LENGTH = struct.Struct(">I")
# strict JSON: NaN and infinities have no JSON spelling, and other languages' parsers refuse
# Python's bare ``NaN``
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class ProtocolError(Exception):
    """The peer broke the protocol: a malformed frame, an unexpected message, a bad version.

    Kept free of the package's error hierarchy so the SDK stays importable on its own; the
    coordinator wraps it in :class:`pytest_edgesim.lockstep.host.LockstepError`.
    """


class PeerClosed(ProtocolError):
    """The connection ended (cleanly between frames, or in the middle of one)."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """One frame: the length prefix and the compact JSON of ``message``."""
    try:
        body = _encoder.encode(message).encode()
    except ValueError as exc:  # a NaN or an infinity somewhere in the message
        raise ProtocolError(
            f"cannot send a {message.get('type', '?')!r} message: {exc} (JSON has no NaN or "
            "Infinity; a reading or aggregate with such a value cannot cross the protocol)"
        ) from None
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return _LENGTH.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """The message in a frame body; :class:`ProtocolError` unless it is a JSON object with a
    known ``type``."""
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        preview = body[:80]
        raise ProtocolError(f"frame is not valid UTF-8 JSON ({exc}): {preview!r}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"frame holds a JSON {type(message).__name__}, not an object")
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        raise ProtocolError(f"frame has type {kind!r}; expected one of {', '.join(MESSAGE_TYPES)}")
    return message


class Connection:
    """Frames over a connected TCP socket: ``send`` one message, ``receive`` the next."""

    __slots__ = ("_reader", "sock")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = sock.makefile("rb", buffering=65536)

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(encode_frame(message))

    def receive(self) -> dict[str, Any]:
        """The next message. Raises :class:`PeerClosed` at end of stream, ``TimeoutError``
        when the socket's timeout passes, :class:`ProtocolError` for a malformed frame."""
        header = self._read_exactly(4, at_boundary=True)
        (length,) = _LENGTH.unpack(header)
        if length > MAX_FRAME_BYTES:
            raise ProtocolError(
                f"frame length {length} exceeds {MAX_FRAME_BYTES} bytes "
                f"(first bytes {header!r}: is the peer speaking this protocol?)"
            )
        return decode_body(self._read_exactly(length, at_boundary=False))

    def _read_exactly(self, size: int, *, at_boundary: bool) -> bytes:
        data = self._reader.read(size)
        if data is None:  # pragma: no cover - non-blocking sockets are not used
            raise TimeoutError("no data")
        if len(data) < size:
            if not data and at_boundary:
                raise PeerClosed("the peer closed the connection")
            raise PeerClosed(f"the connection ended inside a frame ({len(data)} of {size} bytes)")
        return data

    def settimeout(self, seconds: float | None) -> None:
        self.sock.settimeout(seconds)

    def close(self) -> None:
        try:
            self._reader.close()
        finally:
            self.sock.close()


def error_message(code: str, message: str) -> dict[str, Any]:
    return {"type": ERROR, "code": code, "message": message}


def check_version(message: dict[str, Any], who: str) -> None:
    """Raise :class:`ProtocolError` unless ``message`` (a hello) speaks our version."""
    version = message.get("protocol")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"protocol version mismatch: {who} speaks version {version!r}, "
            f"this side speaks version {PROTOCOL_VERSION}"
        )
