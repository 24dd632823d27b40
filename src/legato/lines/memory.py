"""Exact in-process line counts, for one node (the sim, a single-node deployment)."""

from __future__ import annotations

import threading

from legato.core.policy.lines import check_limit


class MemoryLineCounter:
    """Lines held per number, as the set of call ids holding them.

    A lock makes acquire atomic for call handlers on several threads; uncontended it
    costs well under a microsecond, so the single-threaded sim does not notice it.
    """

    def __init__(self) -> None:
        self._held: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def acquire(self, number: str, limit: int | None, call_id: str) -> bool:
        check_limit(limit)
        with self._lock:
            calls = self._held.get(number)
            if calls is None:
                if limit == 0:
                    return False
                self._held[number] = {call_id}
                return True
            if call_id in calls:
                return True
            if limit is not None and len(calls) >= limit:
                return False
            calls.add(call_id)
            return True

    def release(self, number: str, call_id: str) -> None:
        with self._lock:
            calls = self._held.get(number)
            if calls is None:
                return
            calls.discard(call_id)
            if not calls:
                del self._held[number]  # the table only holds numbers with live calls

    def in_use(self, number: str) -> int:
        with self._lock:
            return len(self._held.get(number, ()))
