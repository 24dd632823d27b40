"""The status resolver (DESIGN section 4): the one place a call status is decided.

The status is a pure function of the service, the admission verdict, the leg outcomes in
time order and who ended the call. The engine gathers those facts into `CallFacts`; the
rules below read nothing else. Each service's rules are a list tried in order: the first
that matches wins, exactly as DESIGN writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from legato.core.catalogue import Service, Status
from legato.core.outcomes import Outcome

#: Who ended the call as a whole (DESIGN section 4, `disconnected_by`).
Party = str  # "leg1" | "leg2" | "platform"
PARTIES = ("leg1", "leg2", "platform")


@dataclass(slots=True)
class CallFacts:
    """What the resolver needs to know about a finished call, and nothing more.

    ``dial_steps`` are the outcomes of the agent dial steps (incoming, outbound) or of
    leg 2 (click-to-call: one step, the last customer attempt's outcome), in time order.
    A step's outcome is CANCELLED when Legato cancelled it because the other side hung up.
    """

    service: Service
    ended_by: Party
    admission: Status | None = None
    flow_started: bool = True
    ivr_answered: bool = False
    leg1: Outcome | None = None
    dial_steps: tuple[Outcome, ...] = ()


@dataclass(slots=True)
class Resolution:
    status: Status
    disconnected_by: Party


_UNANSWERED_LEG1 = {
    Outcome.BUSY: Status.BUSY_LEG1,
    Outcome.NOANSWER: Status.NOANSWER_LEG1,
    Outcome.CHANUNAVAIL: Status.FAILED_LEG1,
    Outcome.CONGESTION: Status.FAILED_LEG1,
    Outcome.FAILED: Status.FAILED_LEG1,
    Outcome.CANCELLED: Status.CANCEL,
}
_UNANSWERED_LEG2 = {
    Outcome.BUSY: Status.BUSY_LEG2,
    Outcome.NOANSWER: Status.NOANSWER_LEG2,
    Outcome.CHANUNAVAIL: Status.FAILED_LEG2,
    Outcome.CONGESTION: Status.FAILED_LEG2,
    Outcome.FAILED: Status.FAILED_LEG2,
    Outcome.CANCELLED: Status.CANCEL,
}
#: Incoming rule 9: a failed agent dial step, any failure rolled up into FAILED.
_INCOMING_DIAL = {
    Outcome.BUSY: Status.BUSY,
    Outcome.NOANSWER: Status.NOANSWER,
    Outcome.CHANUNAVAIL: Status.FAILED,
    Outcome.CONGESTION: Status.FAILED,
    Outcome.FAILED: Status.FAILED,
    Outcome.CANCELLED: Status.CANCEL,
}
#: Outbound rule 3: the subscriber's outcome is the status, network errors kept apart.
_OUTBOUND_LEG1 = {
    Outcome.BUSY: Status.BUSY,
    Outcome.NOANSWER: Status.NOANSWER,
    Outcome.CHANUNAVAIL: Status.CHANUNAVAIL,
    Outcome.CONGESTION: Status.CONGESTION,
    Outcome.FAILED: Status.FAILED,
    Outcome.CANCELLED: Status.CANCEL,
}

#: Pre-dial statuses each service can be given by admission, in rule order.
ADMISSION_STATUSES: dict[Service, tuple[Status, ...]] = {
    Service.INCOMING: (Status.BLOCKED, Status.MISWIG, Status.OFF_HOUR, Status.MAX_USE),
    Service.MISSED_CALL: (Status.BLOCKED, Status.MISWIG),
    Service.CLICK_TO_CALL: (Status.DND, Status.NOTALLOWED),
    Service.OUTBOUND: (Status.DND, Status.NOTALLOWED),
}


def _incoming(f: CallFacts) -> Status:
    if f.admission is not None:  # rules 1-4
        return f.admission
    if not f.flow_started or (not f.ivr_answered and not f.dial_steps):  # rule 5
        return Status.IVR
    if not f.dial_steps:  # rule 6
        return Status.IVR_ANSWER
    if Outcome.ANSWERED in f.dial_steps:  # rule 7
        return Status.ANSWER
    return _INCOMING_DIAL[f.dial_steps[-1]]  # rules 8 (CANCELLED) and 9


def _click_to_call(f: CallFacts) -> Status:
    if f.admission is not None:  # rules 1-2
        return f.admission
    if f.leg1 is not Outcome.ANSWERED:  # rule 3
        return _UNANSWERED_LEG1[f.leg1 or Outcome.FAILED]
    if not f.dial_steps:  # rule 4: leg 1 left before leg 2 was even dialled
        return Status.CANCEL
    return Status.ANSWER if f.dial_steps[-1] is Outcome.ANSWERED else _UNANSWERED_LEG2[
        f.dial_steps[-1]
    ]  # rules 4 (CANCELLED), 5, 6


def _outbound(f: CallFacts) -> Status:
    if f.admission is not None:  # rules 1-2
        return f.admission
    if f.leg1 is not Outcome.ANSWERED:  # rule 3
        return _OUTBOUND_LEG1[f.leg1 or Outcome.FAILED]
    if not f.flow_started:  # rule 4
        return Status.IVR
    if f.dial_steps and f.dial_steps[-1] is Outcome.CANCELLED:  # rule 5
        return Status.CANCEL
    return Status.ANSWER  # rule 6


def _missed_call(f: CallFacts) -> Status:
    return Status.BLOCKED if f.admission is Status.BLOCKED else Status.MISWIG


_RULES: dict[Service, Callable[[CallFacts], Status]] = {
    Service.INCOMING: _incoming,
    Service.CLICK_TO_CALL: _click_to_call,
    Service.OUTBOUND: _outbound,
    Service.MISSED_CALL: _missed_call,
}


def resolve(facts: CallFacts) -> Resolution:
    """The status and `disconnected_by` of a finished call."""
    if facts.ended_by not in PARTIES:
        raise ValueError(f"ended_by must be one of {PARTIES}, not {facts.ended_by!r}")
    if facts.admission is not None and facts.admission not in ADMISSION_STATUSES[facts.service]:
        raise ValueError(f"{facts.admission} is not a pre-dial status of {facts.service}")
    return Resolution(_RULES[facts.service](facts), facts.ended_by)
