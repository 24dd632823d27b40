"""Which calls the Twilio API sees, and with which configuration a Twilio call runs.

Every CallSid Legato hands out can be fetched, listed and updated (an incoming call's
TwiML request carries one); every call is in the native `/v1/calls`; a Twilio call's
TwiML replaces the number's own voice URL, and the account's dialling rules apply."""

from __future__ import annotations

import time
from typing import Any

import httpx
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse
from twilio_testkit import NUMBER, SILENT, CustomerApp, LegatoServer

from legato.twilio.ids import call_sid


def _setup(legato: LegatoServer, config: dict[str, Any] | None = None,
           ) -> tuple[Client, str, dict[str, str]]:
    _, sid, key = legato.account()
    headers = {"Authorization": f"Bearer {key}"}
    r = httpx.post(legato.base + "/v1/numbers", headers=headers,
                   json={"number": NUMBER, "config": config or {}})
    assert r.status_code == 201, r.text
    client = Client(sid, key, environment={})
    client.api.base_url = legato.base
    return client, key, headers


def _native(legato: LegatoServer, headers: dict[str, str], call_id: str,
            done: bool = True) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        doc: dict[str, Any] = httpx.get(f"{legato.base}/v1/calls/{call_id}",
                                        headers=headers).json()
        if not done or doc["state"] == "completed":
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)


def test_an_incoming_calls_sid_can_be_fetched_listed_and_moved(
        legato: LegatoServer, customer: CustomerApp) -> None:
    client, key, headers = _setup(legato, {"flow_url": {"url": customer.base + "/incoming"}})
    assert client.calls.list() == []  # also makes the account's key its signing key
    menu = VoiceResponse()
    gather = Gather(num_digits=1, timeout=30, action="/never")
    gather.say("Welcome; please hold for a long while")
    menu.append(gather)
    customer.routes["/incoming"] = str(menu)
    r = httpx.post(legato.base + "/v1/sim/incoming", headers=headers,
                   json={"number": NUMBER, "from": SILENT})
    assert r.status_code in (200, 201, 202), r.text
    (incoming,) = customer.wait_for("/incoming", 1)
    sid = incoming.get("CallSid") or ""
    assert incoming.valid(key)
    call = client.calls(sid).fetch()
    assert (call.direction, call.from_formatted, call.to) == ("inbound", SILENT, NUMBER)
    assert call.sid == sid and call.status in ("ringing", "in-progress")
    assert [c.sid for c in client.calls.list()] == [sid]
    deadline = time.monotonic() + 20
    while client.calls(sid).fetch().status != "in-progress":  # the gather answers it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.calls(sid).update(twiml="<Response><Say>We are closing now</Say></Response>")
    doc = _native(legato, headers, r.json()["id"])
    assert [e["type"] for e in doc["events"]][-3:] == ["redirect", "play", "end"]
    assert doc["status"] == "IVR-ANSWER"
    assert client.calls(sid).fetch().status == "completed"


def test_twilio_calls_are_in_the_native_list(legato: LegatoServer) -> None:
    client, _, headers = _setup(legato)
    call = client.calls.create(to=SILENT, from_=NUMBER, twiml="<Response><Hangup/></Response>")
    native = httpx.get(legato.base + "/v1/calls", headers=headers).json()["data"]
    assert [call_sid(c["id"]) for c in native] == [call.sid]


def test_twiml_replaces_the_numbers_voice_url(legato: LegatoServer,
                                               customer: CustomerApp) -> None:
    client, _, headers = _setup(legato, {"flow_url": {"url": customer.base + "/incoming"}})
    client.calls.create(to=SILENT, from_=NUMBER, status_callback=customer.base + "/status",
                        twiml="<Response><Say>Outbound notice</Say></Response>")
    (final,) = customer.wait_for("/status", 1)
    assert final.get("CallStatus") == "completed"
    assert customer.at("/incoming") == []  # the number's voice URL is for calls to it
    doc = _native(legato, headers, final.get("LegatoCallId") or "")
    assert [e["prompt"] for e in doc["events"] if e["type"] == "play"] == ["Outbound notice"]


def test_the_accounts_dialling_rules_apply(legato: LegatoServer,
                                           customer: CustomerApp) -> None:
    client, _, headers = _setup(legato)
    r = httpx.put(legato.base + "/v1/account/settings", headers=headers,
                  json={"allowed_countries": ["US"]})
    assert r.status_code == 200, r.text
    client.calls.create(to=SILENT, from_=NUMBER, status_callback=customer.base + "/status",
                        twiml="<Response><Say>never heard</Say></Response>")
    (final,) = customer.wait_for("/status", 1)
    assert (final.get("CallStatus"), final.get("LegatoStatus")) == ("failed", "NOTALLOWED")
