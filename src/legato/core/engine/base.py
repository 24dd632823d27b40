"""What every call flow shares: legs and attempts, timers, and the end of a call.

A `Call` is a sans-IO state machine in the style of aioquic: the driver feeds it events
with the current time, drains `commands`, and calls `handle_timer(now)` when
`get_timer()` says so. Nothing here reads a clock or touches the network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from legato.core.admission import Policy, Verdict, admit
from legato.core.catalogue import Service, Status
from legato.core.causes import ANSWERED_200, classify_response, is_ringing
from legato.core.config import FlowUrl, NumberConfig, Step
from legato.core.events import (
    Cancel,
    Command,
    Dial,
    Digits,
    Event,
    FlowFetched,
    Hangup,
    LegAnswered,
    LegFailed,
    LegHangup,
    LegProgress,
    PlayDone,
    Reject,
)
from legato.core.outcomes import Outcome, parallel_outcome
from legato.core.record import AdmissionRecord, CallRecord, LegRecord
from legato.core.resolver import CallFacts, resolve

#: How long a cancelled leg may take to send its final response before we stop waiting.
SETTLE_SECONDS = 32.0

#: What an unanswered inbound caller is refused with, by why the call stops (one table).
REJECTIONS: dict[Status | Outcome, tuple[int, int]] = {
    Status.BLOCKED: (603, 21),
    Status.MISWIG: (603, 21),
    Status.OFF_HOUR: (480, 18),
    Status.MAX_USE: (486, 17),
    Status.IVR: (480, 41),
    Outcome.BUSY: (486, 17),
    Outcome.NOANSWER: (480, 19),
    Outcome.CONGESTION: (503, 34),
    Outcome.CHANUNAVAIL: (503, 3),
    Outcome.FAILED: (480, 41),
    Outcome.CANCELLED: (487, 16),
}


@dataclass(frozen=True, slots=True)
class CallSpec:
    """Everything a call needs to start: who, which number, its config and policies."""

    id: str
    service: Service
    number: str
    leg1: tuple[str, ...]
    leg2: tuple[str, ...]
    config: NumberConfig
    policy: Policy
    started_at: datetime
    lines_in_use: int = 0
    category: int | None = None
    transactional: bool = False


_ANSWERED, _CANCELLED, _FAILED, _NOANSWER = (
    Outcome.ANSWERED,
    Outcome.CANCELLED,
    Outcome.FAILED,
    Outcome.NOANSWER,
)


def set_answered(rec: LegRecord, now: float) -> None:
    """Record that a leg answered: 200 OK, Q.850 16 at the end (from the cause map)."""
    ok = ANSWERED_200
    rec.outcome, rec.sip_code, rec.sip_reason = ok.outcome, ok.sip_code, ok.sip_reason
    rec.q850_cause, rec.q850_derived, rec.answered_at = ok.q850_cause, ok.q850_derived, now


# Leg states
RINGING, ANSWERED, CANCELLING, ENDED = 0, 1, 2, 3


class Leg:
    """The engine's view of one leg attempt; its facts live in ``rec``."""

    __slots__ = ("id", "party", "provisional", "rec", "state")

    def __init__(self, leg_id: int, party: str, rec: LegRecord) -> None:
        self.id = leg_id
        self.party = party  # "leg1" | "leg2": who this side is in `disconnected_by`
        self.rec = rec
        self.state = RINGING
        self.provisional = False


class DialGroup:
    """A set of attempts dialled for one step: agents of a dial step, or one side of a call."""

    __slots__ = ("action", "attempts", "caller_id", "leg", "numbers", "outcome", "parallel",
                 "ring_timeout", "role")

    def __init__(
        self, numbers: list[str], parallel: bool, ring_timeout: float, role: str, leg: int,
        caller_id: str | None = None, action: FlowUrl | None = None,
    ) -> None:
        self.caller_id = caller_id
        self.action = action
        self.numbers = numbers
        self.parallel = parallel
        self.ring_timeout = ring_timeout
        self.role = role
        self.leg = leg
        self.attempts: list[Leg] = []
        self.outcome: Outcome | None = None

    @property
    def pending(self) -> list[Leg]:
        return [a for a in self.attempts if a.state == RINGING]

    def settle(self, cut: Outcome | None = None) -> Outcome:
        """The step's outcome once nothing of it rings any more (DESIGN section 3)."""
        if self.outcome is None:
            outcomes = [a.rec.outcome or Outcome.FAILED for a in self.attempts]
            if cut is Outcome.CANCELLED:
                self.outcome = Outcome.CANCELLED
            elif not outcomes:
                self.outcome = Outcome.FAILED
            elif self.parallel:
                self.outcome = parallel_outcome(outcomes)
            else:
                self.outcome = outcomes[-1]
        return self.outcome


class Call:
    """The shared machinery of a call; services subclass it (incoming, click-to-call...)."""

    service: Service
    finished = False
    verdict: Verdict | None = None
    _first_answer: float | None = None
    _cancelling = 0  # legs cancelled that have not sent their final response

    def __init__(self, spec: CallSpec, now: float) -> None:
        self.spec = spec
        self.config = spec.config
        self.commands: list[Command] = []
        self.record = CallRecord(
            id=spec.id,
            service=spec.service,
            number=spec.number,
            started_at=spec.started_at,
            t0=now,
            from_numbers=spec.leg1,
            to_numbers=spec.leg2,
        )
        self.legs: list[Leg] = []
        self._timers: dict[object, float] = {}
        self._attempts = [0, 0, 0]  # attempts dialled so far on leg 1 and leg 2

    # ------------------------------------------------------------------ driver API
    def start(self, now: float) -> None:
        raise NotImplementedError

    def get_timer(self) -> float | None:
        """When the driver must call `handle_timer` next (None: no timer)."""
        return min(self._timers.values()) if self._timers else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``, earliest first."""
        while self._timers:
            key = min(self._timers, key=self._timers.__getitem__)
            if self._timers[key] > now:
                return
            del self._timers[key]
            self._on_timer(key, now)

    def terminate(self, now: float, reason: str, cut: Outcome | None = None) -> None:
        """End the call as the platform, from outside the flow (shutdown, crash recovery,
        an operator or API cancelling it). Ringing legs end with ``cut``, or, by default,
        as a timer would end them (NOANSWER if they rang, else FAILED)."""
        if not self.finished:
            self._event(now, "terminated", reason=reason)
            self._finish(now, "platform", cut=cut)

    def redirect(self, now: float, to: FlowUrl | list[Step]) -> bool:
        """Abandon what the call's flow is doing and run a new document from its start
        (Twilio's update with ``Url``/``Twiml``): a URL is fetched, steps run at once.
        False when the call is over or has no flow to replace (click-to-call)."""
        return False

    @property
    def settled(self) -> bool:
        """Finished, and every cancelled leg has given its final response."""
        return self.finished and not self._cancelling

    def handle(self, event: Event, now: float) -> None:
        """Feed one event from the driver."""
        _HANDLERS[type(event)](self, event, now)

    def _play_done(self, event: PlayDone, now: float) -> None:
        if not self.finished:
            self._on_play_done(event.play, now)

    def _digits(self, event: Digits, now: float) -> None:
        leg = self.legs[event.leg]
        if not self.finished and leg.state == ANSWERED:
            self._on_digits(leg, event.digits, now)

    # --------------------------------------------------------------- leg lifecycle
    def _new_leg(self, party: str, rec: LegRecord) -> Leg:
        leg = Leg(len(self.legs), party, rec)
        self.legs.append(leg)
        self.record.legs.append(rec)
        return leg

    def _dial(self, group: DialGroup, number: str, now: float) -> Leg:
        attempts = self._attempts
        attempts[group.leg] += 1
        rec = LegRecord(
            group.leg, attempts[group.leg], group.role, number, "outbound", dialed_at=now
        )
        leg = self._new_leg(f"leg{group.leg}", rec)
        group.attempts.append(leg)
        self.commands.append(Dial(leg.id, number, group.caller_id or self.spec.number))
        self._timers[("ring", leg.id)] = now + group.ring_timeout
        self._event(now, "dial", rec, number=number)
        return leg

    def _progress(self, event: LegProgress, now: float) -> None:
        leg = self.legs[event.leg]
        if leg.state != RINGING:
            return
        leg.provisional = True
        if is_ringing(event.sip_code) and leg.rec.ringing_at is None:
            leg.rec.ringing_at = now
            self._event(now, "ringing", leg.rec, sip_code=event.sip_code)

    def _answered(self, event: LegAnswered, now: float) -> None:
        leg = self.legs[event.leg]
        if leg.state == CANCELLING:  # a 200 crossed our CANCEL: take it and hang up at once
            self.commands.append(Hangup(leg.id, 16))
            return
        if leg.state != RINGING or self.finished:
            return
        self._timers.pop(("ring", leg.id), None)
        leg.state = ANSWERED
        set_answered(leg.rec, now)
        self._event(now, "answered", leg.rec)
        self._mark_answer(now)
        self._on_answered(leg, now)

    def _failed(self, event: LegFailed, now: float) -> None:
        leg = self.legs[event.leg]
        rec = leg.rec
        if leg.state == CANCELLING:  # the final response to our CANCEL: keep its code
            self._apply_response(rec, event)
            leg.state = ENDED
            self._cancelling -= 1
            self._timers.pop(("settle", leg.id), None)
            return
        if leg.state != RINGING or self.finished:
            return
        self._timers.pop(("ring", leg.id), None)
        leg.state = ENDED
        self._apply_response(rec, event, set_outcome=True)
        rec.ended_at = now
        rec.ended_by = leg.party if event.sip_code is not None else "platform"
        self._event(now, "failed", rec, sip_code=event.sip_code, outcome=rec.outcome)
        self._on_attempt_failed(leg, now)

    @staticmethod
    def _apply_response(rec: LegRecord, event: LegFailed, set_outcome: bool = False) -> None:
        if event.sip_code is None:
            if set_outcome:
                rec.outcome = _FAILED
            return
        c = classify_response(event.sip_code, event.reason_cause, event.reason_phrase)
        if set_outcome:
            # CANCELLED means "after our CANCEL" (DESIGN section 3); a 487 nobody asked for
            # is just another 4xx refusal.
            rec.outcome = _FAILED if c.outcome is _CANCELLED else c.outcome
        rec.sip_code, rec.sip_reason = c.sip_code, c.sip_reason
        rec.q850_cause, rec.q850_derived = c.q850_cause, c.q850_derived

    def _hangup(self, event: LegHangup, now: float) -> None:
        leg = self.legs[event.leg]
        if self.finished or leg.state in (ENDED, CANCELLING):
            return
        self._close_leg(leg, now, leg.party)
        self._event(now, "hangup", leg.rec, by=leg.party)
        self._on_hangup(leg, now)

    def _close_leg(self, leg: Leg, now: float, by: str) -> None:
        leg.state = ENDED
        leg.rec.ended_at = now
        leg.rec.ended_by = by

    def _cut(self, leg: Leg, now: float, outcome: Outcome | None) -> None:
        """Stop a leg still ringing: CANCEL it and decide its outcome now."""
        self._timers.pop(("ring", leg.id), None)
        if leg.rec.direction == "inbound":
            return
        leg.state = CANCELLING
        self._cancelling += 1
        rec = leg.rec
        if outcome is None:  # a timer cut it: NOANSWER if it ever rang, else no response
            outcome = _NOANSWER if leg.provisional else _FAILED
        rec.outcome, rec.ended_at, rec.ended_by = outcome, now, "platform"
        self.commands.append(Cancel(leg.id))
        self._timers[("settle", leg.id)] = now + SETTLE_SECONDS
        self._event(now, "cancel", rec, outcome=outcome)

    def _mark_answer(self, now: float) -> None:
        """The first answer of the call starts the maximum-duration clock."""
        if self._first_answer is None:
            self._first_answer = now
            self._timers["max"] = now + self.config.max_duration

    # ------------------------------------------------------------------- timers
    def _on_timer(self, key: object, now: float) -> None:
        if key == "max":
            self._event(now, "max_duration")
            self._finish(now, "platform", cut=None)
        elif isinstance(key, tuple) and key[0] == "ring":
            leg = self.legs[key[1]]
            if leg.state == RINGING and not self.finished:
                self._cut(leg, now, None)
                self._on_attempt_failed(leg, now)
        elif isinstance(key, tuple) and key[0] == "settle":
            leg = self.legs[key[1]]
            if leg.state == CANCELLING:
                leg.state = ENDED
                self._cancelling -= 1
        else:
            self._on_flow_timer(key, now)

    # ---------------------------------------------------------------- admission
    def _admit(self, now: float) -> Verdict:
        spec = self.spec
        verdict = admit(spec.policy, spec, spec.started_at, spec.lines_in_use)
        self.verdict = verdict
        status = verdict.status
        self.record.admission = AdmissionRecord(
            "admit" if status is None else str(status), verdict.rule, verdict.detail,
            tuple(d.as_dict() for d in verdict.dropped) if verdict.dropped else (),
        )
        self._event(now, "admission", None, verdict=self.record.admission.verdict)
        return verdict

    # ------------------------------------------------------------------ the end
    def _finish(
        self,
        now: float,
        ended_by: str,
        cut: Outcome | None = Outcome.CANCELLED,
        reject: tuple[int, int] | None = None,
    ) -> None:
        """End the whole call: hang up answered legs, cancel ringing ones, resolve the status.

        ``cut`` is the outcome of legs still ringing: CANCELLED when a side hung up, None
        when a timer ended the call (NOANSWER, or FAILED if the leg never rang).
        """
        if self.finished:
            return
        if self._cancelling:  # keep waiting for the final responses of cancelled legs
            self._timers = {
                k: v for k, v in self._timers.items() if isinstance(k, tuple) and k[0] == "settle"
            }
        else:
            self._timers.clear()
        for leg in self.legs:
            if leg.state == ANSWERED:
                self.commands.append(Hangup(leg.id, 16))
                self._close_leg(leg, now, "platform")
            elif leg.state == RINGING:
                if leg.rec.direction == "inbound":
                    code, cause = reject or REJECTIONS[self._unanswered_reason()]
                    self.commands.append(Reject(leg.id, code, cause))
                    self._reject_caller(leg, code, cause, now)
                else:
                    self._cut(leg, now, cut)
        self._settle_groups(cut)
        self.finished = True
        resolution = resolve(self._facts(ended_by))
        rec = self.record
        rec.status, rec.disconnected_by, rec.ended_at = resolution.status, ended_by, now
        self._fill_parties(resolution.status)
        self._event(now, "end", None, status=str(resolution.status), by=ended_by)

    def _reject_caller(self, leg: Leg, code: int, cause: int, now: float) -> None:
        rec = leg.rec
        self._apply_response(rec, LegFailed(leg.id, code, cause), set_outcome=True)
        self._close_leg(leg, now, "platform")
        self._event(now, "reject", rec, sip_code=code)

    def _event(self, now: float, kind: str, rec: LegRecord | None = None, **detail: object) -> None:
        self.record.timeline.append((now, kind, rec, detail or None))  # no empty dicts kept

    # --------------------------------------------------------- service hooks
    def _on_answered(self, leg: Leg, now: float) -> None:
        raise NotImplementedError

    def _on_attempt_failed(self, leg: Leg, now: float) -> None:
        raise NotImplementedError

    def _on_hangup(self, leg: Leg, now: float) -> None:
        raise NotImplementedError

    def _on_digits(self, leg: Leg, digits: str, now: float) -> None:
        """Digits outside a gather are dropped."""

    def _on_play_done(self, play: int, now: float) -> None:
        """Only flows play prompts."""

    def _on_flow_timer(self, key: object, now: float) -> None:
        raise KeyError(key)

    def _flow_fetched(self, event: FlowFetched, now: float) -> None:
        if not self.finished:
            self._on_flow_fetched(event, now)

    def _on_flow_fetched(self, event: FlowFetched, now: float) -> None:
        """Only flows fetch documents."""

    def _settle_groups(self, cut: Outcome | None) -> None:
        """Give every open dial group its outcome when the call ends."""

    def _unanswered_reason(self) -> Status | Outcome:
        return Status.IVR

    def _facts(self, ended_by: str) -> CallFacts:
        raise NotImplementedError

    def _fill_parties(self, status: Status) -> None:
        raise NotImplementedError


_HANDLERS: dict[type, Callable[[Call, Any, float], None]] = {
    LegProgress: Call._progress,
    LegAnswered: Call._answered,
    LegFailed: Call._failed,
    LegHangup: Call._hangup,
    Digits: Call._digits,
    PlayDone: Call._play_done,
    FlowFetched: Call._flow_fetched,
}
