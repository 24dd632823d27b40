"""`calls(sid).update(url=...)` and `update(twiml=...)` with the official library: a live
call's TwiML is abandoned at once and the new document runs from its start."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import Gather, VoiceResponse
from twilio_testkit import NUMBER, SILENT, CustomerApp, LegatoServer


def _long_gather() -> str:
    r = VoiceResponse()
    g = Gather(num_digits=1, timeout=30, action="/never")
    g.say("Please hold while we look up your order; this takes a while")
    r.append(g)
    r.say("No input")
    return str(r)


def _native(legato: LegatoServer, key: str, call_id: str,
            until: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = httpx.get(f"{legato.base}/v1/calls/{call_id}",
                                        headers={"Authorization": f"Bearer {key}"}).json()
        if until(doc):
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)


def _kinds(doc: dict[str, Any]) -> list[str]:
    return [e["type"] for e in doc["events"]]


def test_update_url_moves_a_call_in_a_gather(legato: LegatoServer,
                                             customer: CustomerApp) -> None:
    client, key = legato.client()
    moved = VoiceResponse()
    moved.say("Your order has shipped")
    moved.hangup()
    customer.routes.update({"/voice": _long_gather(), "/moved": str(moved)})
    call = client.calls.create(to=SILENT, from_=NUMBER, url=customer.base + "/voice",
                               status_callback=customer.base + "/status")
    (voice,) = customer.wait_for("/voice", 1)
    call_id = voice.get("LegatoCallId") or ""
    _native(legato, key, call_id, lambda d: "gather" in _kinds(d))
    updated = client.calls(call.sid).update(url=customer.base + "/moved", method="GET")
    assert updated.status == "in-progress"
    (final,) = customer.wait_for("/status", 1)
    assert final.get("CallStatus") == "completed"
    (fetch,) = customer.at("/moved")
    assert fetch.method == "GET" and fetch.valid(key)
    assert fetch.get("LegatoEvent") == "redirect" and fetch.get("CallSid") == call.sid
    doc = _native(legato, key, call_id, lambda d: d["state"] == "completed")
    kinds = _kinds(doc)
    assert kinds[kinds.index("gather"):] == ["gather", "redirect", "fetch", "play", "end"]
    redirect = next(e for e in doc["events"] if e["type"] == "redirect")
    assert redirect["url"] == customer.base + "/moved" and redirect["method"] == "GET"
    play = next(e for e in doc["events"] if e["type"] == "play")
    assert play["prompt"] == "Your order has shipped"
    assert customer.at("/never") == []  # the abandoned gather never posts its digits
    assert doc["duration_seconds"] < 30  # well before the gather's timeout


def test_update_twiml_then_a_finished_call_gives_21220(legato: LegatoServer,
                                                        customer: CustomerApp) -> None:
    client, key = legato.client()
    customer.routes["/voice"] = _long_gather()
    call = client.calls.create(to=SILENT, from_=NUMBER, url=customer.base + "/voice",
                               status_callback=customer.base + "/status")
    (voice,) = customer.wait_for("/voice", 1)
    call_id = voice.get("LegatoCallId") or ""
    _native(legato, key, call_id, lambda d: "gather" in _kinds(d))
    client.calls(call.sid).update(
        twiml="<Response><Say>Goodbye from the new TwiML</Say></Response>")
    customer.wait_for("/status", 1)
    doc = _native(legato, key, call_id, lambda d: d["state"] == "completed")
    assert _kinds(doc)[-3:] == ["redirect", "play", "end"]
    assert [e.get("steps") for e in doc["events"] if e["type"] == "redirect"] == [1]
    assert doc["events"][-2]["prompt"] == "Goodbye from the new TwiML"
    assert client.calls(call.sid).fetch().status == "completed"
    for params in ({"url": customer.base + "/voice"}, {"twiml": "<Response/>"}):
        with pytest.raises(TwilioRestException) as info:
            client.calls(call.sid).update(**params)
        assert (info.value.status, info.value.code) == (400, 21220), params


def test_update_errors_name_what_is_wrong(legato: LegatoServer,
                                          customer: CustomerApp) -> None:
    client, _ = legato.client()
    customer.routes["/voice"] = _long_gather()
    call = client.calls.create(to=SILENT, from_=NUMBER, url=customer.base + "/voice")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"url": "ftp://x"}, 21205, "Url"),
        ({"url": customer.base + "/x", "twiml": "<Response/>"}, 21205, "exactly one"),
        ({"twiml": "<Response><Record/></Response>"}, 12100, "<Record>"),
        ({"url": customer.base + "/x", "status": "completed"}, 20001, "not both"),
        ({"url": customer.base + "/x", "method": "PUT"}, 21205, "Method"),
    ]
    for params, code, named in cases:
        with pytest.raises(TwilioRestException) as info:
            client.calls(call.sid).update(**params)
        assert (info.value.status, info.value.code) == (400, code), params
        assert named in info.value.msg, (named, info.value.msg)
    client.calls(call.sid).update(status="completed")
