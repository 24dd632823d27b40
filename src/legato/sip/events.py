"""Events the user agent hands its driver (`UserAgent.next_event()`).

A leg is one side of a call as the user agent sees it: an INVITE we sent (`role="uac"`) or
one we received (`role="uas"`); `leg` is the integer handle the driver uses in commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from legato.sip.fields import Reason
from legato.sip.message import Request, Response

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A new INVITE: answer it with `respond(leg, ...)`."""

    leg: int
    request: Request
    source: Addr


@dataclass(frozen=True, slots=True)
class Progress:
    """A 1xx (except 100) for an INVITE we sent: ringing (180) or early media (183)."""

    leg: int
    response: Response


@dataclass(frozen=True, slots=True)
class Answered:
    """A 2xx for our INVITE. The ACK is already sent unless the leg was made with
    `defer_ack=True` (third-party call control: answer the offer in `ack(leg, body)`)."""

    leg: int
    response: Response


@dataclass(frozen=True, slots=True)
class Failed:
    """Our INVITE ended without a call: a 3xx-6xx (`response` set) or, with `response`
    None, a timeout (status 408) or transport failure (status 503), as RFC 3261 §8.1.3.1
    says a UAC should treat them."""

    leg: int
    status: int
    reason_phrase: str
    reason: Reason | None
    response: Response | None


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The caller CANCELled an INVITE we had not answered; 487 and 200 are already sent."""

    leg: int
    reason: Reason | None
    request: Request


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The ACK for our 2xx arrived (its body is the SDP answer in a delayed offer)."""

    leg: int
    request: Request


@dataclass(frozen=True, slots=True)
class Lost:
    """The far end of a confirmed leg is gone, so the user agent ended the session itself
    with a BYE carrying `reason`: no ACK came for our 2xx in 64*T1 (RFC 3261 §13.3.1.4,
    `SIP;cause=408`), or a request inside the dialog got 408, 481 or no answer
    (§12.2.1.2, `SIP;cause=408|481`). Nobody asked for that BYE: the driver must end the
    call. An `Ended` follows when the BYE completes."""

    leg: int
    reason: Reason


@dataclass(frozen=True, slots=True)
class Ended:
    """A confirmed call is over. `by` is who sent the BYE; `reason` its Reason header;
    `status` the BYE's final response (408 when none came) for a local BYE."""

    leg: int
    by: Literal["local", "remote"]
    reason: Reason | None
    status: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DialogRequest:
    """A request inside a dialog the agent does not answer itself (re-INVITE, UPDATE,
    INFO, ...): answer it with `respond_request(request_id, ...)`."""

    leg: int
    request_id: int
    request: Request


@dataclass(frozen=True, slots=True)
class DialogResponse:
    """A final response to a request we sent inside a dialog with `request(leg, ...)`."""

    leg: int
    response: Response | None
    method: str
    status: int


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A message that could not be accepted (malformed, or a response matching nothing).
    For logs and counters; the agent already answered it where the RFC says to."""

    source: Addr
    reason: str


Event = (
    IncomingCall
    | Progress
    | Answered
    | Failed
    | Cancelled
    | Confirmed
    | Lost
    | Ended
    | DialogRequest
    | DialogResponse
    | BadMessage
)
