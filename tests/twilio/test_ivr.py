"""An IVR end to end in sim: TwiML served by a real local web app → gather → dial →
statuses, action requests and callbacks, every request signed (RequestValidator)."""

from __future__ import annotations

import httpx
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse
from twilio_testkit import (
    AGENT,
    AGENT_2,
    NUMBER,
    SUBSCRIBER,
    CustomerApp,
    LegatoServer,
    Seen,
)

from legato.testing import free_port


def _menu() -> str:
    r = VoiceResponse()
    g = Gather(num_digits=1, action="/menu", method="POST", timeout=5)
    g.say("Press 1 to talk to sales")
    r.append(g)
    r.say("We did not receive any input. Goodbye")
    return str(r)


def _route(seen: Seen) -> tuple[int, str, str]:
    r = VoiceResponse()
    if seen.get("Digits") == "1":
        d = Dial(timeout=20, action="/after", caller_id=NUMBER)
        d.number(AGENT)
        d.number(AGENT_2)
        r.append(d)
    else:
        r.redirect("/voice")
    return 200, "application/xml", str(r)


def _after(seen: Seen) -> tuple[int, str, str]:
    r = VoiceResponse()
    r.say("Thank you for calling")
    r.hangup()
    return 200, "text/xml", str(r)


def test_gather_then_dial_then_action(legato: LegatoServer, customer: CustomerApp) -> None:
    _, sid, key = legato.account()
    legato.add_number(key, NUMBER)
    customer.routes.update({"/voice": _menu(), "/menu": _route, "/after": _after})
    client = Client(sid, key, environment={})
    client.api.base_url = legato.base
    call = client.calls.create(to=SUBSCRIBER, from_=NUMBER, url=customer.base + "/voice",
                               status_callback=customer.base + "/status",
                               status_callback_event=["answered", "completed"])
    final = customer.wait_for("/status", 2)
    assert [s.get("CallStatus") for s in final] == ["in-progress", "completed"]
    assert [s.get("SequenceNumber") for s in final] == ["0", "1"]
    (voice,) = customer.at("/voice")
    (menu,) = customer.at("/menu")
    (after,) = customer.at("/after")
    assert voice.method == "POST" and voice.get("CallSid") == call.sid
    assert voice.get("CallStatus") == "in-progress" and voice.get("Direction") == "outbound-api"
    assert voice.get("AccountSid") == sid and voice.get("To") == SUBSCRIBER
    assert voice.get("From") == NUMBER and voice.get("ApiVersion") == "2010-04-01"
    assert menu.get("Digits") == "1"
    assert after.get("DialCallStatus") == "completed"
    assert after.get("DialCallDuration") == "5"  # the agent hangs up after 5 s
    assert (after.get("DialCallSid") or "").startswith("CA")
    assert after.get("LegatoDialNumber") == AGENT
    for seen in customer.seen:
        assert seen.valid(key), f"{seen.path} is not signed with the account's API key"
    record = legato.completed(key, final[-1].get("LegatoCallId") or "")
    assert record["status"] == final[-1].get("LegatoStatus")
    assert record["connected_to"] == AGENT
    agents = {leg["number"]: leg["outcome"] for leg in record["legs"] if leg["leg"] == 2}
    assert agents == {AGENT: "ANSWERED", AGENT_2: "CANCELLED"}  # rung at the same time
    assert client.calls(call.sid).fetch().status == "completed"


def test_bad_twiml_ends_the_call_with_a_recorded_flow_error(
        legato: LegatoServer, customer: CustomerApp) -> None:
    _, sid, key = legato.account()
    legato.add_number(key, NUMBER)
    customer.routes["/voice"] = "<Response><Say>Hello</Say><Conference>x</Conference></Response>"
    client = Client(sid, key, environment={})
    client.api.base_url = legato.base
    client.calls.create(to=SUBSCRIBER, from_=NUMBER, url=customer.base + "/voice",
                        status_callback=customer.base + "/status")
    (final,) = customer.wait_for("/status", 1)
    record = legato.completed(key, final.get("LegatoCallId") or "")
    errors = [e for e in record["events"] if e["type"] == "flow_error"]
    assert errors and "<Conference> is not a TwiML verb" in errors[0]["error"]
    assert final.get("CallStatus") == "completed" and final.valid(key)
    assert "<Conference> is not a TwiML verb" in (final.get("LegatoFlowError") or "")


def test_number_voice_url_rejects_an_incoming_call(legato: LegatoServer,
                                                   customer: CustomerApp) -> None:
    _, sid, key = legato.account()
    headers = {"Authorization": f"Bearer {key}"}
    r = httpx.post(legato.base + "/v1/numbers", headers=headers, json={
        "number": NUMBER, "config": {"flow_url": {"url": customer.base + "/incoming"}}})
    assert r.status_code == 201, r.text
    client = Client(sid, key, environment={})  # any Twilio-API request sets the signing key
    client.api.base_url = legato.base
    assert client.calls.list() == []
    rejection = VoiceResponse()
    rejection.reject(reason="busy")
    customer.routes["/incoming"] = str(rejection)
    r = httpx.post(legato.base + "/v1/sim/incoming", headers=headers,
                   json={"number": NUMBER, "from": SUBSCRIBER})
    assert r.status_code in (200, 201, 202), r.text
    record = legato.completed(key, r.json()["id"])
    assert record["status"] == "BLOCKED"
    (incoming,) = customer.at("/incoming")
    assert incoming.get("Direction") == "inbound" and incoming.get("From") == SUBSCRIBER
    assert incoming.get("CallStatus") == "ringing" and incoming.valid(key)
    caller = record["legs"][0]
    assert (caller["sip_code"], caller["q850_cause"]) == (486, 17)


def test_bad_xml_for_an_incoming_call_ends_it_ivr(legato: LegatoServer,
                                                  customer: CustomerApp) -> None:
    _, _, key = legato.account()
    headers = {"Authorization": f"Bearer {key}"}
    r = httpx.post(legato.base + "/v1/numbers", headers=headers, json={
        "number": NUMBER, "config": {"flow_url": {"url": customer.base + "/incoming",
                                                  "method": "GET"}}})
    assert r.status_code == 201, r.text
    customer.routes["/incoming"] = "<Response><Say>Welcome</Say>"  # truncated document
    r = httpx.post(legato.base + "/v1/sim/incoming", headers=headers,
                   json={"number": NUMBER, "from": SUBSCRIBER})
    assert r.status_code in (200, 201, 202), r.text
    record = legato.completed(key, r.json()["id"])
    assert record["status"] == "IVR"  # nothing had answered: the flow could not start
    (error,) = [e for e in record["events"] if e["type"] == "flow_error"]
    assert "not well-formed XML" in error["error"]
    assert record["legs"][0]["sip_code"] == 480


def test_unreachable_twiml_url_is_a_recorded_flow_error(legato: LegatoServer,
                                                        customer: CustomerApp) -> None:
    _, sid, key = legato.account()
    legato.add_number(key, NUMBER)
    client = Client(sid, key, environment={})
    client.api.base_url = legato.base
    dead = f"http://127.0.0.1:{free_port()}/voice"  # nothing listens there
    call = client.calls.create(to=SUBSCRIBER, from_=NUMBER, url=dead,
                               status_callback=customer.base + "/status")
    (final,) = customer.wait_for("/status", 1)
    assert f"fetching {dead} failed" in (final.get("LegatoFlowError") or "")
    assert client.calls(call.sid).fetch().status == "completed"  # the subscriber answered
