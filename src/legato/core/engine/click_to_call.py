"""Click-to-call: ring the agents (leg 1) at once, then the customers (leg 2) in turn."""

from __future__ import annotations

from legato.core.catalogue import Service, Status
from legato.core.engine.base import Call, CallSpec, DialGroup, Leg
from legato.core.events import Bridge
from legato.core.outcomes import Outcome
from legato.core.resolver import CallFacts


class ClickToCall(Call):
    """Leg 1: the first agent to answer; leg 2: the first customer to answer (DESIGN §2)."""

    service = Service.CLICK_TO_CALL

    def __init__(self, spec: CallSpec, now: float) -> None:
        super().__init__(spec, now)
        self.agents: DialGroup | None = None
        self.customers: DialGroup | None = None
        self.agent: Leg | None = None
        self.customer: Leg | None = None

    def start(self, now: float) -> None:
        verdict = self._admit(now)
        if verdict.status is not None:
            self._finish(now, "platform")
            return
        ring = self.config.ring_timeout
        self.agents = DialGroup(list(verdict.leg1), True, ring, "agent", 1)
        self.customers = DialGroup(list(verdict.leg2), False, ring, "customer", 2)
        for number in verdict.leg1:
            self._dial(self.agents, number, now)

    def _on_answered(self, leg: Leg, now: float) -> None:
        agents, customers = self.agents, self.customers
        assert agents is not None and customers is not None
        if leg.party == "leg1":
            for other in agents.pending:
                self._cut(other, now, Outcome.CANCELLED)
            agents.outcome = Outcome.ANSWERED
            self.agent = leg
            self.record.picked_by = leg.rec.number  # live state: known from now on
            self._dial(customers, customers.numbers[0], now)
        else:
            customers.outcome = Outcome.ANSWERED
            self.customer = leg
            self.record.connected_to = leg.rec.number
            assert self.agent is not None
            self.commands.append(Bridge(self.agent.id, leg.id))
            self._event(now, "bridge", leg.rec, number=leg.rec.number)

    def _on_attempt_failed(self, leg: Leg, now: float) -> None:
        group = self.agents if leg.party == "leg1" else self.customers
        assert group is not None
        if group.pending:
            return
        if not group.parallel and len(group.attempts) < len(group.numbers):
            self._dial(group, group.numbers[len(group.attempts)], now)
            return
        group.settle()
        self._finish(now, leg.rec.ended_by or "platform")  # the attempt that ended last

    def _on_hangup(self, leg: Leg, now: float) -> None:
        self._finish(now, leg.party, cut=Outcome.CANCELLED)

    def _settle_groups(self, cut: Outcome | None) -> None:
        for group in (self.agents, self.customers):
            if group is not None and group.attempts:
                group.settle(cut)

    def _facts(self, ended_by: str) -> CallFacts:
        verdict = self.verdict
        agents, customers = self.agents, self.customers
        return CallFacts(
            service=self.service, ended_by=ended_by,
            admission=None if verdict is None else verdict.status,
            leg1=None if agents is None else agents.outcome,
            dial_steps=() if customers is None or customers.outcome is None
            else (customers.outcome,),
        )

    def _fill_parties(self, status: Status) -> None:
        rec = self.record
        if self.agent is not None:
            rec.picked_by = self.agent.rec.number
        if self.customer is not None:
            rec.connected_to = self.customer.rec.number
            if status is Status.ANSWER:
                rec.answered_at = self.customer.rec.answered_at
