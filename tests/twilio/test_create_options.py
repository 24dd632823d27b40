"""Create options beyond the TwiML: SendDigits (DTMF to the subscriber once it answers)
and Record (the call's `record` configuration; the sim has no audio to write)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio_testkit import NUMBER, SILENT, CustomerApp, LegatoServer

from legato.store.models import Call


def test_send_digits_are_keyed_after_the_answer_then_the_twiml_runs(
        legato: LegatoServer, customer: CustomerApp) -> None:
    client, key = legato.client()
    client.calls.create(to=SILENT, from_=NUMBER, send_digits="wW1234#",
                        twiml="<Response><Say>Extension reached</Say></Response>",
                        status_callback=customer.base + "/status")
    (final,) = customer.wait_for("/status", 1)
    doc = legato.completed(key, final.get("LegatoCallId") or "")
    kinds = [e["type"] for e in doc["events"]]
    assert kinds[kinds.index("answered"):] == ["answered", "send_digits", "play", "end"]
    sent, play = doc["events"][kinds.index("send_digits")], doc["events"][kinds.index("play")]
    assert sent["digits"] == "wW1234#" and sent["leg"] == 1
    assert play["t"] - sent["t"] == pytest.approx(0.5 + 1.0 + 5 * 0.2)
    assert final.get("CallStatus") == "completed"


def test_bad_send_digits_is_21206_naming_it(legato: LegatoServer) -> None:
    client, _ = legato.client()
    for digits in ("12x", "1" * 257):
        with pytest.raises(TwilioRestException) as info:
            client.calls.create(to=SILENT, from_=NUMBER, send_digits=digits,
                                twiml="<Response><Hangup/></Response>")
        assert (info.value.status, info.value.code) == (400, 21206)
        assert "SendDigits" in info.value.msg
    assert client.calls.list() == []


def _stored(legato: LegatoServer, call_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the configuration the call ran with, its stored record)."""
    with legato.database.session() as s:
        call = s.get(Call, call_id)
        assert call is not None and call.snapshot and call.record
        return dict(call.snapshot["config"]), dict(call.record)


def test_record_true_reaches_the_calls_configuration(legato: LegatoServer,
                                                      customer: CustomerApp) -> None:
    client, key = legato.client()
    call = client.calls.create(to=SILENT, from_=NUMBER, record=True,
                               twiml="<Response><Say>This call is recorded</Say></Response>",
                               status_callback=customer.base + "/status")
    (final,) = customer.wait_for("/status", 1)
    call_id = final.get("LegatoCallId") or ""
    legato.completed(key, call_id)
    config, record = _stored(legato, call_id)
    assert config["record"] is True
    assert "recording" in record and record["recording"] is None  # the sim has no audio
    resource = httpx.get(f"{legato.base}{call.uri}", auth=(call.account_sid, key)).json()
    assert resource["legato_recording"] is None and resource["status"] == "completed"


def test_record_false_turns_off_the_numbers_recording(legato: LegatoServer,
                                                       customer: CustomerApp) -> None:
    _, sid, key = legato.account()
    r = httpx.post(legato.base + "/v1/numbers", headers={"Authorization": f"Bearer {key}"},
                   json={"number": NUMBER, "config": {"record": True}})
    assert r.status_code == 201, r.text
    client = Client(sid, key, environment={})
    client.api.base_url = legato.base
    for record, want in ((None, True), (False, False)):
        params: dict[str, Any] = {} if record is None else {"record": record}
        client.calls.create(to=SILENT, from_=NUMBER, twiml="<Response><Hangup/></Response>",
                            status_callback=customer.base + "/status", **params)
        final = customer.wait_for("/status", 1 if record is None else 2)[-1]
        legato.completed(key, final.get("LegatoCallId") or "")
        assert _stored(legato, final.get("LegatoCallId") or "")[0]["record"] is want
