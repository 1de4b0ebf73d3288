"""Is an MQTT broker answering? One raw MQTT 3.1.1 CONNECT on a plain socket, no client library.

A raw packet needs no client thread and no paho import, so a readiness loop can retry it
every few milliseconds and use a broker the moment it listens.
"""

from __future__ import annotations

import os
import socket
import struct


def mqtt_connect_packet(
    client_id: str, keepalive_s: int = 60, credentials: tuple[str, str] | None = None
) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session, and a user name and password when
    ``credentials`` (``(username, password)``) are given."""
    identifier = client_id.encode()
    flags = 0x02 | (0xC0 if credentials else 0)
    variable_header = b"\x00\x04MQTT\x04" + bytes((flags,)) + struct.pack("!H", keepalive_s)
    payload = struct.pack("!H", len(identifier)) + identifier
    for text in credentials or ():
        encoded = text.encode()
        payload += struct.pack("!H", len(encoded)) + encoded
    remaining = len(variable_header) + len(payload)
    assert remaining < 16384, "a two-byte remaining length at most"
    length = (
        bytes((remaining,))
        if remaining < 128
        else bytes((remaining % 128 | 0x80, remaining // 128))
    )
    return b"\x10" + length + variable_header + payload


def mqtt_connack(
    host: str, port: int, timeout_s: float = 1.0, credentials: tuple[str, str] | None = None
) -> int:
    """Send one CONNECT to ``host:port`` (with ``credentials``, ``(username, password)``,
    if given) and return the CONNACK's return code (0 = accepted; 4 or 5: not authorised).

    Raises ``OSError`` if nothing MQTT answers (refused, reset, closed, or not a CONNACK).
    """
    with socket.create_connection((host, port), timeout=timeout_s) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sendall(
            mqtt_connect_packet(f"edgesim-ready-{os.getpid()}", credentials=credentials)
        )
        answer = b""
        while len(answer) < 4:
            chunk = connection.recv(4 - len(answer))
            if not chunk:
                raise ConnectionResetError("closed before CONNACK")
            answer += chunk
        if answer[0] != 0x20 or answer[1] != 0x02:
            raise ConnectionError(f"not a CONNACK: {answer!r}")
        connection.sendall(b"\xe0\x00")  # DISCONNECT, so the broker logs a clean goodbye
        return answer[3]
