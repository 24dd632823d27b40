"""Legato's facts in Twilio's vocabulary: CallStatus, DialCallStatus, dates, durations.

A Twilio-API call is an outbound call whose leg 1 is the `To` subscriber, so Twilio's
CallStatus follows that leg: its outcome once the call ends (DESIGN section 3 outcomes,
mapped as the issue fixes them), its progress while it runs. The catalogue status the
resolver gave is never replaced: it travels alongside as `LegatoStatus`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from legato.core.outcomes import Outcome

#: Leg outcome → Twilio's final CallStatus (and DialCallStatus).
FINAL_STATUS: dict[str, str] = {
    Outcome.ANSWERED.value: "completed",
    Outcome.BUSY.value: "busy",
    Outcome.NOANSWER.value: "no-answer",
    Outcome.CHANUNAVAIL.value: "failed",
    Outcome.CONGESTION.value: "failed",
    Outcome.FAILED.value: "failed",
    Outcome.CANCELLED.value: "canceled",
}


def subscriber_legs(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The attempts of leg 1 (the `To` subscriber of an outbound call), in order."""
    return [leg for leg in record.get("legs") or [] if leg.get("leg") == 1]


def call_status(record: dict[str, Any], finished: bool, ended_via_api: str | None = None) -> str:
    """Twilio's CallStatus of a call from its (live or final) Legato record."""
    legs = subscriber_legs(record)
    answered = any(leg.get("answered_at") for leg in legs)
    if finished:
        if answered:
            return "completed"
        if ended_via_api == "canceled":
            return "canceled"
        if not legs:  # stopped before dialling (a pre-dial policy status)
            return "failed"
        return FINAL_STATUS.get(legs[-1].get("outcome") or "", "failed")
    if answered:
        return "in-progress"
    if any(leg.get("ringing_at") for leg in legs):
        return "ringing"
    return "queued"


def dial_status(outcome: str) -> str:
    """`DialCallStatus` for a dial step's outcome."""
    return FINAL_STATUS.get(outcome, "failed")


def rfc2822(value: datetime | str | None) -> str | None:
    """Twilio's date format: `Wed, 25 Nov 2026 20:40:00 +0000`."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return format_datetime(value.astimezone(UTC).replace(microsecond=0))


def talk_seconds(record: dict[str, Any]) -> int:
    """Seconds the subscriber was connected (Twilio's call `duration`), whole, rounded up."""
    legs = [leg for leg in subscriber_legs(record) if leg.get("answered_at")]
    if not legs:
        return 0
    leg = legs[-1]
    if leg.get("talk_seconds") is not None:
        return math.ceil(round(float(leg["talk_seconds"]), 6))
    if leg.get("ended_at"):
        span = datetime.fromisoformat(leg["ended_at"]) - datetime.fromisoformat(leg["answered_at"])
        return math.ceil(round(span.total_seconds(), 6))
    return 0


def sip_response_code(record: dict[str, Any]) -> int | None:
    """The SIP final response of the subscriber's last attempt."""
    legs = subscriber_legs(record)
    return None if not legs else legs[-1].get("sip_code")
