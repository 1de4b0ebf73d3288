"""Named random streams derived from one root seed.

Every component (a sensor, a link, a gateway) draws from its own stream, keyed by
``blake2b(root_seed, name)``. Adding or removing a component never shifts another
component's draws, and nothing depends on ``hash()``, ``PYTHONHASHSEED`` or the global
``random`` module. A stream is counter-based (blake2b of a counter, eight 53-bit floats a
block), so it costs a few hundred bytes: a 100,000-sensor scenario can give every sensor
and every link a stream of its own.
"""

from __future__ import annotations

import hashlib
import math
import struct
from array import array
from math import cos as _cos
from math import log as _logf
from math import sqrt as _sqrt
from typing import Final

_BLOCK: Final = struct.Struct("<8Q")
_INV_2_53: Final = 1.0 / 9007199254740992.0
_TWO_PI: Final = 2.0 * math.pi


def stream_key(root_seed: int, name: str) -> bytes:
    """The 32-byte key of stream ``name`` under ``root_seed`` (stable across runs and machines)."""
    material = f"edgesim/v1/{int(root_seed)}/{name}".encode()
    return hashlib.blake2b(material, digest_size=32).digest()


def derive_seed(root_seed: int, name: str) -> int:
    """A 63-bit integer seed derived from ``root_seed`` and ``name`` (e.g. a trial seed)."""
    return int.from_bytes(stream_key(root_seed, name)[:8], "little") >> 1


class RandomStream:
    """A deterministic stream of uniform floats and the few distributions the models need."""

    __slots__ = ("_block", "_buffer", "_key", "name")

    def __init__(self, root_seed: int, name: str):
        self.name = name
        self._key = stream_key(root_seed, name)
        self._block = 0
        # the unused floats of the current block, last one first (``pop`` gives the next);
        # always the same object, so a hot path may hold on to its ``pop``. An array of
        # doubles, not a list of float objects: 8 bytes a value instead of 32, for each of
        # the hundreds of thousands of streams a big scenario holds.
        self._buffer: array[float] = array("d")

    def _refill(self) -> None:
        self._block += 1
        digest = hashlib.blake2b(
            self._block.to_bytes(8, "little"), digest_size=64, key=self._key
        ).digest()
        words: tuple[int, ...] = _BLOCK.unpack(digest)
        self._buffer.extend([(word >> 11) * _INV_2_53 for word in reversed(words)])

    def random(self) -> float:
        """A float uniformly distributed in [0, 1)."""
        buffer = self._buffer
        if not buffer:
            self._refill()
        return buffer.pop()

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def normal(self, mean: float, stddev: float) -> float:
        """Box-Muller: one value per call, from two uniforms (draw counts stay easy to follow)."""
        buffer = self._buffer
        if not buffer:
            self._refill()
        u1 = 1.0 - buffer.pop()  # (0, 1]
        if not buffer:
            self._refill()
        u2 = buffer.pop()
        return mean + stddev * _sqrt(-2.0 * _logf(u1)) * _cos(_TWO_PI * u2)

    def exponential(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.random())

    def below(self, n: int) -> int:
        """An integer uniformly distributed in [0, n)."""
        return min(int(self.random() * n), n - 1)


class StreamFactory:
    """Hands out one stream per name under a root seed; asking twice gives the same object."""

    __slots__ = ("_streams", "root_seed")

    def __init__(self, root_seed: int):
        self.root_seed = int(root_seed)
        self._streams: dict[str, RandomStream] = {}

    def __call__(self, name: str) -> RandomStream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = RandomStream(self.root_seed, name)
        return stream
