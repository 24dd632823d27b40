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
import math
import threading
import time
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


class _Holdings:
    """The calls this node holds lines for, so it refreshes its own leases and no others.

    A call is refreshed for at most ``max_hold_seconds`` after it took its line: a call
    handler that crashed without releasing must not keep a line alive forever through
    the node's heartbeat. Thread-safe (the sync counter is shared by handler threads).
    """

    def __init__(self, max_hold_seconds: float | None) -> None:
        if max_hold_seconds is not None and not max_hold_seconds > 0:
            raise ValueError(f"max_hold_seconds must be > 0 or None, not {max_hold_seconds!r}")
        self._max_hold = max_hold_seconds
        self._calls: dict[str, tuple[str, float]] = {}  # call id -> (number, refresh until)
        self._lock = threading.Lock()

    def add(self, call_id: str, number: str) -> None:
        until = math.inf if self._max_hold is None else time.monotonic() + self._max_hold
        with self._lock:
            self._calls[call_id] = (number, until)

    def drop(self, call_id: str, number: str | None = None) -> None:
        with self._lock:
            held = self._calls.get(call_id)
            if held is not None and (number is None or held[0] == number):
                del self._calls[call_id]

    def refreshable(self, only: str | None = None) -> tuple[list[tuple[str, str]], list[str]]:
        """(call id, number) of the calls to refresh, and the calls past their maximum
        hold, which are forgotten here so that their leases run out."""
        now = time.monotonic()
        keep: list[tuple[str, str]] = []
        overdue: list[str] = []
        with self._lock:
            if only is None:
                items = list(self._calls.items())
            else:
                items = [(only, self._calls[only])] if only in self._calls else []
            for call_id, (number, until) in items:
                if now < until:
                    keep.append((call_id, number))
                else:
                    overdue.append(call_id)
                    del self._calls[call_id]
        for call_id in overdue:
            log.warning("call %s held a line past max_hold_seconds: no longer refreshed", call_id)
        return keep, overdue


class _Config:
    """What the sync and asyncio counters share: keys, script texts, lease, policies."""

    def __init__(
        self,
        prefix: str,
        lease_seconds: float,
        when_unavailable: WhenUnavailable,
        max_hold_seconds: float | None,
    ) -> None:
        self._prefix = prefix
        self._lease_ms = _lease_ms(lease_seconds)
        self._when = _check_when(when_unavailable)
        self._holdings = _Holdings(max_hold_seconds)

    def key(self, number: str) -> str:
        """The sorted set holding ``number``'s leases."""
        return f"{self._prefix}lines:{number}"


class RedisLineCounter(_Config):
    """A :class:`~legato.core.policy.lines.LineCounter` shared by every node on one Redis.

    ``max_hold_seconds`` (default 4 h, above the 1 h default ``max_duration`` plus
    ringing) caps how long a call's lease is refreshed.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "legato:",
        lease_seconds: float = 90.0,
        when_unavailable: WhenUnavailable = "raise",
        max_hold_seconds: float | None = 4 * 3600.0,
    ) -> None:
        super().__init__(prefix, lease_seconds, when_unavailable, max_hold_seconds)
        self._client = client
        self._acquire = client.register_script(ACQUIRE)
        self._refresh = client.register_script(REFRESH)
        self._in_use = client.register_script(IN_USE)

    def acquire(self, number: str, limit: int | None, call_id: str) -> bool:
        args: list[int | str] = [_limit_arg(limit), call_id, self._lease_ms]
        try:
            taken = bool(self._acquire(keys=[self.key(number)], args=args))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return _unavailable(self._when, number, call_id, exc)
        if taken:
            self._holdings.add(call_id, number)
        return taken

    def release(self, number: str, call_id: str) -> None:
        """Never raises: release runs in ``finally`` blocks. If Redis is unreachable the
        call is forgotten here, so its lease is no longer refreshed and runs out."""
        self._holdings.drop(call_id, number)
        try:
            self._client.zrem(self.key(number), call_id)
        except redis.RedisError as exc:
            _release_failed(number, call_id, exc)

    def in_use(self, number: str) -> int:
        return int(self._in_use(keys=[self.key(number)]))

    def refresh(self, call_id: str) -> bool:
        """Extend the lease of a call this counter holds; False if it holds none, is past
        its maximum hold, or the lease had already expired (the line may be another
        call's by now)."""
        return call_id not in self._refresh_calls(call_id)

    def refresh_all(self) -> list[str]:
        """Extend every lease this counter holds in one round trip; returns the lost ones."""
        return self._refresh_calls(None)

    def _refresh_calls(self, only: str | None) -> list[str]:
        held, lost = self._holdings.refreshable(only)
        if only is not None and not held and not lost:
            return [only]  # not held at all
        if held:
            pipe = self._client.pipeline(transaction=False)
            for call_id, number in held:
                self._refresh(keys=[self.key(number)], args=[call_id, self._lease_ms], client=pipe)
            results: list[Any] = pipe.execute()
            lost += _expired(held, results, self._holdings)
        return lost


class AsyncRedisLineCounter(_Config):
    """The same counter for asyncio drivers (the SIP B2BUA), on ``redis.asyncio``."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "legato:",
        lease_seconds: float = 90.0,
        when_unavailable: WhenUnavailable = "raise",
        max_hold_seconds: float | None = 4 * 3600.0,
    ) -> None:
        super().__init__(prefix, lease_seconds, when_unavailable, max_hold_seconds)
        self._client = client
        self._acquire = client.register_script(ACQUIRE)
        self._refresh = client.register_script(REFRESH)
        self._in_use = client.register_script(IN_USE)

    async def acquire(self, number: str, limit: int | None, call_id: str) -> bool:
        args: list[int | str] = [_limit_arg(limit), call_id, self._lease_ms]
        try:
            taken = bool(await self._acquire(keys=[self.key(number)], args=args))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return _unavailable(self._when, number, call_id, exc)
        if taken:
            self._holdings.add(call_id, number)
        return taken

    async def release(self, number: str, call_id: str) -> None:
        """Never raises (see :meth:`RedisLineCounter.release`)."""
        self._holdings.drop(call_id, number)
        try:
            await self._client.zrem(self.key(number), call_id)
        except redis.RedisError as exc:
            _release_failed(number, call_id, exc)

    async def in_use(self, number: str) -> int:
        return int(await self._in_use(keys=[self.key(number)]))

    async def refresh(self, call_id: str) -> bool:
        """See :meth:`RedisLineCounter.refresh`."""
        return call_id not in await self._refresh_calls(call_id)

    async def refresh_all(self) -> list[str]:
        """Extend every held lease in one round trip; returns the lost ones."""
        return await self._refresh_calls(None)

    async def _refresh_calls(self, only: str | None) -> list[str]:
        held, lost = self._holdings.refreshable(only)
        if only is not None and not held and not lost:
            return [only]
        if held:
            pipe = self._client.pipeline(transaction=False)
            for call_id, number in held:
                await self._refresh(
                    keys=[self.key(number)], args=[call_id, self._lease_ms], client=pipe
                )
            results: list[Any] = await pipe.execute()
            lost += _expired(held, results, self._holdings)
        return lost


def _expired(held: list[tuple[str, str]], results: list[Any], holdings: _Holdings) -> list[str]:
    """The calls whose lease Redis no longer had; they are forgotten."""
    lost = [call_id for (call_id, _), ok in zip(held, results, strict=True) if not ok]
    for call_id in lost:
        holdings.drop(call_id)
    return lost


def _release_failed(number: str, call_id: str, exc: Exception) -> None:
    log.warning("lines for %s: release of %s failed (%s); its lease will expire",
                number, call_id, exc)  # fmt: skip
