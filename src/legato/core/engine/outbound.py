"""Outbound calls (API or campaign): Legato dials a subscriber, then runs a flow."""

from __future__ import annotations

from legato.core.catalogue import Service, Status
from legato.core.engine.base import DialGroup, Leg
from legato.core.engine.flow import FlowCall
from legato.core.events import SendDigits, digits_seconds
from legato.core.outcomes import Outcome
from legato.core.resolver import CallFacts


class OutboundCall(FlowCall):
    """Leg 1 is the subscriber; the flow runs once it answers; leg 2 is an agent."""

    service = Service.OUTBOUND
    checks_agents = True  # agents an outbound flow dials are checked for permissions

    def start(self, now: float) -> None:
        verdict = self._admit(now)
        if verdict.status is not None:
            self._finish(now, "platform")
            return
        group = DialGroup(list(verdict.leg1), False, self.config.ring_timeout, "subscriber", 1)
        self.caller = self._dial(group, verdict.leg1[0], now)

    def _on_answered(self, leg: Leg, now: float) -> None:
        if leg is self.caller:
            self.record.picked_by = leg.rec.number
            digits = self.config.send_digits
            if digits:  # Twilio's SendDigits: keyed to the subscriber before the flow runs
                self.commands.append(SendDigits(leg.id, digits))
                self._event(now, "send_digits", leg.rec, digits=digits)
                self._timers["digits"] = now + digits_seconds(digits)
                return
            self._start_flow(now)
        else:
            self._agent_answered(leg, now)

    def _start_flow(self, now: float) -> None:
        if not self._begin_flow(now):  # answered, but there is no flow to run
            self._finish(now, "platform")

    def _on_flow_timer(self, key: object, now: float) -> None:
        if key == "digits":
            self._start_flow(now)
        else:
            super()._on_flow_timer(key, now)

    def _on_attempt_failed(self, leg: Leg, now: float) -> None:
        if leg is self.caller:
            self._finish(now, leg.rec.ended_by or "platform")
        else:
            self._agent_failed(leg, now)

    def _on_hangup(self, leg: Leg, now: float) -> None:
        if leg is self.caller:
            self._finish(now, "leg1", cut=Outcome.CANCELLED)
        elif not self._agent_left(leg, now):
            self._finish(now, "leg2", cut=Outcome.CANCELLED)

    def _facts(self, ended_by: str) -> CallFacts:
        verdict = self.verdict
        return CallFacts(
            service=self.service, ended_by=ended_by,
            admission=None if verdict is None else verdict.status,
            flow_started=self.flow_started,
            leg1=None if self.caller is None else self.caller.rec.outcome,
            dial_steps=tuple(self.dial_steps),
        )

    def _fill_parties(self, status: Status) -> None:
        rec = self.record
        answered = self.caller is not None and self.caller.rec.answered_at is not None
        if not answered:
            rec.picked_by = None
            return
        if self.agent is not None:
            rec.connected_to = self.agent.rec.number
        elif self.flow_started:
            rec.connected_to = "ivr"
        if status is Status.ANSWER:
            rec.answered_at = self._caller().rec.answered_at
