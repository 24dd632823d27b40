"""Callback delivery: GET forms signed over the URL, retries after failures, in order."""

from __future__ import annotations

import httpx
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twilio_testkit import BUSY, NUMBER, SUBSCRIBER, CustomerApp, LegatoServer, Seen


def _client(legato: LegatoServer) -> tuple[Client, str]:
    _, sid, key = legato.account()
    legato.add_number(key, NUMBER)
    client = Client(sid, key, environment={})
    client.api.base_url = legato.base
    return client, key


def test_get_fetches_and_get_callbacks_are_signed_over_the_url(
        legato: LegatoServer, customer: CustomerApp) -> None:
    client, key = _client(legato)
    r = VoiceResponse()
    r.say("Hello")
    customer.routes["/voice"] = str(r)
    client.calls.create(to=SUBSCRIBER, from_=NUMBER, url=customer.base + "/voice?v=2",
                        method="GET", status_callback=customer.base + "/status",
                        status_callback_method="GET",
                        status_callback_event=["initiated", "completed"])
    seen = customer.wait_for("/status", 2)
    (voice,) = customer.at("/voice")
    for s in [voice, *seen]:
        assert s.method == "GET" and "CallSid=CA" in s.url and s.valid(key)
    assert voice.get("v") == "2"  # the customer's own query is kept
    assert [s.get("CallStatus") for s in seen] == ["initiated", "completed"]


def test_failed_deliveries_are_retried_in_order(legato: LegatoServer,
                                                customer: CustomerApp) -> None:
    client, key = _client(legato)
    answers = iter([500, 503])

    def flaky(seen: Seen) -> tuple[int, str, str]:
        return next(answers, 200), "text/plain", "ok"

    customer.routes["/status"] = flaky
    r = VoiceResponse()
    r.hangup()
    client.calls.create(to=BUSY, from_=NUMBER, twiml=str(r),
                        status_callback=customer.base + "/status",
                        status_callback_event=["initiated", "completed"])
    seen = customer.wait_for("/status", 4, timeout=30)
    assert [s.get("SequenceNumber") for s in seen] == ["0", "0", "0", "1"]
    assert [s.get("CallStatus") for s in seen][-1] == "busy"
    assert all(s.valid(key) for s in seen)


def test_a_policy_rejection_still_gets_its_one_final_callback(
        legato: LegatoServer, customer: CustomerApp) -> None:
    _, sid, key = legato.account()
    r = httpx.post(legato.base + "/v1/numbers", headers={"Authorization": f"Bearer {key}"},
                   json={"number": NUMBER, "config": {"dnd": [SUBSCRIBER]}})
    assert r.status_code == 201, r.text
    client = Client(sid, key, environment={})
    client.api.base_url = legato.base
    r2 = VoiceResponse()
    r2.say("never played")
    call = client.calls.create(to=SUBSCRIBER, from_=NUMBER, twiml=str(r2),
                               status_callback=customer.base + "/status",
                               status_callback_event=["initiated", "ringing", "answered",
                                                      "completed"])
    seen = customer.wait_for("/status", 2)
    assert [s.get("CallStatus") for s in seen] == ["initiated", "failed"]
    final = seen[-1]
    assert final.get("LegatoStatus") == "DND" and final.get("LegatoAdmissionRule")
    assert final.get("CallDuration") == "0" and final.get("SipResponseCode") is None
    assert final.valid(key) and client.calls(call.sid).fetch().status == "failed"
