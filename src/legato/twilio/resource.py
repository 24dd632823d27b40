"""The Twilio Call resource (API 2010-04-01) built from a Legato call and its SID row."""

from __future__ import annotations

from typing import Any

from legato.store.calls import COMPLETED
from legato.store.models import Call
from legato.twilio.ids import account_sid
from legato.twilio.models import TwilioCall
from legato.twilio.status import call_status, rfc2822, subscriber_legs, talk_seconds

API_VERSION = "2010-04-01"
#: Services whose leg 1 called the Legato number (Twilio's `inbound` direction).
INBOUND_SERVICES = ("incoming", "missed_call")


def calls_uri(sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{sid}/Calls.json"


def call_uri(sid: str, call_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{sid}/Calls/{call_sid}.json"


def call_resource(row: TwilioCall, call: Call) -> dict[str, Any]:
    """Every field the official library reads, with Twilio's types (strings for numbers,
    RFC 2822 dates), plus Legato's own facts under `legato_`-prefixed keys."""
    record = call.record or {}
    finished = call.state == COMPLETED
    legs = subscriber_legs(record)
    sid = account_sid(call.account_id)
    inbound = call.service in INBOUND_SERVICES
    frm: str | None
    to: str | None
    if inbound:  # a caller dialled the Legato number
        frm, to = (call.from_numbers[0] if call.from_numbers else None), call.number
    else:
        frm, to = call.number, (call.to_numbers[0] if call.to_numbers else None)
    started = legs[0].get("dialed_at") if legs else None
    return {
        "sid": row.call_sid,
        "account_sid": sid,
        "parent_call_sid": None,
        "date_created": rfc2822(row.created_at),
        "date_updated": rfc2822(call.updated_at),
        "to": to,
        "to_formatted": to,
        "from": frm,
        "from_formatted": frm,
        "phone_number_sid": None,
        "status": call_status(record, finished, row.ended_via_api),
        "start_time": rfc2822(started),
        "end_time": rfc2822(record.get("ended_at")) if finished else None,
        "duration": str(talk_seconds(record)) if finished else None,
        "price": None,
        "price_unit": "USD",
        "direction": "inbound" if inbound else "outbound-api",
        "answered_by": None,
        "api_version": API_VERSION,
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": call_uri(sid, row.call_sid),
        "subresource_uris": {},
        "legato_call_id": call.id,
        "legato_status": call.status if finished else None,
        "legato_disconnected_by": record.get("disconnected_by") if finished else None,
        # where the bridged call's recording was written (Record=true, a driver with media)
        "legato_recording": record.get("recording"),
    }
