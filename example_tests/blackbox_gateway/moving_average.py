"""A small MQTT gateway: the moving average of each sensor's last readings.

It subscribes to sensor topics, and for each reading (a number, or a JSON object with a
numeric "value") publishes ``{"sensor": TOPIC, "average": A, "readings": N}`` on one topic,
A being the mean of that sensor's last N (at most --window) readings. It speaks MQTT 3.1.1
over a plain socket with the standard library only, and knows nothing of any test tool:

    python3 moving_average.py --host broker --port 1883 --client-id gw-1 \\
        --subscribe 'sensors/+/temperature' --publish averages --window 5

``--username`` and ``--password`` log in to a broker that requires it (empty: anonymous).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from collections import defaultdict, deque

KEEPALIVE_S = 30


def encode_length(length: int) -> bytes:
    encoded = bytearray()
    while True:
        length, digit = divmod(length, 128)
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


def utf8(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + encode_length(len(body)) + body


class Connection:
    """One MQTT connection: CONNECT, SUBSCRIBE, PUBLISH (QoS 0 out), reading packets."""

    def __init__(
        self, host: str, port: int, client_id: str, username: str = "", password: str = ""
    ):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.settimeout(None)
        self.lock = threading.Lock()
        flags = 0x02 | (0xC0 if username else 0)  # clean session; user name and password
        credentials = utf8(username) + utf8(password) if username else b""
        header = utf8("MQTT") + bytes([4, flags]) + KEEPALIVE_S.to_bytes(2, "big")
        self.send(packet(0x10, header + utf8(client_id) + credentials))
        kind, body = self.read()
        if kind != 2 or body[1] != 0:
            raise ConnectionError(f"connection refused (CONNACK {body.hex()})")

    def send(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)

    def read_exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def read(self) -> tuple[int, bytes]:
        first = self.read_exactly(1)[0]
        length, shift = 0, 0
        while True:
            digit = self.read_exactly(1)[0]
            length += (digit & 0x7F) << shift
            shift += 7
            if not digit & 0x80:
                break
        self.first_byte = first
        return first >> 4, self.read_exactly(length)

    def subscribe(self, filters: list[str]) -> None:
        body = (1).to_bytes(2, "big") + b"".join(utf8(f) + bytes([0]) for f in filters)
        self.send(packet(0x82, body))

    def publish(self, topic: str, payload: bytes) -> None:
        self.send(packet(0x30, utf8(topic) + payload))

    def ping_forever(self) -> None:
        while True:
            time.sleep(KEEPALIVE_S / 2)
            try:
                self.send(bytes([0xC0, 0]))
            except OSError:
                return


def reading_value(payload: bytes) -> float | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if isinstance(body, dict):
        body = body.get("value")
    if isinstance(body, (int, float)) and not isinstance(body, bool):
        return float(body)
    return None


def serve(args: argparse.Namespace) -> None:
    connection = Connection(args.host, args.port, args.client_id, args.username, args.password)
    print(f"connected to {args.host}:{args.port} as {args.client_id}", flush=True)
    threading.Thread(target=connection.ping_forever, daemon=True).start()
    connection.subscribe(args.subscribe)
    windows: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=args.window))
    while True:
        kind, body = connection.read()
        if kind == 9:
            print(f"subscribed to {', '.join(args.subscribe)}", flush=True)
        if kind != 3:
            continue
        qos = (connection.first_byte >> 1) & 0x03
        topic_length = int.from_bytes(body[:2], "big")
        topic = body[2 : 2 + topic_length].decode()
        rest = body[2 + topic_length :]
        if qos:
            packet_id, rest = rest[:2], rest[2:]
            connection.send(packet(0x40, packet_id))  # PUBACK
        value = reading_value(rest)
        if value is None:
            print(f"ignored a message on {topic}: no number in it", flush=True)
            continue
        window = windows[topic]
        window.append(value)
        average = {"sensor": topic, "average": sum(window) / len(window), "readings": len(window)}
        connection.publish(args.publish, json.dumps(average).encode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--client-id", default=f"moving-average-{socket.gethostname()}")
    parser.add_argument("--username", default="", help="empty: connect anonymously")
    parser.add_argument("--password", default="")
    parser.add_argument("--subscribe", action="append", required=True, help="a topic filter")
    parser.add_argument("--publish", required=True, help="the topic of the averages")
    parser.add_argument("--window", type=int, default=5, help="readings per average")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:  # the broker restarting is no reason to give up
        try:
            serve(args)
        except OSError as error:
            print(f"connection lost ({error}); connecting again", flush=True)
            time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
