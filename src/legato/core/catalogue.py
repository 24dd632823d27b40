"""The status catalogue (DESIGN section 1): the 21 codes as one table.

Everything else (the resolver, the API schema, the CLI, the generated docs) reads the
codes from here. The descriptions paraphrase the two seed pages in ``shared/seeds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Service(StrEnum):
    """The four kinds of call Legato places or receives."""

    INCOMING = "incoming"
    CLICK_TO_CALL = "click_to_call"
    OUTBOUND = "outbound"
    MISSED_CALL = "missed_call"


class Status(StrEnum):
    """One call status code of the catalogue."""

    IVR = "IVR"
    IVR_ANSWER = "IVR-ANSWER"
    MISWIG = "MISWIG"
    ANSWER = "ANSWER"
    NOANSWER = "NOANSWER"
    BUSY = "BUSY"
    FAILED = "FAILED"
    CANCEL = "CANCEL"
    BLOCKED = "BLOCKED"
    MAX_USE = "MAX-USE"
    DND = "DND"
    OFF_HOUR = "OFF-HOUR"
    NOTALLOWED = "NOTALLOWED"
    NOANSWER_LEG1 = "NOANSWER_LEG1"
    FAILED_LEG1 = "FAILED_LEG1"
    BUSY_LEG1 = "BUSY_LEG1"
    NOANSWER_LEG2 = "NOANSWER_LEG2"
    FAILED_LEG2 = "FAILED_LEG2"
    BUSY_LEG2 = "BUSY_LEG2"
    CHANUNAVAIL = "CHANUNAVAIL"
    CONGESTION = "CONGESTION"


_IN = Service.INCOMING
_C2C = Service.CLICK_TO_CALL
_OUT = Service.OUTBOUND
_MISSED = Service.MISSED_CALL


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """One row of the catalogue."""

    code: Status
    services: frozenset[Service]
    description: str
    #: Decided before anything is dialled, by a policy (admission), not by a leg.
    pre_dial: bool


def _row(code: Status, services: tuple[Service, ...], pre_dial: bool, text: str) -> StatusInfo:
    return StatusInfo(code, frozenset(services), " ".join(text.split()), pre_dial)


#: The catalogue, in the order of DESIGN section 1.
CATALOGUE: tuple[StatusInfo, ...] = (
    _row(Status.IVR, (_IN, _OUT), False,
         "The call could not land on the IVR flow and was disconnected before the IVR "
         "could answer."),
    _row(Status.IVR_ANSWER, (_IN,), False,
         "The IVR answered and the caller listened to it; the flow ran fully, or the call "
         "was disconnected within it."),
    _row(Status.MISWIG, (_IN, _MISSED), True,
         "A missed call on a number configured with the missed-call widget."),
    _row(Status.ANSWER, (_IN, _C2C, _OUT), False,
         "Incoming: an agent answered and was connected to the caller. Click-to-call: leg 1 "
         "and leg 2 both answered and were connected. Outbound: the call matured "
         "successfully (the subscriber answered)."),
    _row(Status.NOANSWER, (_IN, _OUT), False,
         "The agent (incoming) or the called number (outbound) did not answer."),
    _row(Status.BUSY, (_IN, _OUT), False,
         "The agent or the called number was busy, or rejected the call."),
    _row(Status.FAILED, (_IN, _OUT), False,
         "The number was not reachable, switched off, had no route, or another operator "
         "failure occurred."),
    _row(Status.CANCEL, (_IN, _C2C, _OUT), False,
         "Incoming: the caller disconnected before an agent answered. Click-to-call: leg 1 "
         "disconnected before leg 2 answered. Outbound: the called party disconnected while "
         "an agent was being dialled."),
    _row(Status.BLOCKED, (_IN, _MISSED), True,
         "The caller is on the number's blacklist; the call was rejected."),
    _row(Status.MAX_USE, (_IN,), True,
         "The call was rejected because the lines in use reached the lines allocated to "
         "the number."),
    _row(Status.DND, (_C2C, _OUT), True,
         "The callee is registered on the Do-Not-Disturb registry."),
    _row(Status.OFF_HOUR, (_IN,), True,
         "The call landed outside working hours: after hours, on a weekly day off, or on "
         "a holiday."),
    _row(Status.NOTALLOWED, (_C2C, _OUT), True,
         "The subscriber's country or network (number type) is not allowed to be dialled "
         "from this channel."),
    _row(Status.NOANSWER_LEG1, (_C2C,), False, "Leg 1 did not answer."),
    _row(Status.FAILED_LEG1, (_C2C,), False, "Leg 1 failed to connect."),
    _row(Status.BUSY_LEG1, (_C2C,), False, "Leg 1 was busy, or leg 1 rejected the call."),
    _row(Status.NOANSWER_LEG2, (_C2C,), False, "Leg 1 answered; leg 2 did not answer."),
    _row(Status.FAILED_LEG2, (_C2C,), False, "Leg 1 connected; leg 2 failed to connect."),
    _row(Status.BUSY_LEG2, (_C2C,), False,
         "Leg 1 connected; leg 2 was busy or rejected the call."),
    _row(Status.CHANUNAVAIL, (_OUT,), False,
         "Network error: the channel or destination is unavailable."),
    _row(Status.CONGESTION, (_OUT,), False, "Network error: the network is congested."),
)

BY_CODE: dict[Status, StatusInfo] = {row.code: row for row in CATALOGUE}


def describe(code: Status) -> str:
    """The catalogue description of a status code."""
    return BY_CODE[code].description


def applies_to(code: Status, service: Service) -> bool:
    """Whether the catalogue lists this code for this service."""
    return service in BY_CODE[code].services
