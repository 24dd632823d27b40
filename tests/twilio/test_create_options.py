"""Create options beyond the TwiML: SendDigits (DTMF to the subscriber once it answers)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio_testkit import NUMBER, SILENT, CustomerApp, LegatoServer


def _setup(legato: LegatoServer) -> tuple[Client, str]:
    _, sid, key = legato.account()
    legato.add_number(key, NUMBER)
    client = Client(sid, key, environment={})
    client.api.base_url = legato.base
    return client, key


def _finished(legato: LegatoServer, key: str, call_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        doc: dict[str, Any] = httpx.get(f"{legato.base}/v1/calls/{call_id}",
                                        headers={"Authorization": f"Bearer {key}"}).json()
        if doc["state"] == "completed":
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)


def test_send_digits_are_keyed_after_the_answer_then_the_twiml_runs(
        legato: LegatoServer, customer: CustomerApp) -> None:
    client, key = _setup(legato)
    client.calls.create(to=SILENT, from_=NUMBER, send_digits="wW1234#",
                        twiml="<Response><Say>Extension reached</Say></Response>",
                        status_callback=customer.base + "/status")
    (final,) = customer.wait_for("/status", 1)
    doc = _finished(legato, key, final.get("LegatoCallId") or "")
    kinds = [e["type"] for e in doc["events"]]
    assert kinds[kinds.index("answered"):] == ["answered", "send_digits", "play", "end"]
    sent, play = doc["events"][kinds.index("send_digits")], doc["events"][kinds.index("play")]
    assert sent["digits"] == "wW1234#" and sent["leg"] == 1
    assert play["t"] - sent["t"] == pytest.approx(0.5 + 1.0 + 5 * 0.2)
    assert final.get("CallStatus") == "completed"


def test_bad_send_digits_is_21206_naming_it(legato: LegatoServer) -> None:
    client, _ = _setup(legato)
    for digits in ("12x", "1" * 257):
        with pytest.raises(TwilioRestException) as info:
            client.calls.create(to=SILENT, from_=NUMBER, send_digits=digits,
                                twiml="<Response><Hangup/></Response>")
        assert (info.value.status, info.value.code) == (400, 21206)
        assert "SendDigits" in info.value.msg
    assert client.calls.list() == []
