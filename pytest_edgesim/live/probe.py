"""Is an MQTT broker answering? One raw MQTT 3.1.1 CONNECT on a plain socket, no client library.

A raw packet needs no client thread and no paho import, so a readiness loop can retry it
every few milliseconds and use a broker the moment it listens.
"""

from __future__ import annotations

import os
import socket
import struct


def mqtt_connect_packet(client_id: str, keepalive_s: int = 60) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session and no credentials."""
    identifier = client_id.encode()
    variable_header = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", keepalive_s)
    payload = struct.pack("!H", len(identifier)) + identifier
    remaining = len(variable_header) + len(payload)
    assert remaining < 128, "one-byte remaining length"
    return bytes((0x10, remaining)) + variable_header + payload


def mqtt_connack(host: str, port: int, timeout_s: float = 1.0) -> int:
    """Send one CONNECT to ``host:port`` and return the CONNACK's return code (0 = accepted).

    Raises ``OSError`` if nothing MQTT answers (refused, reset, closed, or not a CONNACK).
    """
    with socket.create_connection((host, port), timeout=timeout_s) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sendall(mqtt_connect_packet(f"edgesim-ready-{os.getpid()}"))
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
