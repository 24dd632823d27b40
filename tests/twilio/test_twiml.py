"""TwiML → flow steps, with fixtures built by the official library (what customers send)."""

from __future__ import annotations

from typing import Any

import pytest
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from legato.twilio.twiml import TwimlError, translate

DOC = "http://127.0.0.1:9/voice"
AGENT, AGENT2 = "+919811000101", "+919811000102"


def _steps(response: VoiceResponse | str, url: str = DOC) -> list[dict[str, Any]]:
    return [s.model_dump(mode="json", exclude_unset=True) for s in translate(str(response), url)]


def test_say_play_pause_hangup() -> None:
    r = VoiceResponse()
    r.say("Welcome to Legato", voice="alice", language="en-IN")
    r.play("/audio/hold.wav", loop=2)
    r.pause(length=3)
    r.hangup()
    steps = _steps(r)
    assert steps == [
        {"play": {"text": "Welcome to Legato", "seconds": 1.2}},
        {"play": {"prompt": "http://127.0.0.1:9/audio/hold.wav", "seconds": 3.0}},
        {"play": {"prompt": "http://127.0.0.1:9/audio/hold.wav", "seconds": 3.0}},
        {"pause": {"seconds": 3.0}},
        {"hangup": {}},
    ]


def test_leading_pause_answers_first() -> None:
    r = VoiceResponse()
    r.pause(length=2)
    r.say("hello")
    assert [next(iter(s)) for s in _steps(r)] == ["answer", "pause", "play"]


def test_gather_with_nested_prompt_and_action() -> None:
    r = VoiceResponse()
    g = Gather(num_digits=1, timeout=4, action="/menu", method="GET", finish_on_key="*")
    g.say("Press 1 for sales")
    g.pause(length=2)
    r.append(g)
    r.say("We did not get that")
    steps = _steps(r)
    assert steps[0] == {"gather": {
        "prompt": {"text": "Press 1 for sales", "seconds": 1.6}, "digits": 1, "timeout": 6.0,
        "finish_on_key": "*",
        "action": {"url": "http://127.0.0.1:9/menu", "method": "GET"}}}
    # verbs after a Gather run only when no digits came: the engine goes on with them
    assert steps[1] == {"play": {"text": "We did not get that", "seconds": 2.0}}


def test_gather_without_action_posts_back_to_the_document() -> None:
    r = VoiceResponse()
    r.gather(num_digits=4).say("Enter your PIN")
    (step,) = _steps(r, "https://ivr.example.com/pin?x=1")
    assert step["gather"]["action"] == {"url": "https://ivr.example.com/pin?x=1",
                                        "method": "POST"}
    assert step["gather"]["digits"] == 4 and step["gather"]["finish_on_key"] == "#"


def test_gather_with_several_prompts_plays_the_earlier_ones_first() -> None:
    r = VoiceResponse()
    g = r.gather(num_digits=1)
    g.say("Welcome")
    g.play("https://cdn.example.com/menu.wav")
    steps = _steps(r)
    assert steps[0] == {"play": {"text": "Welcome", "seconds": 1.0}}
    assert steps[1]["gather"]["prompt"]["prompt"] == "https://cdn.example.com/menu.wav"


def test_dial_numbers_parallel_by_default_and_sequential_on_request() -> None:
    r = VoiceResponse()
    d = Dial(timeout=20, caller_id="+918047001000", action="/after", method="POST")
    d.number(AGENT)
    d.number(AGENT2)
    r.append(d)
    (step,) = _steps(r)
    assert step == {"dial": {"to": [AGENT, AGENT2], "ring_timeout": 20.0,
                             "strategy": "parallel", "caller_id": "+918047001000",
                             "action": {"url": "http://127.0.0.1:9/after", "method": "POST"}}}
    r = VoiceResponse()
    d = Dial(sequential=True)
    d.number(AGENT)
    d.number(AGENT2)
    r.append(d)
    assert _steps(r)[0]["dial"]["strategy"] == "sequential"
    r = VoiceResponse()
    r.dial(AGENT)
    assert _steps(r)[0]["dial"]["to"] == [AGENT]


def test_reject_and_redirect() -> None:
    r = VoiceResponse()
    r.reject(reason="busy")
    assert _steps(r) == [{"reject": {"reason": "busy"}}]
    r = VoiceResponse()
    r.redirect("next.xml", method="GET")
    assert _steps(r, "http://127.0.0.1:9/a/first.xml") == [
        {"redirect": {"url": "http://127.0.0.1:9/a/next.xml", "method": "GET"}}]


@pytest.mark.parametrize(("xml", "message"), [
    ("<Response><Say>hi</Say", "not well-formed XML"),
    ("<Twiml><Say>hi</Say></Twiml>", "root element must be <Response>"),
    ("<Response><Record/></Response>", "Response/Record[1]: <Record> is not a TwiML verb"),
    ("<Response><Say>hi</Say><Enqueue>q</Enqueue></Response>", "Response/Enqueue[2]"),
    ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><Response><Say>&a;</Say>'
     "</Response>", "DOCTYPE or entities"),
    ("<Response><Gather numDigits='1'/></Response>", "needs a nested <Say> or <Play>"),
    ("<Response><Gather input='speech'><Say>x</Say></Gather></Response>", "only 'dtmf'"),
    ("<Response><Gather><Dial>+919811000101</Dial></Gather></Response>",
     "Gather[1]/Dial[1]: <Gather> may contain"),
    ("<Response><Dial><Sip>sip:a@b</Sip></Dial></Response>", "<Number> nouns only"),
    ("<Response><Dial record='true'>+919811000101</Dial></Response>", "'record' is not supported"),
    ("<Response><Dial>not-a-number</Dial></Response>", "invalid flow at 0.dial.to.0"),
    ("<Response><Reject reason='later'/></Response>", "'rejected' or 'busy'"),
    ("<Response><Pause length='-1'/></Response>", "length='-1' must be between"),
    ("<Response><Redirect>ftp://x/y</Redirect></Response>", "not an http(s) URL"),
    ("<Response><Say></Say></Response>", "the text to say is empty"),
])
def test_errors_name_the_element_and_the_rule(xml: str, message: str) -> None:
    with pytest.raises(TwimlError, match=None) as info:
        translate(xml, DOC)
    assert message in str(info.value)


def test_oversized_document_is_refused() -> None:
    r = VoiceResponse()
    for _ in range(5000):
        r.say("This sentence is long enough to exceed the limit quickly")
    with pytest.raises(TwimlError, match="limit"):
        translate(str(r), DOC)
