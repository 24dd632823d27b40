"""One shared 20 ms clock per event loop for every stream that sends paced audio.

Streams start on a 2 ms grid, so at most ten distinct send instants exist per 20 ms; each
instant is one `call_at` that sends a frame for every stream due then. With 500 streams
that is 500 timer callbacks a second instead of 25 000, and one loop wake-up serves ~50
sends. Due times are computed from each stream's start (never accumulated), so there is no
drift; the grid adds at most 2 ms to a stream's first frame and nothing afterwards.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Protocol

GRID = 0.002


class Paced(Protocol):
    generation: int  # changes on every start/stop: a stale bucket entry is skipped

    def _tick(self) -> None: ...


class Pacer:
    """Buckets of streams by due instant (in grid units), one timer per bucket."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._buckets: dict[int, dict[Paced, int]] = {}
        self._handles: dict[int, asyncio.TimerHandle] = {}

    @staticmethod
    def align(when: float) -> float:
        """The first grid instant at or after `when`."""
        return math.ceil(when / GRID - 1e-6) * GRID

    def schedule(self, stream: Paced, due: float) -> int:
        """Run `stream._tick()` at `due` (rounded to the grid); returns the bucket key."""
        key = round(due / GRID)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = {}
            self._handles[key] = self.loop.call_at(key * GRID, self._fire, key)
        bucket[stream] = stream.generation
        return key

    def cancel(self, stream: Paced, key: int) -> None:
        bucket = self._buckets.get(key)
        if bucket is None or stream not in bucket:
            return
        del bucket[stream]
        if not bucket:
            del self._buckets[key]
            self._handles.pop(key).cancel()

    def _fire(self, key: int) -> None:
        bucket = self._buckets.pop(key, {})
        self._handles.pop(key, None)
        for stream, generation in bucket.items():
            if stream.generation == generation:
                stream._tick()


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pacer] = (
    weakref.WeakKeyDictionary())


def pacer_for(loop: asyncio.AbstractEventLoop) -> Pacer:
    pacer = _pacers.get(loop)
    if pacer is None:
        pacer = _pacers[loop] = Pacer(loop)
    return pacer
