"""The virtual network: runs any number of calls through the engine on one virtual clock.

Every phone behaves as its `PhoneBehaviour` says; Legato's own timers come from each
call's `get_timer()`. At the same instant, what the phones do is handled before Legato's
timers, and earlier-scheduled before later (so attempts dialled earlier end first).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from itertools import count
from typing import Any

from legato.core.engine import Call
from legato.core.events import (
    Cancel,
    Dial,
    Digits,
    Event,
    FetchFlow,
    FlowFetched,
    Gather,
    Hangup,
    LegAnswered,
    LegFailed,
    LegHangup,
    LegProgress,
    Play,
    PlayDone,
    Reject,
    Ring,
)
from legato.core.record import CallRecord
from legato.sim.phones import PhoneBehaviour

_PHONE, _TIMER = 0, 1


class _Active:
    """A call on the network: the engine plus which phone is on which leg."""

    __slots__ = ("call", "dead", "done", "numbers", "on_done", "timer_at")

    def __init__(self, call: Call | Callable[[float], Call],
                 on_done: Callable[[CallRecord], None] | None) -> None:
        self.call: Any = call
        self.numbers: dict[int, str] = {}
        self.dead: set[int] = set()
        self.timer_at: float | None = None
        self.done = False
        self.on_done = on_done


#: Answers a call's `FetchFlow`: call ``reply`` with the `FlowFetched` event, at once or
#: later (the event is handled at the network's time of the reply).
Fetcher = Callable[[FetchFlow, Call, Callable[[FlowFetched], None]], None]


class SimNetwork:
    """A telephone network made of virtual phones and a virtual clock."""

    def __init__(self, phones: Mapping[str, PhoneBehaviour],
                 default: PhoneBehaviour | None = None,
                 fetcher: Fetcher | None = None) -> None:
        self.phones = phones
        self.default = default  # None: unknown numbers are unreachable
        self.fetcher = fetcher  # where dynamic flows come from (None: they fail)
        self.now = 0.0
        self._heap: list[tuple[float, int, int, _Active, object]] = []
        self._seq = count()
        self._finished = 0  # calls done since the heap was last compacted

    # -------------------------------------------------------------------- calls
    def place(self, call: Call | Callable[[float], Call], at: float | None = None,
              on_done: Callable[[CallRecord], None] | None = None) -> _Active:
        """Start a call at virtual time ``at`` (default: now); returns its handle for `act`.

        ``call`` may be a factory taking the start time, for calls whose admission depends
        on the network's state when they arrive (lines in use).
        """
        active = _Active(call, on_done)
        when = self.now if at is None else at
        self._push(when, _TIMER, active, "start")
        return active

    def act(self, handle: _Active, step: Callable[[Any, float], None], now: float) -> bool:
        """Give a running call an input from outside the network (the API ending or
        redirecting it) at ``now``, and carry out what it says at once. False when the
        call has not started yet or is over."""
        if handle.done or not hasattr(handle.call, "spec"):  # over, or its factory not run
            return False
        self.now = max(self.now, now)
        step(handle.call, self.now)
        self._after(handle, self.now)
        return True

    def run(self, until: float | None = None) -> None:
        """Advance the clock, handling everything due up to ``until`` (default: all)."""
        heap, pop, after = self._heap, heapq.heappop, self._after
        while heap:
            when, kind, _, active, item = heap[0]
            if until is not None and when > until:
                break
            pop(heap)
            if active.done:
                continue
            self.now = when
            call = active.call
            if kind == _PHONE:
                event: Event = item  # type: ignore[assignment]
                if active.dead and getattr(event, "leg", None) in active.dead:
                    continue
                call.handle(event, when)
            elif item == "start":
                if not isinstance(call, Call):
                    call = active.call = call(when)
                call.start(when)
            else:
                if active.timer_at != when:
                    continue  # a timer that was moved or cleared
                active.timer_at = None
                call.handle_timer(when)
            after(active, when)
        if until is not None:
            self.now = max(self.now, until)

    @property
    def pending(self) -> int:
        """How many phone events and timers are scheduled (stale ones included)."""
        return len(self._heap)

    def next_time(self) -> float | None:
        """When something is next due (for a driver running at wall-clock speed)."""
        return self._heap[0][0] if self._heap else None

    # ---------------------------------------------------------------- internals
    def _push(self, when: float, kind: int, active: _Active, item: object) -> None:
        heapq.heappush(self._heap, (when, kind, next(self._seq), active, item))

    def _after(self, active: _Active, now: float) -> None:
        """Carry out the call's commands, then schedule its next timer."""
        call = active.call
        while call.commands:
            commands, call.commands = call.commands, []
            for command in commands:
                handler = _CARRY_OUT.get(type(command))
                if handler is not None:  # Answer, StopPlay, Bridge: nothing to do here
                    handler(self, active, command, now)
        if call.settled:
            active.done = True
            if active.on_done is not None:
                active.on_done(call.record)
            self._finished += 1
            if self._finished >= 1024 and len(self._heap) > 8192:
                self._compact()
            return
        timer = call.get_timer()
        if timer is not None and timer != active.timer_at:
            active.timer_at = timer
            self._push(timer, _TIMER, active, "timer")

    def _compact(self) -> None:
        """Drop what finished calls left in the heap (their maximum-duration timers would
        otherwise sit there for an hour of virtual time and slow every heap operation)."""
        self._finished = 0
        live = [entry for entry in self._heap if not entry[3].done]
        if len(live) < len(self._heap):
            heapq.heapify(live)
            self._heap[:] = live

    def _behaviour(self, number: str) -> PhoneBehaviour | None:
        return self.phones.get(number, self.default)

    def _on_dial(self, active: _Active, command: Dial, now: float) -> None:
        active.numbers[command.leg] = command.number
        self._dial(active, command.leg, self.phones.get(command.number, self.default), now)

    def _on_ring(self, active: _Active, command: Ring, now: float) -> None:
        """The inbound caller's phone: it may hang up `hangup_after` after the start."""
        call = active.call
        number = call.spec.leg1[0]
        active.numbers[command.leg] = number
        b = self._behaviour(number)
        if b is not None and b.hangup_after is not None:
            self._push(call.record.t0 + b.hangup_after, _PHONE, active, LegHangup(command.leg))

    def _on_cancel(self, active: _Active, command: Cancel, now: float) -> None:
        active.dead.add(command.leg)
        active.call.handle(LegFailed(command.leg, 487), now)  # the far end answers 487 at once

    def _on_gone(self, active: _Active, command: Hangup | Reject, now: float) -> None:
        active.dead.add(command.leg)

    def _on_play(self, active: _Active, command: Play, now: float) -> None:
        self._push(now + command.seconds, _PHONE, active, PlayDone(command.play))

    def _on_fetch(self, active: _Active, command: FetchFlow, now: float) -> None:
        def reply(event: FlowFetched) -> None:
            if not active.done:
                self._push(self.now, _PHONE, active, event)

        if self.fetcher is None:
            reply(FlowFetched(command.request, None, "this network has no flow fetcher: "
                              "dynamic flows (flow_url, redirect, actions) cannot be fetched"))
        else:
            self.fetcher(command, active.call, reply)

    def _on_gather(self, active: _Active, command: Gather, now: float) -> None:
        self._push(now + command.seconds, _PHONE, active, PlayDone(command.play))
        b = self._behaviour(active.numbers.get(command.leg, ""))
        if b is not None and len(b.dtmf) >= command.gather and b.dtmf[command.gather - 1]:
            self._push(now + command.seconds + 1.0, _PHONE, active,
                       Digits(command.leg, b.dtmf[command.gather - 1]))

    def _dial(self, active: _Active, leg: int, b: PhoneBehaviour | None, now: float) -> None:
        push = self._push
        if b is None or b.unreachable:
            push(now, _PHONE, active, LegFailed(leg, None))
        elif b.busy:
            push(now, _PHONE, active, LegFailed(leg, 486))
        elif b.congestion:
            push(now, _PHONE, active, LegFailed(leg, 503, 34))
        elif b.sip_status is not None:
            push(now, _PHONE, active, LegFailed(leg, b.sip_status, b.q850))
        else:
            push(now, _PHONE, active, LegProgress(leg, 180))
            if b.reject_after is not None:
                push(now + b.reject_after, _PHONE, active, LegFailed(leg, 603))
            elif not b.no_answer:
                answer = now + (b.answer_after or 0.0)
                push(answer, _PHONE, active, LegAnswered(leg))
                if b.hangup_after is not None:
                    push(answer + b.hangup_after, _PHONE, active, LegHangup(leg))


_CARRY_OUT: dict[type, Callable[[SimNetwork, _Active, Any, float], None]] = {
    Dial: SimNetwork._on_dial,
    Ring: SimNetwork._on_ring,
    Cancel: SimNetwork._on_cancel,
    Hangup: SimNetwork._on_gone,
    Reject: SimNetwork._on_gone,
    Play: SimNetwork._on_play,
    Gather: SimNetwork._on_gather,
    FetchFlow: SimNetwork._on_fetch,
}
