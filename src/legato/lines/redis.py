"""Cluster-wide line counts in Redis: atomic, and leased so dead nodes do not leak lines.

Each number is one sorted set: member = call id, score = when that call's lease expires
(milliseconds, Redis server clock). Every script first drops expired leases, so a call
whose node died stops counting ``lease_seconds`` after its last refresh. Live calls
longer than a lease must be refreshed (:meth:`RedisLineCounter.refresh_all` from a
heartbeat every third of a lease or so).

Why the server clock (``TIME`` inside the scripts): nodes' clocks drift; Redis is the
one clock every node agrees on. Why one key per number: each script touches one key,
so it runs unchanged on Redis Cluster. Needs Redis >= 5 (effects replication of TIME).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

import redis
import redis.asyncio

from legato.core.policy.lines import check_limit

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
"""

# The key lives exactly as long as its longest lease, so idle numbers leave no keys.
_KEEP_KEY = """
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2]))) end
"""

#: KEYS[1] = the number's set; ARGV = limit (-1: none), call id, lease ms. 1 = taken.
ACQUIRE = (
    _NOW
    + """
local limit = tonumber(ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  if limit >= 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
"""
    + _KEEP_KEY
    + "return 1\n"
)

#: KEYS[1]; ARGV = call id, lease ms. 1 = extended, 0 = the lease had already gone.
REFRESH = (
    _NOW
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
"""
    + _KEEP_KEY
    + "return 1\n"
)

#: KEYS[1]. The number of live leases.
IN_USE = _NOW + "return redis.call('ZCARD', KEYS[1])\n"


log = logging.getLogger(__name__)

#: What acquire does when Redis cannot be reached: raise :class:`LinesUnavailable`, admit
#: the call uncounted (availability over the limit), or refuse it (MAX-USE).
WhenUnavailable = Literal["raise", "admit", "refuse"]


class LinesUnavailable(RuntimeError):
    """Redis could not be reached to count lines."""


def _unavailable(when: WhenUnavailable, number: str, call_id: str, exc: Exception) -> bool:
    if when == "raise":
        raise LinesUnavailable(f"lines for {number}: Redis unavailable ({exc})") from exc
    log.warning("lines for %s: Redis unavailable (%s); %s call %s", number, exc,
                "admitting" if when == "admit" else "refusing", call_id)  # fmt: skip
    return when == "admit"


def _check_when(when: str) -> WhenUnavailable:
    if when not in ("raise", "admit", "refuse"):
        raise ValueError(f"when_unavailable must be raise, admit or refuse, not {when!r}")
    return when  # type: ignore[return-value]


def _lease_ms(lease_seconds: float) -> int:
    if not lease_seconds > 0:
        raise ValueError(f"lease_seconds must be > 0, not {lease_seconds!r}")
    return max(1, round(lease_seconds * 1000))


def _limit_arg(limit: int | None) -> int:
    check_limit(limit)
    return -1 if limit is None else limit


class RedisLineCounter:
    """A :class:`~legato.core.policy.lines.LineCounter` shared by every node on one Redis.

    The counter remembers which calls it holds, so a node can refresh all of its own
    leases at once and never touches the leases of other nodes.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "legato:",
        lease_seconds: float = 90.0,
        when_unavailable: WhenUnavailable = "raise",
    ) -> None:
        self._client = client
        self._when = _check_when(when_unavailable)
        self._prefix = prefix
        self._lease_ms = _lease_ms(lease_seconds)
        self._acquire = client.register_script(ACQUIRE)
        self._refresh = client.register_script(REFRESH)
        self._in_use = client.register_script(IN_USE)
        self._held: dict[str, str] = {}  # call id -> number, for refresh
        self._lock = threading.Lock()

    def key(self, number: str) -> str:
        return f"{self._prefix}lines:{number}"

    def acquire(self, number: str, limit: int | None, call_id: str) -> bool:
        limit_arg = _limit_arg(limit)
        args: list[int | str] = [limit_arg, call_id, self._lease_ms]
        try:
            taken = bool(self._acquire(keys=[self.key(number)], args=args))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return _unavailable(self._when, number, call_id, exc)
        if taken:
            with self._lock:
                self._held[call_id] = number
        return taken

    def release(self, number: str, call_id: str) -> None:
        """Never raises: release runs in ``finally`` blocks. If Redis is unreachable the
        call is forgotten here, so its lease is no longer refreshed and runs out."""
        with self._lock:
            if self._held.get(call_id) == number:
                del self._held[call_id]
        try:
            self._client.zrem(self.key(number), call_id)
        except redis.RedisError as exc:
            log.warning("lines for %s: release of %s failed (%s); its lease will expire",
                        number, call_id, exc)  # fmt: skip

    def in_use(self, number: str) -> int:
        return int(self._in_use(keys=[self.key(number)]))

    def refresh(self, call_id: str) -> bool:
        """Extend the lease of a call this counter holds; False if it holds none or the
        lease had already expired (the line may be taken by another call by now)."""
        with self._lock:
            number = self._held.get(call_id)
        if number is None:
            return False
        kept = bool(self._refresh(keys=[self.key(number)], args=[call_id, self._lease_ms]))
        if not kept:
            with self._lock:
                self._held.pop(call_id, None)
        return kept

    def refresh_all(self) -> list[str]:
        """Extend every lease this counter holds in one round trip; returns the lost ones."""
        with self._lock:
            held = list(self._held.items())
        if not held:
            return []
        pipe = self._client.pipeline(transaction=False)
        for call_id, number in held:
            self._refresh(keys=[self.key(number)], args=[call_id, self._lease_ms], client=pipe)
        results: list[Any] = pipe.execute()
        lost = [call_id for (call_id, _), ok in zip(held, results, strict=True) if not ok]
        with self._lock:
            for call_id in lost:
                self._held.pop(call_id, None)
        return lost


class AsyncRedisLineCounter:
    """The same counter for asyncio drivers (the SIP B2BUA), on ``redis.asyncio``."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "legato:",
        lease_seconds: float = 90.0,
        when_unavailable: WhenUnavailable = "raise",
    ) -> None:
        self._client = client
        self._when = _check_when(when_unavailable)
        self._prefix = prefix
        self._lease_ms = _lease_ms(lease_seconds)
        self._acquire = client.register_script(ACQUIRE)
        self._refresh = client.register_script(REFRESH)
        self._in_use = client.register_script(IN_USE)
        self._held: dict[str, str] = {}  # one event loop: no lock needed

    def key(self, number: str) -> str:
        return f"{self._prefix}lines:{number}"

    async def acquire(self, number: str, limit: int | None, call_id: str) -> bool:
        limit_arg = _limit_arg(limit)
        try:
            taken = bool(
                await self._acquire(
                    keys=[self.key(number)], args=[limit_arg, call_id, self._lease_ms]
                )
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return _unavailable(self._when, number, call_id, exc)
        if taken:
            self._held[call_id] = number
        return taken

    async def release(self, number: str, call_id: str) -> None:
        """Never raises (see :meth:`RedisLineCounter.release`)."""
        if self._held.get(call_id) == number:
            del self._held[call_id]
        try:
            await self._client.zrem(self.key(number), call_id)
        except redis.RedisError as exc:
            log.warning("lines for %s: release of %s failed (%s); its lease will expire",
                        number, call_id, exc)  # fmt: skip

    async def in_use(self, number: str) -> int:
        return int(await self._in_use(keys=[self.key(number)]))

    async def refresh(self, call_id: str) -> bool:
        """Extend one held lease; False if not held or already expired."""
        number = self._held.get(call_id)
        if number is None:
            return False
        kept = bool(await self._refresh(keys=[self.key(number)], args=[call_id, self._lease_ms]))
        if not kept:
            self._held.pop(call_id, None)
        return kept

    async def refresh_all(self) -> list[str]:
        """Extend every held lease in one round trip; returns the lost ones."""
        held = list(self._held.items())
        if not held:
            return []
        pipe = self._client.pipeline(transaction=False)
        for call_id, number in held:
            await self._refresh(
                keys=[self.key(number)], args=[call_id, self._lease_ms], client=pipe
            )
        results: list[Any] = await pipe.execute()
        lost = [call_id for (call_id, _), ok in zip(held, results, strict=True) if not ok]
        for call_id in lost:
            self._held.pop(call_id, None)
        return lost
