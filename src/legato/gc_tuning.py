"""Garbage-collector settings for processes that run many calls.

A call allocates many short-lived objects (events, commands, leg records) that form no
reference cycles and are freed by reference counting. CPython's default thresholds still
run a young-generation collection every 700 allocations, which costs a third of the sim's
throughput and adds tail latency in a server (sippy's p99 fell from 100-400 ms to 8-20 ms
with GC off, see shared/reference). We keep the collector on, for safety, but freeze what
start-up allocated and collect young objects far less often.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("legato")

YOUNG_THRESHOLD = 50_000
#: A server's thresholds: young 2,000, middle every 10th, no automatic full collection.
SERVER_THRESHOLDS = (2_000, 10, 1_000_000_000)
#: ...so a server collects cycles on a timer: about 0.2 cyclic objects per call would
#: otherwise add up over days (1,000 calls/s: ~17 M objects a day).
FULL_COLLECTION_SECONDS = 900.0


def tune_for_calls() -> None:
    """Throughput (the simulator, batch runs): freeze start-up objects and raise the
    young-generation threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)


def tune_for_server() -> None:
    """Latency (`legato serve`, the SIP driver): short pauses matter more than few
    collections. With 50,000 young objects one collection stalls the loop ~45 ms (SIP
    p99 INVITE->200 54-87 ms at 1,000 calls/s); with 2,000 young collections take
    < 1.5 ms and the middle generation's ~10 ms, for less CPU in all. No automatic full
    collection: with 10,000 calls held it would stop the loop for about a second, and
    calls leave next to no cycles (docs/performance.md, SIP section)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVER_THRESHOLDS)


async def collect_cycles(every: float = FULL_COLLECTION_SECONDS) -> None:
    """Run a full collection every ``every`` seconds while the server runs (a task), when
    `tune_for_server` turned the automatic ones off."""
    while True:
        await asyncio.sleep(every)
        if gc.get_threshold()[2] < SERVER_THRESHOLDS[2]:
            continue  # automatic full collections are on: nothing to do
        start = time.perf_counter()
        found = gc.collect()
        log.info("full collection: %d objects in %.0f ms", found,
                 (time.perf_counter() - start) * 1000)
