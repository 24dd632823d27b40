"""The delivery worker: claims due deliveries, sends them signed, records every attempt.

Claiming is safe across workers and nodes: a delivery is reserved by a lease (a time and
a worker id) taken with a conditional UPDATE, and on PostgreSQL the candidate rows are
picked with `FOR UPDATE SKIP LOCKED` so claimers never wait on each other. A worker that
dies leaves its leases to expire, and the deliveries are sent again (at least once;
receivers de-duplicate by `webhook-id`). A call's event n+1 for an endpoint is claimable
only when no earlier event of that call is still pending for that endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import aiohttp
from sqlalchemy import Table, exists, func, insert, literal, or_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import aliased

import legato
from legato.store.db import Database
from legato.store.types import utcnow
from legato.webhooks import outbox
from legato.webhooks.claim import Claim
from legato.webhooks.models import (
    CALLBACK,
    DELIVERED,
    ENDPOINT,
    FAILED,
    PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from legato.webhooks.settings import WebhookSettings
from legato.webhooks.signing import sign_headers, signing_keys

log = logging.getLogger("legato.webhooks")

USER_AGENT = f"Legato-Webhooks/{legato.__version__}"
#: How long a failed (endpoint, call) keeps refusing hand-overs (they go to the claim
#: query instead): longer than any writer transaction between its read and its commit.
FAILED_MEMORY = 300.0
#: Seconds between two recordings of attempts (a crash in between re-sends those events:
#: delivery is at least once, and receivers de-duplicate by `webhook-id`).
RECORD_INTERVAL = 0.1
#: Bytes of a receiver's response kept in the attempt log.
EXCERPT_BYTES = 512


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt gave."""

    claim: Claim
    at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    excerpt: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Release:
    """A claimed delivery not attempted (an earlier one of its run failed)."""

    delivery_id: int


def _proxy_configured() -> bool:
    proxies = urllib.request.getproxies()
    return any(scheme in proxies for scheme in ("http", "https", "all", "ws", "wss"))


class DeliveryWorker:
    """One per `legato serve` process; any number may share a database."""

    def __init__(self, database: Database, settings: WebhookSettings | None = None) -> None:
        self.database = database
        self.settings = settings or WebhookSettings()
        self.worker_id = f"{socket.gethostname()[:20]}:{os.getpid()}:{secrets.token_hex(3)}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._results: asyncio.Queue[Outcome | Release | None] = asyncio.Queue()
        self._inflight: set[asyncio.Task[None]] = set()
        #: Deliveries being sent, per (endpoint, call): one task each, sending in order.
        self._runs: dict[tuple[str, str], deque[Claim]] = {}
        #: (endpoint, call) pairs whose send failed lately (time.monotonic()): what is
        #: handed over for them goes back to the claim query, behind the failed one.
        self._failed: dict[tuple[str, str], float] = {}
        #: (endpoint, call) -> attempts sent and waiting to be recorded.
        self._unrecorded: Counter[tuple[str, str]] = Counter()
        #: Endpoints whose last recorded attempt failed (the recorder's own bookkeeping).
        self._failing: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aiohttp.ClientSession | None = None
        self._stopping = False
        self.sent = 0
        #: Deliveries taken by the claim query (the rest came by hand-over).
        self.claimed = 0

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Complete the events of calls ended by crash recovery, then start sending."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        limit = self.settings.concurrency
        # aiohttp, not httpx: ~0.1 ms of CPU per request against 1.5-2.5 ms for httpx with
        # many connections open (its pool is scanned per request), which capped delivery
        # at a few hundred requests/s of a whole CPU. Cookies are not kept between events.
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            headers={"user-agent": USER_AGENT},
            cookie_jar=aiohttp.DummyCookieJar(),
            # With trust_env, aiohttp looks up the proxy variables and ~/.netrc in a thread
            # for every request (0.4 ms of CPU and two thread hops each): only when a proxy
            # is configured (HTTP(S)_PROXY, read once here) is that worth it.
            trust_env=_proxy_configured(),
        )
        outbox.add_waker(self.wake)
        outbox.set_local_worker(self.database.engine, self)
        try:
            done = await asyncio.to_thread(outbox.reconcile, self.database)
        except Exception:
            log.exception("webhook reconciliation failed; it runs again at the next start")
            done = 0
        if done:
            log.warning("queued the missing webhook events of %d recovered call(s)", done)
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="legato-webhook-claimer"),
            asyncio.create_task(self._record_loop(), name="legato-webhook-recorder"),
        ]

    async def stop(self, grace: float = 2.0) -> None:
        """Stop claiming, let attempts in flight finish briefly, record them, close."""
        outbox.remove_waker(self.wake)
        outbox.set_local_worker(self.database.engine, None)
        self._stopping = True
        self._wake.set()
        if self._tasks:
            # A flag, not only cancel(): Python 3.11's wait_for can swallow a cancellation
            # that races with the event it waits for, and the loop would go on.
            done, _ = await asyncio.wait({self._tasks[0]}, timeout=5)
            if not done:
                self._tasks[0].cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._tasks[0]
        if self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in late:  # their leases expire and another start sends them again
                task.cancel()
        self._results.put_nowait(None)
        if len(self._tasks) > 1:
            await self._tasks[1]
        self._tasks = []
        if self._client is not None:
            await self._client.close()

    def wake(self) -> None:
        """Look for work now; callable from any thread (the store writer's commit)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._wake.set)

    # ----------------------------------------------------------------- hand-over
    @property
    def lease_seconds(self) -> float:
        return self.settings.lease

    def is_sending(self, pair: tuple[str, str]) -> bool:
        """A run of the pair is in progress, or its last attempts are not recorded yet
        (their rows still say pending): what the writer leases now can follow them."""
        return pair in self._runs or pair in self._unrecorded

    def hand_over(self, items: list[Claim]) -> None:
        """Deliveries the writer leased to this worker; called from its thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # their leases expire and a claim takes them
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._take_over, items)

    def _take_over(self, items: list[Claim]) -> None:
        if self._stopping:
            return  # leases expire; the next start claims them
        claims: dict[tuple[str, str], list[Claim]] = {}
        for claim in items:
            claims.setdefault((claim.endpoint_id, claim.call_id), []).append(claim)
        now = time.monotonic()
        for pair, run in claims.items():
            failed = self._failed.get(pair)
            if pair not in self._runs and failed is not None and now - failed < FAILED_MEMORY:
                # An earlier event of this call failed after the writer looked: it must
                # go first, so these wait for the claim query like any successor.
                for claim in run:
                    self._results.put_nowait(Release(claim.delivery_id))
                continue
            self._dispatch(pair, run)

    def _dispatch(self, pair: tuple[str, str], run: list[Claim]) -> None:
        """Queue a run behind the pair's run in progress, or start one."""
        queued = self._runs.get(pair)
        if queued is not None:
            queued.extend(run)
            return
        self._runs[pair] = deque(run)
        task = asyncio.create_task(self._send_run(pair))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    # ----------------------------------------------------------------- claiming
    async def _claim_loop(self) -> None:
        s = self.settings
        while not self._stopping:
            self._wake.clear()
            wait = s.poll_interval
            free = s.concurrency - len(self._inflight)
            if free > 0:
                try:
                    claims, next_due = await asyncio.to_thread(self._claim, free)
                except Exception:
                    log.exception("claiming webhook deliveries failed")
                    claims, next_due = [], None
                self.claimed += len(claims)
                runs: dict[tuple[str, str], list[Claim]] = {}
                for claim in claims:
                    runs.setdefault((claim.endpoint_id, claim.call_id), []).append(claim)
                for pair, run in runs.items():
                    self._dispatch(pair, run)
                if claims and len(claims) >= free:
                    continue
                if next_due is not None:
                    wait = min(wait, max(0.0, (next_due - utcnow()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _claim(self, limit: int) -> tuple[list[Claim], datetime | None]:
        now = utcnow()
        d, e = WebhookDelivery, WebhookEndpoint
        earlier = aliased(WebhookDelivery)
        blocked = exists().where(
            earlier.endpoint_id == d.endpoint_id,
            earlier.call_id == d.call_id,
            earlier.sequence < d.sequence,
            earlier.state == PENDING,
        )
        free_lease = or_(d.lease_until.is_(None), d.lease_until < now)
        with self.database.session() as session:
            stmt = (
                select(d.id, d.endpoint_id, d.call_id)
                .join(e, e.id == d.endpoint_id)
                .where(
                    d.state == PENDING,
                    d.next_attempt_at <= now,
                    free_lease,
                    e.enabled.is_(True),
                    ~blocked,
                )
                .order_by(d.next_attempt_at, d.id)
                .limit(limit)
            )
            if self.database.backend == "postgresql":
                stmt = stmt.with_for_update(of=d, skip_locked=True)
            ids = self._with_successors(session, session.execute(stmt).all(), now)
            leased_at = time.monotonic()
            claims: list[Claim] = []
            if ids:
                got = list(
                    session.scalars(
                        update(d)
                        .where(d.id.in_(ids), d.state == PENDING, free_lease)
                        .values(
                            lease_until=now + timedelta(seconds=self.settings.lease),
                            leased_by=self.worker_id,
                        )
                        .returning(d.id)
                        .execution_options(synchronize_session=False)
                    )
                )
                if got:
                    claims = self._load(session, got, now, leased_at)
            next_due = session.scalar(
                select(func.min(d.next_attempt_at)).where(
                    d.state == PENDING, d.next_attempt_at > now
                )
            )
        return claims, next_due

    def _with_successors(self, session: Any, heads: Sequence[Any], now: datetime) -> list[int]:
        """The heads' ids (rows of id, endpoint, call) plus, for each head's endpoint and
        call, the pending events right behind it that are due and free: one task sends such
        a run in order, so the events a call's end produces (legs ended, completed) need
        one claim, not three."""
        if not heads:
            return []
        d = WebhookDelivery
        pairs = {(r.endpoint_id, r.call_id) for r in heads}
        rows = session.execute(
            select(d.id, d.endpoint_id, d.call_id, d.next_attempt_at, d.lease_until)
            .where(
                d.state == PENDING,
                d.call_id.in_({c for _, c in pairs}),
                d.endpoint_id.in_({e for e, _ in pairs}),
            )
            .order_by(d.endpoint_id, d.call_id, d.sequence)
        )
        out = {r.id for r in heads}
        stopped: set[tuple[str, str]] = set()
        for r in rows:
            key = (r.endpoint_id, r.call_id)
            if key not in pairs or key in stopped or r.id in out:
                continue
            free = r.lease_until is None or r.lease_until < now
            if r.next_attempt_at <= now and free:
                out.add(r.id)
            else:  # a gap: what follows must wait for it
                stopped.add(key)
        return sorted(out)

    def _load(self, session: Any, ids: list[int], now: datetime, leased_at: float) -> list[Claim]:
        d, e = WebhookDelivery, WebhookEndpoint
        rows = session.execute(
            select(
                d.id,
                d.call_id,
                d.endpoint_id,
                d.url,
                d.event_id,
                d.attempts,
                WebhookEvent.body,
                e.kind,
                e.url.label("endpoint_url"),
                e.secret,
                e.previous_secret,
                e.previous_expires_at,
            )
            .join(WebhookEvent, WebhookEvent.id == d.event_id)
            .join(e, e.id == d.endpoint_id)
            .where(d.id.in_(ids))
            .order_by(d.endpoint_id, d.call_id, d.sequence)
        )
        keys: dict[str, tuple[bytes, ...]] = {}
        claims = []
        for r in rows:
            if r.endpoint_id not in keys:
                keys[r.endpoint_id] = signing_keys(r, now)
            claims.append(
                Claim(
                    delivery_id=r.id,
                    call_id=r.call_id,
                    endpoint_id=r.endpoint_id,
                    kind=r.kind,
                    url=r.endpoint_url if r.kind == ENDPOINT else r.url,
                    event_id=r.event_id,
                    body=r.body.encode("utf-8"),
                    keys=keys[r.endpoint_id],
                    attempts=r.attempts,
                    leased_at=leased_at,
                )
            )
        return claims

    # ----------------------------------------------------------------- sending
    async def _send_run(self, pair: tuple[str, str]) -> None:
        """Send a call's events to one endpoint in order (more may be queued meanwhile);
        stop at the first failure and hand the rest back (they wait behind it)."""
        slack = self.settings.lease - self.settings.timeout  # > 0 (settings check it)
        budget = slack - min(1.0, slack / 2)
        run = self._runs[pair]
        try:
            while run:
                claim = run.popleft()
                # Only start an attempt that ends within the lease: past it, another
                # worker may take the delivery over, and it would be sent twice.
                if time.monotonic() - claim.leased_at > budget:
                    outcome = None
                    run.appendleft(claim)
                else:
                    outcome = await self._send(claim)
                if outcome is None or not outcome.ok:
                    self._note_failed(pair)
                    for rest in run:
                        self._results.put_nowait(Release(rest.delivery_id))
                    run.clear()
                    return
        finally:
            if self._runs.get(pair) is run:
                del self._runs[pair]

    def _note_failed(self, pair: tuple[str, str]) -> None:
        now = time.monotonic()
        if len(self._failed) > 10_000:  # forget what no hand-over can still race with
            self._failed = {p: t for p, t in self._failed.items() if now - t < FAILED_MEMORY}
        self._failed[pair] = now

    async def _send(self, claim: Claim) -> Outcome:
        assert self._client is not None
        timeout = self.settings.timeout
        headers = sign_headers(claim.keys, claim.event_id, int(time.time()), claim.body)
        headers["content-type"] = "application/json"
        at = utcnow()
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        excerpt: str | None = None
        try:
            code, excerpt = await asyncio.wait_for(self._post(claim, headers), timeout)
            status = code
            if not 200 <= code < 300:
                error = f"HTTP {status}"
        except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
            error = f"timeout: no complete response within {timeout:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc or 'connection failed'}"
        except Exception as exc:  # a bad URL must fail the attempt, not the worker
            error = f"{type(exc).__name__}: {exc}"
        latency = (time.perf_counter() - started) * 1000.0
        outcome = Outcome(claim, at, status, round(latency, 2), error, excerpt)
        self._unrecorded[(claim.endpoint_id, claim.call_id)] += 1
        self._results.put_nowait(outcome)
        return outcome

    async def _post(self, claim: Claim, headers: dict[str, str]) -> tuple[int, str]:
        assert self._client is not None
        async with self._client.post(
            claim.url, data=claim.body, headers=headers, allow_redirects=False
        ) as r:
            kept = b""
            while len(kept) < EXCERPT_BYTES:
                chunk = await r.content.read(EXCERPT_BYTES - len(kept))
                if not chunk:
                    break
                kept += chunk
            return r.status, kept[:EXCERPT_BYTES].decode("utf-8", "replace")

    # ----------------------------------------------------------------- recording
    async def _record_loop(self) -> None:
        last = 0.0
        while True:
            first = await self._results.get()
            # At most one recording transaction per RECORD_INTERVAL: under load each took
            # the store's write lock (and a turn at the GIL per statement) beside the
            # call writer's passes; what waits meanwhile is recorded in the same one.
            pause = last + RECORD_INTERVAL - time.monotonic()
            if first is not None and pause > 0:
                await asyncio.sleep(pause)
            last = time.monotonic()
            batch = [first]
            while not self._results.empty():
                batch.append(self._results.get_nowait())
            outcomes = [o for o in batch if isinstance(o, Outcome)]
            released = [o.delivery_id for o in batch if isinstance(o, Release)]
            if outcomes or released:
                try:
                    await asyncio.to_thread(self._record, outcomes, released)
                    self.sent += len(outcomes)
                except Exception:  # leases expire; the deliveries are sent again
                    log.exception("recording %d webhook attempt(s) failed", len(outcomes))
                finally:
                    self._unrecorded.subtract(
                        (o.claim.endpoint_id, o.claim.call_id) for o in outcomes
                    )
                    self._unrecorded = +self._unrecorded  # drops pairs at zero
                # What was claimed by a query or failed may have let others become due;
                # a handed-over success changes nothing another claim could take.
                if released or not all(o.ok and o.claim.handed_over for o in outcomes):
                    self._wake.set()
            if None in batch:
                return

    def _record(self, outcomes: list[Outcome], released: list[int] | None = None) -> None:
        s = self.settings
        d = WebhookDelivery
        now = utcnow()
        # Rows first, statements last: on SQLite the store's write lock is held from the
        # first write to the commit.
        runs: dict[str, list[Outcome]] = {}
        attempts = [
            {
                "delivery_id": o.claim.delivery_id,
                "attempted_at": o.at,
                "status_code": o.status_code,
                "latency_ms": o.latency_ms,
                "error": o.error,
                "response_excerpt": o.excerpt,
            }
            for o in outcomes
        ]
        # Deliveries that end alike (all the successes, mostly) are updated by one
        # statement each: an executemany steps once per row, and on SQLite every step
        # gives up the GIL while the write lock is held (recording 160 attempts held it
        # for 30 ms under load).
        alike: dict[tuple[str, int | None, str | None, datetime | None], list[int]] = {}
        for o in outcomes:
            tries = o.claim.attempts + 1
            state, next_at = PENDING, None
            if o.ok:
                state = DELIVERED
            elif tries >= s.max_attempts:
                state = FAILED
            else:
                next_at = now + timedelta(seconds=s.backoff(tries))
            alike.setdefault((state, o.status_code, o.error, next_at), []).append(
                o.claim.delivery_id
            )
            if o.claim.kind == ENDPOINT:
                runs.setdefault(o.claim.endpoint_id, []).append(o)
        with self.database.session() as session:
            if released:
                session.execute(
                    update(d)
                    .where(d.id.in_(released), d.leased_by == self.worker_id)
                    .values(lease_until=None, leased_by=None)
                    .execution_options(synchronize_session=False)
                )
            if not outcomes:
                return
            session.execute(insert(WebhookAttempt), attempts)
            t = cast(Table, d.__table__)
            for (state, code, error, next_at), ids in alike.items():
                session.execute(  # only this worker's claims are touched
                    update(t)
                    .where(t.c.id.in_(ids), t.c.leased_by == self.worker_id)
                    .values(
                        state=state,
                        attempts=t.c.attempts + 1,
                        last_status_code=code,
                        last_error=error,
                        delivered_at=now if state == DELIVERED else None,
                        next_attempt_at=t.c.next_attempt_at if next_at is None else next_at,
                        lease_until=None,
                        leased_by=None,
                        updated_at=now,
                    )
                )
            for endpoint_id, seen in runs.items():
                self._count_failures(session, endpoint_id, seen, now)

    def _count_failures(
        self, session: Any, endpoint_id: str, seen: list[Outcome], now: datetime
    ) -> None:
        """Track the endpoint's run of consecutive failures (how many, since when); disable
        it once the run is both `disable_after` attempts long and `disable_after_seconds`
        old: under load a short outage fails hundreds of attempts in seconds."""
        e = WebhookEndpoint
        last_ok = max((i for i, o in enumerate(seen) if o.ok), default=-1)
        trailing = len(seen) - last_ok - 1
        first_failure = seen[last_ok + 1].at if trailing else None
        if last_ok >= 0:  # the run starts over after the last success
            count: Any = trailing
            since: Any = first_failure
        else:
            count = e.consecutive_failures + trailing
            since = func.coalesce(e.failing_since, literal(first_failure, e.failing_since.type))
        session.execute(
            update(e)
            .where(e.id == endpoint_id)
            .values(consecutive_failures=count, failing_since=since)
            .execution_options(synchronize_session=False)
        )
        recovered = last_ok >= 0 and (
            endpoint_id in self._failing or not all(o.ok for o in seen[:last_ok]))
        if trailing:
            self._failing.add(endpoint_id)
        else:
            self._failing.discard(endpoint_id)
        if recovered:
            session.execute(_due_now(endpoint_id, now))
        limit = self.settings.disable_after
        if limit <= 0 or trailing == 0:
            return
        last = seen[-1]
        lasted = timedelta(seconds=self.settings.disable_after_seconds)
        span = f" over at least {_duration(lasted)}" if lasted else ""
        reason = (
            f"disabled after {limit} consecutive failed attempts{span}; the last one, at "
            f"{last.at.isoformat(timespec='seconds')}, to {last.claim.url}: {last.error}. "
            "Fix the receiver, then enable the endpoint again: pending events are kept."
        )
        disabled = session.execute(
            update(e)
            .where(e.id == endpoint_id, e.enabled.is_(True), e.consecutive_failures >= limit,
                   e.failing_since <= now - lasted)
            .values(enabled=False, disabled_by="failures", disabled_reason=reason, disabled_at=now)
            .execution_options(synchronize_session=False)
        )
        if disabled.rowcount:  # a Core statement: the writer's memory would not see it
            sa_event.listen(
                session, "after_commit", lambda _s: outbox.forget_endpoints(), once=True)


def _due_now(endpoint_id: str, now: datetime) -> Any:
    """An endpoint that answers again after failing is back: its deliveries waiting out
    a back-off (up to an hour after a long outage) are due now, not at their next turn.
    Per-call order still holds: the claims send a call's events one after another."""
    d = WebhookDelivery
    return (
        update(d)
        .where(d.endpoint_id == endpoint_id, d.state == PENDING, d.next_attempt_at > now,
               d.leased_by.is_(None))
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


__all__ = ["CALLBACK", "DeliveryWorker", "signing_keys"]
