"""Incoming calls (and missed-call numbers): a caller dials a Legato number."""

from __future__ import annotations

from legato.core.catalogue import Service, Status
from legato.core.engine.base import REJECTIONS, Leg
from legato.core.engine.flow import FlowCall
from legato.core.events import LegFailed, Ring
from legato.core.outcomes import Outcome
from legato.core.record import LegRecord
from legato.core.resolver import CallFacts


class IncomingCall(FlowCall):
    """Admission, then the number's flow: IVR steps and agent hunts (DESIGN sections 4, 6)."""

    service = Service.INCOMING

    def start(self, now: float) -> None:
        rec = LegRecord(leg=1, attempt=1, role="caller", number=self.spec.leg1[0],
                        direction="inbound", dialed_at=now, ringing_at=now)
        self.caller = self._new_leg("leg1", rec)
        self._event(now, "incoming", rec, number=rec.number)
        self.commands.append(Ring(self.caller.id))  # 100 Trying and 180 Ringing at once
        verdict = self._admit(now)
        if verdict.status is Status.MISWIG:  # let it ring, then reject (DESIGN section 4)
            self._timers["missed"] = now + self.config.missed_call_ring
            return
        if verdict.status is not None:
            self._finish(now, "platform", reject=REJECTIONS[verdict.status])
            return
        if not self._begin_flow(now):  # no flow: the call cannot land on the IVR
            self._finish(now, "platform", reject=REJECTIONS[Status.IVR])

    def _on_flow_timer(self, key: object, now: float) -> None:
        if key == "missed":
            self._finish(now, "platform", reject=REJECTIONS[Status.MISWIG])
        else:
            super()._on_flow_timer(key, now)

    def _on_answered(self, leg: Leg, now: float) -> None:
        self._agent_answered(leg, now)

    def _on_attempt_failed(self, leg: Leg, now: float) -> None:
        self._agent_failed(leg, now)

    def _on_hangup(self, leg: Leg, now: float) -> None:
        if leg is self.caller:
            if leg.rec.answered_at is None:  # abandoned while ringing: we answer 487
                self._apply_response(leg.rec, LegFailed(leg.id, 487))
                leg.rec.outcome = Outcome.CANCELLED
            self._finish(now, "leg1", cut=Outcome.CANCELLED)
        elif not self._agent_left(leg, now):
            self._finish(now, "leg2", cut=Outcome.CANCELLED)

    def _facts(self, ended_by: str) -> CallFacts:
        verdict = self.verdict
        admission = None if verdict is None else verdict.status
        if self.rejected_by_flow is not None:  # the application refused the caller
            admission = Status.BLOCKED
        return CallFacts(
            service=self.service, ended_by=ended_by,
            admission=admission,
            flow_started=self.flow_started, ivr_answered=self.ivr_answered,
            dial_steps=tuple(self.dial_steps),
        )

    def _fill_parties(self, status: Status) -> None:
        rec = self.record
        if self.agent is not None:
            rec.picked_by = rec.connected_to = self.agent.rec.number
        elif self.ivr_answered:
            rec.connected_to = "ivr"
        if status is Status.ANSWER and self.agent is not None:
            rec.answered_at = self.agent.rec.answered_at
        elif status is Status.IVR_ANSWER:
            rec.answered_at = self._caller().rec.answered_at


class MissedCall(IncomingCall):
    """A missed-call number: it rings, never answers, and records MISWIG."""

    service = Service.MISSED_CALL



