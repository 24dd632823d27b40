"""Runs calls on the sim network at wall-clock speed, inside the server's asyncio loop.

One virtual network serves every call; its clock is the loop's clock times `speed`. A
pump task sleeps until the network's next due moment, runs it, and hands each call's new
state to a writer task that persists it in order (off the loop, in a thread), so the API
always reads the latest live record. The engine's inputs are journaled with each write;
on start-up, calls left unfinished by a crash are replayed from their journal and ended
by the platform at the moment of their last recorded input (see docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from legato.core.catalogue import Service
from legato.core.config import NumberConfig
from legato.core.engine import create_call
from legato.core.outcomes import Outcome
from legato.core.policy.dnd import DndLookup
from legato.core.record import CallRecord
from legato.service.directory import NumberDirectory
from legato.service.dnd import DndSource
from legato.service.journal import JournaledCall, replay, terminate
from legato.service.orders import order_for
from legato.service.spec import CallOrder, order_from_snapshot, snapshot, spec_from_order
from legato.sim import SimNetwork
from legato.store import calls as store
from legato.store.db import Database
from legato.store.ids import new_id
from legato.store.types import utcnow

log = logging.getLogger("legato.service")
_T = TypeVar("_T")

#: Why the platform ended a call it did not finish itself.
INTERRUPTED = "interrupted: the server stopped while the call was in progress; ended on restart"
NEVER_STARTED = "interrupted: the server stopped before the call was started; ended on restart"
SHUTDOWN = "interrupted: the server was shut down while the call was in progress"
#: Back-off between attempts to persist call writes while the database is unavailable.
WRITE_RETRY_FIRST, WRITE_RETRY_MAX = 0.25, 8.0
#: How often the runtime checks whether `legato dnd import` switched the registry version.
DND_REFRESH_SECONDS = 30.0
#: How often the runtime checks for numbers changed outside its API (e.g. `legato numbers`).
DIRECTORY_REFRESH_SECONDS = 3.0


@dataclass(slots=True)
class _Write:
    call_id: str
    record: dict[str, Any]
    journal: list[Any]
    snapshot: dict[str, Any] | None = None
    final: bool = False
    end_reason: str | None = None
    #: A call that started by itself (an incoming SIP call): its row, inserted first.
    new: tuple[str, store.NewCall, datetime] | None = None
    #: A live write not yet taken: its record and journal are read from the running call
    #: when the writer picks it up (see `CallRuntime._take`).
    source: JournaledCall | None = None
    #: A new call's row only (`CallRuntime.store_call`: account, call), started when the
    #: writer builds it; `stored` is resolved with the stored Call once committed, or
    #: with the store's error.
    create: tuple[str, store.NewCall] | None = None
    stored: asyncio.Future[Any] | None = None
    inserted: Any = None


#: Called by the writer inside the transaction that persists call writes (webhook outbox),
#: before it writes them; a callable it returns is called after them, to write its rows.
WritesHook = Callable[[Session, Sequence[_Write]], object]


@dataclass(slots=True)
class Metrics:
    """What the benchmark reads: request -> first Dial handed to the driver, in seconds."""

    dial_latencies: list[float] = field(default_factory=list)
    completed: int = 0


class CallRuntime:
    """The live runtime of `legato serve`."""

    def __init__(
        self,
        database: Database,
        network: SimNetwork,
        speed: float = 1.0,
        on_writes: WritesHook | None = None,
        dnd: DndSource | None = None,
        directory: NumberDirectory | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.database = database
        self.network = network
        self.speed = speed
        self.metrics = Metrics()
        self.on_writes = on_writes
        self.dnd = dnd
        #: The numbers incoming calls are routed by (a real network: `legato serve --driver sip`).
        self.directory = directory
        self._active: dict[str, JournaledCall] = {}
        self._handles: dict[str, Any] = {}  # call id -> the network's handle, for `act`
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._lines: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._epoch = 0.0
        self._wake = asyncio.Event()
        self._writes: asyncio.Queue[_Write | None] = asyncio.Queue()
        #: Calls with a live write queued and not yet taken by the writer.
        self._live_queued: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._directory_changed: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the pump and the writer, then end the calls a crash left unfinished."""
        self._loop = asyncio.get_running_loop()
        self._epoch = self._loop.time()
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._pump(), name="legato-sim-pump"),
            asyncio.create_task(self._writer(), name="legato-store-writer"),
        ]
        if self.dnd is not None:
            await asyncio.to_thread(self.dnd.refresh)
            self._tasks.append(asyncio.create_task(self._refresh_dnd(), name="legato-dnd"))
        if self.directory is not None:
            await asyncio.to_thread(self.directory.refresh, True)
            self._tasks.append(
                asyncio.create_task(self._refresh_directory(), name="legato-numbers")
            )
        recovered = await asyncio.to_thread(self.recover)
        if recovered:
            log.warning("ended %d call(s) interrupted by the previous stop", recovered)

    async def stop(self) -> None:
        """End every running call (platform, with a reason), persist, and stop the tasks."""
        now = self.virtual_now()
        for call_id, jcall in list(self._active.items()):
            terminate(jcall.call, max(now, _last_time(jcall.journal)))
            self._enqueue_final(call_id, jcall, SHUTDOWN)
        self._writes.put_nowait(None)
        writer = self._tasks[1] if len(self._tasks) > 1 else None
        if writer is not None:
            await writer
        for task in [t for t in self._tasks if t is not writer]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _refresh_dnd(self, every: float = DND_REFRESH_SECONDS) -> None:
        assert self.dnd is not None
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.dnd.refresh)
            except Exception:  # keep the last good index; say why
                log.exception("reloading the DND registry failed")

    async def _refresh_directory(self, every: float = DIRECTORY_REFRESH_SECONDS) -> None:
        """Follow number changes made outside this process (the CLI, another server)."""
        assert self.directory is not None
        self._directory_changed = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._directory_changed.wait(), every)
            self._directory_changed.clear()
            try:
                await asyncio.to_thread(self.directory.refresh)
            except Exception:  # keep routing with the last good directory; say why
                log.exception("reloading the numbers failed")

    def numbers_changed(self) -> None:
        """The API changed a number or an account's settings: reload the directory now.
        Callable from any thread."""
        loop, event = self._loop, self._directory_changed
        if loop is not None and event is not None:
            loop.call_soon_threadsafe(event.set)

    def _dnd_for(self, order: CallOrder) -> DndLookup | None:
        return None if self.dnd is None else self.dnd.lookup_for(order.config)

    def wake(self) -> None:
        """A real network changed a call outside the pump: persist its live state now."""
        self._wake.set()

    def virtual_now(self) -> float:
        """The network's clock: loop seconds since start, times the speed."""
        assert self._loop is not None, "the runtime is not started"
        return (self._loop.time() - self._epoch) * self.speed

    @property
    def running(self) -> int:
        return len(self._active)

    def lines_in_use(self, number: str) -> int:
        """Calls in progress on a Legato number, counted exactly in this process."""
        return self._lines[number]

    # ------------------------------------------------------------------- launching
    def launch(self, order: CallOrder) -> None:
        """Start a stored call; callable from any thread (routes run in a thread pool)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the runtime is not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._place(order)
        else:
            loop.call_soon_threadsafe(self._place, order)

    def _journaled(self, order: CallOrder, now: float) -> JournaledCall:
        """The running (journaled) engine call of an order, counted in lines in use."""
        in_use = self._lines[order.number]
        spec = spec_from_order(order, in_use, self._dnd_for(order))
        jcall = JournaledCall(
            create_call(spec, now), order.received_at or time.perf_counter(), time.perf_counter
        )
        self._active[order.call_id] = jcall
        self._snapshots[order.call_id] = snapshot(order, now, in_use)
        if order.service in (Service.INCOMING, Service.MISSED_CALL):
            self._lines[order.number] += 1
        return jcall

    def _place(self, order: CallOrder) -> None:
        now = self.virtual_now()
        # The call starts now, not when its row was stored (a writer pass and a commit
        # earlier): its record's times are the instants things happened.
        order = replace(order, started_at=utcnow())
        jcall = self._journaled(order, now)
        # Placed as a factory: the network then drives the journaling wrapper, not the engine.
        self._handles[order.call_id] = self.network.place(
            lambda _when: jcall,  # type: ignore[arg-type,return-value]
            at=now,
            on_done=lambda rec: self._done(order, rec),
        )
        self._step()
        self._wake.set()

    # ------------------------------------------------------------ acting on calls
    async def end_call(self, call_id: str, reason: str, *, canceled: bool = False) -> bool:
        """End a running call as the platform (the API, an operator): answered legs are
        hung up, ringing ones cancelled (``canceled``: their outcome is CANCELLED) or cut
        as a timer would cut them. False when the call is not running (any more).
        Returns once the final record is in the store."""
        cut = Outcome.CANCELLED if canceled else None

        def end(call: JournaledCall, now: float) -> None:
            call.terminate(now, reason, cut)

        return await self.act(call_id, end)

    async def act(self, call_id: str, step: Callable[[JournaledCall, float], None]) -> bool:
        """Give a running call one journaled input from outside its flow, on the runtime's
        loop, and wait until what it changed is stored. From any loop or thread's loop."""
        return await self._on_own_loop(lambda: self._act(call_id, step))

    async def _on_own_loop(self, make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        """Run a coroutine on the runtime's loop and wait for it, from any loop."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the runtime is not started")
        if asyncio.get_running_loop() is loop:
            return await make()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(make(), loop))

    async def _act(self, call_id: str, step: Callable[[JournaledCall, float], None]) -> bool:
        handle = self._handles.get(call_id)
        if handle is None or call_id not in self._active:
            return False
        if not self.network.act(handle, step, self.virtual_now()):
            return False
        self._step()
        self._wake.set()
        await self.drain()
        return True

    # ------------------------------------------------------- incoming (real network)
    def begin(
        self, number: str, config: NumberConfig, caller: str, now: float
    ) -> tuple[JournaledCall, Callable[[CallRecord], None]]:
        """An incoming call arrived on a real network (the driver's `IncomingCalls`): give
        it an id, journal it like an API call, and queue its row for the store."""
        assert self.directory is not None, "incoming calls need the number directory"
        account_id = self.directory.account_of(number)
        if account_id is None:  # deleted between the lookup and now (a reload in between)
            raise LookupError(f"{number} is no longer a Legato number")
        service = Service.MISSED_CALL if config.missed_call else Service.INCOMING
        started = utcnow()
        order = CallOrder(
            call_id=new_id("call"),
            service=service,
            number=number,
            leg1=(caller,),
            leg2=(),
            config=config,
            started_at=started,
            received_at=time.perf_counter(),
        )
        jcall = self._journaled(order, now)
        new = store.NewCall(
            service=service.value,
            number=number,
            from_numbers=(caller,),
            to_numbers=(),
            request={"service": service.value, "number": number, "from": caller, "via": "sip"},
        )
        first = _Write(order.call_id, {}, [], self._snapshots.pop(order.call_id, None))
        first.new = (account_id, new, started)
        self._writes.put_nowait(first)
        self._idle.clear()
        return jcall, lambda record: self._done(order, record)

    async def store_call(self, account_id: str, new: store.NewCall) -> Any:
        """Insert a new call's row in the writer's next transaction and return the stored
        Call once it is committed (group commit: on SQLite the API's creates then share
        the writer's hold of the store's one write lock instead of each taking it).
        From any loop; raises what the store raised."""
        return await self._on_own_loop(lambda: self._store_call(account_id, new))

    async def _store_call(self, account_id: str, new: store.NewCall) -> Any:
        assert self._loop is not None
        stored: asyncio.Future[Any] = self._loop.create_future()
        write = _Write(new_id("call"), {}, [], None, create=(account_id, new), stored=stored)
        self._writes.put_nowait(write)
        self._idle.clear()
        return await stored

    def placed(self, call: JournaledCall, handle: Any) -> None:
        self._handles[call.spec.id] = handle

    # ----------------------------------------------------------------- the pump
    def _step(self) -> None:
        """Run everything due now, then queue a live write for every call that changed
        (one per call until the writer takes it: it then reads the call's latest state)."""
        self.network.run(until=self.virtual_now())
        for call_id, jcall in self._active.items():
            if jcall.dirty:
                jcall.dirty = False
                self._note_first_dial(jcall)
                snap = self._snapshots.pop(call_id, None)
                if call_id in self._live_queued and snap is None:
                    continue
                self._live_queued.add(call_id)
                self._writes.put_nowait(_Write(call_id, {}, [], snap, source=jcall))
                self._idle.clear()

    async def _pump(self) -> None:
        while True:
            try:
                self._step()
            except Exception:  # a bug in one call must not stop every other call
                log.exception("sim network step failed")
            due = self.network.next_time()
            timeout = None if due is None else max(0.0, (due - self.virtual_now()) / self.speed)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _done(self, order: CallOrder, record: CallRecord) -> None:
        jcall = self._active.get(order.call_id)
        if jcall is None:
            return
        self._note_first_dial(jcall)
        self._enqueue_final(order.call_id, jcall, jcall.error)
        if order.service in (Service.INCOMING, Service.MISSED_CALL):
            self._lines[order.number] -= 1
            if self._lines[order.number] <= 0:
                del self._lines[order.number]

    def _enqueue_final(self, call_id: str, jcall: JournaledCall, reason: str | None) -> None:
        self._active.pop(call_id, None)
        self._handles.pop(call_id, None)
        jcall.dirty = False
        self._writes.put_nowait(
            _Write(
                call_id,
                jcall.record.to_dict(),
                list(jcall.journal),
                self._snapshots.pop(call_id, None),
                final=True,
                end_reason=reason,
            )
        )
        self._idle.clear()
        self.metrics.completed += 1

    def _note_first_dial(self, jcall: JournaledCall) -> None:
        if jcall.first_dial_at is not None and jcall.launched_at is not None:
            self.metrics.dial_latencies.append(jcall.first_dial_at - jcall.launched_at)
            jcall.launched_at = None  # type: ignore[assignment]

    # ----------------------------------------------------------------- the writer
    async def _writer(self) -> None:
        """Persist queued call writes in order; a failed batch is kept and retried (with
        back-off) together with what arrives meanwhile, so a database outage loses nothing."""
        pending: list[_Write] = []
        stopping = False
        delay = WRITE_RETRY_FIRST
        while True:
            if not pending and not stopping:
                first = await self._writes.get()
                if first is None:
                    stopping = True
                else:
                    pending.append(first)
            while not self._writes.empty():
                item = self._writes.get_nowait()
                if item is None:
                    stopping = True
                else:
                    pending.append(item)
            self._take(pending)
            if pending:
                try:
                    await asyncio.to_thread(self._write, pending)
                    for w in pending:
                        if w.stored is not None and not w.stored.done():
                            w.stored.set_result(w.inserted)
                    pending, delay = [], WRITE_RETRY_FIRST
                except Exception as exc:
                    # A new call's request is waiting: it gets the error now and its row
                    # is not retried (the client was told it failed).
                    for w in pending:
                        if w.stored is not None and not w.stored.done():
                            w.stored.set_exception(exc)
                    pending = [w for w in pending if w.stored is None]
                    if not pending and self._writes.empty():
                        self._idle.set()
                    log.exception(
                        "persisting %d call update(s) failed; retrying in %.1f s",
                        len(pending),
                        delay,
                    )
                    if stopping and delay >= WRITE_RETRY_MAX:
                        log.error(
                            "giving up on %d call update(s) at shutdown; calls left "
                            "unfinished are ended on the next start",
                            len(pending),
                        )
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, WRITE_RETRY_MAX)
                    continue
            if self._writes.empty():
                self._idle.set()
            if stopping:
                return

    def _take(self, writes: list[_Write]) -> None:
        """Give queued live writes the call's state as it is now, on the loop (the engine
        is not thread-safe). Under load the writer's passes take longer and more changes
        of a call fold into one write: the record is encoded once per pass, not per step."""
        for w in writes:
            jcall = w.source
            if jcall is not None:
                w.source = None
                self._live_queued.discard(w.call_id)
                w.record, w.journal = jcall.record.to_dict(), list(jcall.journal)

    def _write(self, writes: list[_Write]) -> None:
        latest: dict[str, _Write] = {}
        order: list[_Write] = []
        ended = {w.call_id for w in writes if w.final}
        for w in writes:  # only the newest live state of a call is worth writing
            if not w.final and w.create is None and w.call_id not in ended:
                latest[w.call_id] = w  # (the final record supersedes it)
        for w in writes:
            if w.final or latest.get(w.call_id) is w:
                order.append(w)
        snapshots = {w.call_id: w.snapshot for w in writes if w.snapshot is not None}
        with self.database.session() as session:
            if self.database.backend == "postgresql" and not any(w.final for w in order):
                # Live states are rebuilt from the journal after a crash, so they need not
                # wait for the WAL flush; finals (and the API's call inserts) stay synchronous.
                session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            # Calls that started by themselves (incoming) first: their live write and the
            # hook read the row. The API's new calls (group commit) are written below.
            news = [(w.call_id, w.new) for w in writes if w.new is not None]
            for call_id, (account_id, new, started) in news:
                store.create_call(session, account_id, new, started, call_id=call_id)
            # Stored as accepted now; the call is placed once this commits, and its start
            # (what its record's times count from) is stamped then (`_place`).
            now = utcnow()
            fresh = [(w, w.create) for w in writes if w.create is not None]
            created = store.build_calls([(a, new, now, w.call_id) for w, (a, new) in fresh])
            if news:
                session.flush()  # the rows the updates below and the webhook hook read
            finals, lives = [], []
            for w in order:
                snap = snapshots.pop(w.call_id, None)
                if w.final:
                    finals.append(store.Final(w.call_id, w.record, w.end_reason, w.journal, snap))
                else:
                    lives.append(store.Live(w.call_id, w.record, w.journal, snap))
            # Read and build everything first, then write: SQLite's one write lock (the
            # store's write gate) is taken at the first write and held to the commit,
            # and every create request waits for it meanwhile.
            # Same transaction for the hook: what it writes (webhook events) exists if
            # and only if the call state behind it committed.
            hook = self.on_writes(session, order) if self.on_writes is not None else None
            ending = store.prepare_finals(session, finals)
            for (w, _), call in zip(fresh, store.insert_calls(session, created), strict=True):
                w.inserted = call
            store.save_lives(session, lives)  # one statement for all (executemany)
            store.apply_finals(session, ending)  # likewise; legs and events in bulk
            if callable(hook):
                hook()

    async def drain(self) -> None:
        """Wait until every queued state change is in the store (tests, benchmarks)."""
        await self._idle.wait()

    # ----------------------------------------------------------------- recovery
    def recover(self) -> int:
        """End every call a previous process left queued or in progress; returns how many."""
        with self.database.session() as session:
            pending = []
            for c in store.unfinished_calls(session):
                snap = dict(c.snapshot or {})
                if not snap:  # stored, but the crash came before it was started
                    snap = snapshot(order_for(session, c), 0.0, 0)
                # What the driver, not the engine, put in the live record (a recording's
                # path) is not in the journal: carry it over.
                recording = (c.record or {}).get("recording")
                pending.append((c.id, snap, list(c.journal or []), recording))
        for call_id, snap, journal, recording in pending:
            if call_id in self._active:
                continue
            try:
                record, reason = _recovered_record(call_id, snap, journal, self.dnd)
            except Exception:
                log.exception("cannot replay call %s; ending it without a record", call_id)
                record, reason = {}, INTERRUPTED
            if recording and not record.get("recording"):
                record["recording"] = recording
            with self.database.session() as session:
                store.finish_call(session, call_id, record, reason, journal, snap)
        return len(pending)


def _last_time(journal: list[Any]) -> float:
    return float(journal[-1][1]) if journal else 0.0


def _recovered_record(
    call_id: str, snap: dict[str, Any], journal: list[Any], dnd: DndSource | None = None
) -> tuple[dict[str, Any], str]:
    """Replay a call's journal into a fresh engine and end it where the journal stops.

    Admission is replayed against the DND registry current at recovery time."""
    order, t0, in_use = order_from_snapshot(call_id, snap)
    lookup = None if dnd is None else dnd.lookup_for(order.config)
    engine = create_call(spec_from_order(order, in_use, lookup), t0)
    if journal:
        replay(engine, journal)
    else:
        engine.start(t0)
        engine.commands.clear()
    terminate(engine, max(t0, _last_time(journal)))
    return engine.record.to_dict(), INTERRUPTED if journal else NEVER_STARTED
