"""An impairing TCP proxy in front of a container port, the way Toxiproxy works.

The proxy runs in this process (an asyncio loop on one daemon thread), listens on a host
port and forwards bytes both ways to an upstream ``host:port``. Each direction of each
connection is a link modelled per chunk (what one ``recv`` returned, cut into pieces of
about 10 ms of transmission when a rate is set):

* **rate**: a chunk is serialised at ``rate_kbit_s`` after the previous one has left;
* **latency and jitter**: it then arrives ``latency_ms`` later, plus a uniform draw in
  ``[-jitter_ms, +jitter_ms]`` (netem's default distribution), never before the chunk ahead
  of it: TCP delivers a byte stream in order, so jitter delays but never reorders;
* **loss**: TCP never loses bytes; a lost segment is retransmitted after a retransmission
  timeout. So ``loss_rate`` is the probability that a chunk is lost, and each loss adds an
  RTO (200 ms, Linux's ``TCP_RTO_MIN``, doubling per repeated loss, at most 3.2 s) to that
  chunk and, by head-of-line blocking, to everything behind it;
* **reset_rate**: the probability per chunk that the connection is reset instead (both
  sides get an RST), for testing what a client does when a connection dies.

``cut()`` partitions the link. ``mode="blackhole"`` (a partition: packets vanish) holds
every byte and every new connection until ``heal()``, then delivers what was held, as TCP
retransmission would (without its backoff); ``mode="reset"`` resets every connection and
every new one until ``heal()`` (a peer that is gone or refuses). All random draws come from
named streams under ``seed`` (one per connection and direction), so a run is reproducible
given the same chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Literal

from pytest_edgesim.core.rng import RandomStream
from pytest_edgesim.errors import EdgesimError

RTO_MIN_S = 0.2
RTO_MAX_S = 3.2
READ_SIZE = 65536
QUEUE_CHUNKS = 64
#: the most chunks a proxy keeps the times of, for :meth:`TcpProxy.measurements`
MAX_MEASURED_CHUNKS = 200_000
_PIECE_S = 0.01
_MIN_PIECE_BYTES = 1460

Upstream = tuple[str, int] | Callable[[], tuple[str, int]]
#: a chunk on its way: (delivery time, bytes, time received, the proxy's epoch then)
_Chunk = tuple[float, bytes, float, int]
CutMode = Literal["blackhole", "reset"]


@dataclass(frozen=True)
class LinkProfile:
    """What the proxy does to each direction of each connection (see the module docstring)."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_rate: float = 0.0
    rate_kbit_s: float | None = None
    reset_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise EdgesimError(
                f"proxy latency and jitter must be >= 0 ms, got latency_ms={self.latency_ms} "
                f"and jitter_ms={self.jitter_ms}"
            )
        for name in ("loss_rate", "reset_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise EdgesimError(f"proxy {name} must be in [0, 1), got {value}")
        if self.rate_kbit_s is not None and self.rate_kbit_s <= 0:
            raise EdgesimError(f"proxy rate_kbit_s must be > 0 or None, got {self.rate_kbit_s}")

    @property
    def rate_bytes_s(self) -> float | None:
        return None if self.rate_kbit_s is None else self.rate_kbit_s * 125.0

    def piece_bytes(self) -> int:
        """How finely a chunk is cut: about 10 ms of transmission at the rate, else whole."""
        rate = self.rate_bytes_s
        return READ_SIZE if rate is None else max(_MIN_PIECE_BYTES, int(rate * _PIECE_S))


class LinkSchedule:
    """When each chunk of one direction of one connection is delivered (pure, seeded).

    Times are seconds on any monotonic clock. :meth:`deliver_at` returns ``None`` when the
    draw says the connection is reset.
    """

    __slots__ = ("_last_delivery_s", "_link_free_s", "profile", "stream")

    def __init__(self, profile: LinkProfile, stream: RandomStream):
        self.profile = profile
        self.stream = stream
        self._link_free_s = float("-inf")
        self._last_delivery_s = float("-inf")

    def deliver_at(self, arrival_s: float, size_bytes: int) -> float | None:
        profile = self.profile
        random = self.stream.random
        if profile.reset_rate and random() < profile.reset_rate:
            return None
        sent_s = arrival_s
        rate = profile.rate_bytes_s
        if rate is not None:
            sent_s = max(arrival_s, self._link_free_s) + size_bytes / rate
            self._link_free_s = sent_s
        delay_s = profile.latency_ms / 1000.0
        if profile.jitter_ms:
            delay_s = max(0.0, delay_s + (2.0 * random() - 1.0) * profile.jitter_ms / 1000.0)
        if profile.loss_rate:
            rto_s = RTO_MIN_S
            while random() < profile.loss_rate:
                delay_s += rto_s
                rto_s = min(2.0 * rto_s, RTO_MAX_S)
        delivery_s = max(sent_s + delay_s, self._last_delivery_s)
        self._last_delivery_s = delivery_s
        return delivery_s


@dataclass(frozen=True)
class ProxyStats:
    """Counters since the proxy started (bytes summed over both directions)."""

    connections: int = 0
    open_connections: int = 0
    bytes_received: int = 0
    bytes_forwarded: int = 0
    bytes_dropped: int = 0
    resets: int = 0

    @property
    def bytes_held(self) -> int:
        """Bytes received and not yet forwarded: in flight, delayed, or held by a cut."""
        return self.bytes_received - self.bytes_forwarded - self.bytes_dropped


class TcpProxy:
    """A proxy from ``host:port`` (on this machine) to ``upstream``, impaired by ``profile``.

    ``upstream`` is an address or a function returning one, asked on every new connection
    (so a proxy can follow a container whose published port changes). Use as a context
    manager, or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        upstream: Upstream,
        profile: LinkProfile | None = None,
        *,
        seed: int = 0,
        name: str = "proxy",
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ):
        self._upstream = upstream
        self._profile = profile or LinkProfile()
        self.seed = seed
        self.name = name
        self.host = listen_host
        self.port = listen_port
        self._stats = ProxyStats()
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._healed: asyncio.Event | None = None
        self._cut_mode: CutMode | None = None
        self._connections: set[_Connection] = set()
        self._accepting: set[asyncio.Task[None]] = set()
        self._closing = False
        self._counter = itertools.count()
        #: each :meth:`set_profile` starts a new epoch; measurements say which they fell in
        self.epoch = 0
        self._measured: list[tuple[int, int, str, float, float, float]] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        """Start listening; returns once connections are accepted on ``host:port``."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"edgesim-{self.name}", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._listen())
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop listening, reset every connection and stop the loop thread."""
        if self._loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- control ---------------------------------------------------------------------------

    @property
    def profile(self) -> LinkProfile:
        return self._profile

    def set_profile(self, profile: LinkProfile | None = None, **changes: float | None) -> None:
        """Change the impairment; it applies to chunks that arrive from now on."""
        self._profile = replace(profile or self._profile, **changes)  # type: ignore[arg-type]
        with self._changed:
            self.epoch += 1
        for connection in list(self._connections):
            for schedule in connection.schedules:
                schedule.profile = self._profile

    @property
    def is_cut(self) -> bool:
        return self._cut_mode is not None

    def cut(self, mode: CutMode = "blackhole") -> None:
        """Partition the link until :meth:`heal` (see the module docstring for the modes)."""
        if mode not in ("blackhole", "reset"):
            raise EdgesimError(f"proxy cut mode must be 'blackhole' or 'reset', got {mode!r}")
        self._call(self._cut(mode))

    def heal(self) -> None:
        """End a partition: held bytes and connections go through, new ones are forwarded."""
        self._call(self._heal())

    def stats(self) -> ProxyStats:
        with self._changed:
            return self._stats

    def measurements(self) -> list[tuple[int, int, str, float, float, float]]:
        """What the proxy timed, chunk by chunk: ``(epoch, connection, direction, received_s,
        scheduled_s, written_s)`` (``direction`` ``"up"``: client to upstream;
        ``scheduled_s`` when the link model said to deliver it, ``written_s`` when it was;
        times on the loop's monotonic clock), for the chunks forwarded so far (at most
        :data:`MAX_MEASURED_CHUNKS`). See :mod:`pytest_edgesim.core.impairment_check`."""
        with self._changed:
            return list(self._measured)

    def _measure(self, epoch: int, index: int, way: str, times_s: tuple[float, ...]) -> None:
        with self._changed:
            if len(self._measured) < MAX_MEASURED_CHUNKS:
                received_s, scheduled_s, written_s = times_s
                self._measured.append((epoch, index, way, received_s, scheduled_s, written_s))

    def wait_until(self, predicate: Callable[[ProxyStats], bool], timeout_s: float) -> bool:
        """Block until ``predicate(stats)`` holds (True) or ``timeout_s`` passes (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self._stats), timeout_s)

    # -- inside the loop -------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[object, object, None], timeout_s: float = 10.0) -> None:
        if self._loop is None:
            raise EdgesimError(f"proxy {self.name} is not running: call start() first")
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def _count(self, **increments: int) -> None:
        with self._changed:
            stats = self._stats
            self._stats = replace(
                stats, **{key: getattr(stats, key) + value for key, value in increments.items()}
            )
            self._changed.notify_all()

    async def _listen(self) -> None:
        self._healed = asyncio.Event()
        self._healed.set()
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self._closing = True
        assert self._healed is not None
        self._healed.set()
        for connection in list(self._connections):
            connection.reset()
        if self._accepting:
            await asyncio.wait(set(self._accepting), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _cut(self, mode: CutMode) -> None:
        assert self._healed is not None
        self._cut_mode = mode
        self._healed.clear()
        if mode == "reset":
            for connection in list(self._connections):
                connection.reset()

    async def _heal(self) -> None:
        assert self._healed is not None
        self._cut_mode = None
        self._healed.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert self._healed is not None and task is not None
        self._accepting.add(task)
        try:
            await self._forward(reader, writer)
        finally:
            self._accepting.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._healed is not None
        index = next(self._counter)
        self._count(connections=1)
        if self._cut_mode == "blackhole":
            await self._healed.wait()
        if self._cut_mode == "reset" or self._closing:
            _abort(writer)
            self._count(resets=1)
            return
        upstream = self._upstream() if callable(self._upstream) else self._upstream
        try:
            up_reader, up_writer = await asyncio.open_connection(*upstream)
        except OSError:
            _abort(writer)
            self._count(resets=1)
            return
        for side in (writer, up_writer):
            with contextlib.suppress(OSError):
                side.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(self, index, (reader, writer), (up_reader, up_writer))
        self._connections.add(connection)
        self._count(open_connections=1)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
            self._count(open_connections=-1)


class _Connection:
    """One accepted connection: two directions, each a reader, a queue and a writer."""

    def __init__(
        self,
        proxy: TcpProxy,
        index: int,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ):
        self.proxy = proxy
        self.index = index
        self.client = client
        self.upstream = upstream
        self.schedules = [
            LinkSchedule(proxy.profile, RandomStream(proxy.seed, f"{proxy.name}/{index}/{way}"))
            for way in ("up", "down")
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._was_reset = False
        self._pending_bytes = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        pairs = ((self.client[0], self.upstream[1]), (self.upstream[0], self.client[1]))
        for schedule, (reader, writer) in zip(self.schedules, pairs):
            queue: asyncio.Queue[_Chunk | None] = asyncio.Queue(QUEUE_CHUNKS)
            self._tasks.append(loop.create_task(self._receive(reader, queue, schedule)))
            way = "up" if schedule is self.schedules[0] else "down"
            self._tasks.append(loop.create_task(self._send(queue, writer, way)))
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in (self.client[1], self.upstream[1]):
            writer.close()

    def reset(self) -> None:
        """Reset both sides (RST) and stop forwarding at once."""
        if self._was_reset:
            return
        self._was_reset = True
        self.proxy._count(resets=1, bytes_dropped=self._pending_bytes)
        self._pending_bytes = 0
        for writer in (self.client[1], self.upstream[1]):
            _abort(writer)
        for task in self._tasks:
            task.cancel()

    async def _receive(
        self,
        reader: asyncio.StreamReader,
        queue: asyncio.Queue[_Chunk | None],
        schedule: LinkSchedule,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                self._pending_bytes += len(data)
                self.proxy._count(bytes_received=len(data))
                step = schedule.profile.piece_bytes()
                epoch = self.proxy.epoch
                for start in range(0, len(data), step):
                    piece = data[start : start + step]
                    received_s = loop.time()
                    delivery_s = schedule.deliver_at(received_s, len(piece))
                    if delivery_s is None:
                        self.reset()
                        return
                    await queue.put((delivery_s, piece, received_s, epoch))
        except (ConnectionError, OSError):
            self.reset()
            return
        await queue.put(None)

    async def _send(
        self, queue: asyncio.Queue[_Chunk | None], writer: asyncio.StreamWriter, way: str
    ) -> None:
        loop = asyncio.get_running_loop()
        healed = self.proxy._healed
        assert healed is not None
        try:
            while True:
                item = await queue.get()
                if item is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                delivery_s, piece, received_s, epoch = item
                wait_s = delivery_s - loop.time()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                held = not healed.is_set()  # (a cut held it: its delay measures no setting)
                await healed.wait()
                writer.write(piece)
                if not held:
                    times_s = (received_s, delivery_s, loop.time())
                    self.proxy._measure(epoch, self.index, way, times_s)
                self._pending_bytes -= len(piece)
                self.proxy._count(bytes_forwarded=len(piece))
                await writer.drain()
        except (ConnectionError, OSError):
            self.reset()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0) rather than a FIN."""
    with contextlib.suppress(OSError):
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
    writer.transport.abort()
