"""The official `twilio` library drives Legato: create, fetch, list, update, delete, errors,
and signed status callbacks a receiver validates with RequestValidator."""

from __future__ import annotations

import time
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse
from twilio_testkit import BUSY, NUMBER, SILENT, SLOW, SUBSCRIBER, CustomerApp, LegatoServer


def _client(legato: LegatoServer, sid: str, key: str) -> Client:
    client = Client(sid, key, environment={})  # no TWILIO_EDGE/REGION host rewriting
    client.api.base_url = legato.base
    return client


@pytest.fixture
def account(legato: LegatoServer) -> tuple[Client, str, str]:
    _, sid, key = legato.account()
    legato.add_number(key, NUMBER)
    return _client(legato, sid, key), sid, key


def _wait_status(client: Client, call_sid: str, want: set[str], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        call = client.calls(call_sid).fetch()
        if call.status in want:
            return call
        if time.monotonic() > deadline:
            raise AssertionError(f"{call_sid} is {call.status}, not one of {want}")
        time.sleep(0.05)


def _say_hangup() -> str:
    r = VoiceResponse()
    r.say("Your order has shipped")
    r.hangup()
    return str(r)


def test_create_fetch_and_signed_callbacks(legato: LegatoServer, customer: CustomerApp,
                                           account: tuple[Client, str, str]) -> None:
    client, sid, key = account
    call = client.calls.create(
        to=SUBSCRIBER, from_=NUMBER, twiml=_say_hangup(),
        status_callback=customer.base + "/status?tenant=acme",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        status_callback_method="POST", timeout=20, time_limit=600)
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert call.account_sid == sid and call.to == SUBSCRIBER and call._from == NUMBER
    assert call.direction == "outbound-api" and call.api_version == "2010-04-01"
    assert call.date_created is not None  # parsed from RFC 2822 by the library
    done = _wait_status(client, call.sid, {"completed", "failed", "busy", "no-answer"})
    assert done.status == "completed"
    assert done.duration is not None and int(done.duration) >= 1
    seen = customer.wait_for("/status", 4)
    assert [s.get("CallStatus") for s in seen] == ["initiated", "ringing", "in-progress",
                                                   "completed"]
    assert [s.get("SequenceNumber") for s in seen] == ["0", "1", "2", "3"]
    assert all(s.valid(key) for s in seen), "every callback is signed with the API key"
    final = seen[-1]
    assert final.get("CallSid") == call.sid and final.get("AccountSid") == sid
    assert final.get("CallbackSource") == "call-progress-events"
    assert final.get("LegatoStatus") == "ANSWER", final.params
    assert final.get("CallDuration") == done.duration
    assert final.get("SipResponseCode") == "200"
    assert final.get("LegatoLeg1Outcome") == "ANSWERED"
    time.sleep(0.3)
    assert len(customer.at("/status")) == 4, "exactly one final callback"


def test_busy_subscriber_gets_one_busy_callback(legato: LegatoServer, customer: CustomerApp,
                                               account: tuple[Client, str, str]) -> None:
    client, _, key = account
    call = client.calls.create(to=BUSY, from_=NUMBER, twiml=_say_hangup(),
                               status_callback=customer.base + "/status")
    assert _wait_status(client, call.sid, {"busy", "failed"}).status == "busy"
    (only,) = customer.wait_for("/status", 1)
    assert only.get("CallStatus") == "busy" and only.get("SequenceNumber") == "0"
    assert only.get("SipResponseCode") == "486" and only.valid(key)
    assert only.get("LegatoLeg1Outcome") == "BUSY"


def test_list_pages_through_every_call(legato: LegatoServer,
                                       account: tuple[Client, str, str]) -> None:
    client, _, _ = account
    sids = [client.calls.create(to=BUSY, from_=NUMBER, twiml=_say_hangup()).sid
            for _ in range(5)]
    listed = client.calls.list(limit=5, page_size=2)
    assert [c.sid for c in listed] == sids[::-1]  # newest first, across three pages
    page = client.calls.page(page_size=2)
    assert page.next_page_url is not None and len(list(page)) == 2
    last = page.next_page().next_page()
    assert last is not None and len(list(last)) == 1 and last.next_page_url is None
    assert len(list(client.calls.stream(page_size=3))) == 5


def test_update_cancels_a_ringing_call_and_delete_removes_it(
        legato: LegatoServer, customer: CustomerApp, account: tuple[Client, str, str]) -> None:
    client, _, key = account
    call = client.calls.create(to=SLOW, from_=NUMBER, twiml=_say_hangup(),
                               status_callback=customer.base + "/status")
    _wait_status(client, call.sid, {"ringing"})
    updated = client.calls(call.sid).update(status="canceled")
    assert updated.status == "canceled"
    (final,) = customer.wait_for("/status", 1)
    assert final.get("CallStatus") == "canceled" and final.valid(key)
    assert client.calls(call.sid).delete() is True
    with pytest.raises(TwilioRestException) as info:
        client.calls(call.sid).fetch()
    assert (info.value.status, info.value.code) == (404, 20404)


def test_update_completes_a_call_in_progress(legato: LegatoServer,
                                             account: tuple[Client, str, str]) -> None:
    client, _, _ = account
    r = VoiceResponse()
    r.pause(length=600)
    call = client.calls.create(to=SILENT, from_=NUMBER, twiml=str(r))
    _wait_status(client, call.sid, {"in-progress"})
    with pytest.raises(TwilioRestException) as info:
        client.calls(call.sid).update(status="canceled")
    assert (info.value.status, info.value.code) == (400, 21220)
    done = client.calls(call.sid).update(status="completed")
    assert done.status == "completed"
    with pytest.raises(TwilioRestException) as info:
        client.calls(call.sid).update(status="completed")
    assert info.value.code == 21220


def test_error_paths(legato: LegatoServer, account: tuple[Client, str, str]) -> None:
    client, sid, key = account
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"from_": NUMBER, "url": "http://127.0.0.1:9/x", "to": ""}, 21201, "To"),
        ({"to": SUBSCRIBER, "from_": "", "url": "http://127.0.0.1:9/x"}, 21213, "From"),
        ({"to": "12ab", "from_": NUMBER, "url": "http://127.0.0.1:9/x"}, 21211, "To"),
        ({"to": SUBSCRIBER, "from_": NUMBER}, 21205, "Url"),
        ({"to": SUBSCRIBER, "from_": NUMBER, "url": "ftp://x"}, 21205, "Url"),
        ({"to": SUBSCRIBER, "from_": "+918047009999", "url": "http://127.0.0.1:9/x"}, 21210,
         "From"),
        ({"to": SUBSCRIBER, "from_": NUMBER, "url": "http://127.0.0.1:9/x",
          "machine_detection": "Enable"}, 20001, "MachineDetection"),
        ({"to": SUBSCRIBER, "from_": NUMBER, "url": "http://127.0.0.1:9/x",
          "record": "maybe"}, 20001, "Record"),
        ({"to": SUBSCRIBER, "from_": NUMBER, "twiml": "<Response><Record/></Response>"},
         12100, "<Record>"),
        ({"to": SUBSCRIBER, "from_": NUMBER, "url": "http://127.0.0.1:9/x",
          "status_callback_event": ["answered", "queued"]}, 20001, "queued"),
    ]
    for params, code, named in cases:
        with pytest.raises(TwilioRestException) as info:
            client.calls.create(**params)
        assert (info.value.status, info.value.code) == (400, code), params
        assert named in info.value.msg, (named, info.value.msg)
    with pytest.raises(TwilioRestException) as info:
        client.calls("CA" + "0" * 32).fetch()
    assert (info.value.status, info.value.code) == (404, 20404)
    bad = _client(legato, sid, key + "x")
    with pytest.raises(TwilioRestException) as info:
        bad.calls.create(to=SUBSCRIBER, from_=NUMBER, twiml=_say_hangup())
    assert (info.value.status, info.value.code) == (401, 20003)
    # another account's credentials never reach this account's calls
    _, other_sid, other_key = legato.account("Other")
    call = client.calls.create(to=BUSY, from_=NUMBER, twiml=_say_hangup())
    other = _client(legato, other_sid, other_key)
    with pytest.raises(TwilioRestException) as info:
        other.calls(call.sid).fetch()
    assert info.value.code == 20404
    assert other.calls.list() == []
    mixed = _client(legato, sid, other_key)  # right SID, another account's key
    with pytest.raises(TwilioRestException) as info:
        mixed.calls(call.sid).fetch()
    assert (info.value.status, info.value.code) == (401, 20003)
