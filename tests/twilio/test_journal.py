"""A fetched flow survives the journal: crash recovery replays TwiML-driven calls."""

from __future__ import annotations

import json

from legato.core.config import parse_flow
from legato.core.events import FlowFetched
from legato.service.journal import decode_event, encode_event
from legato.twilio.twiml import translate


def test_flow_fetched_round_trips_through_json() -> None:
    steps = tuple(translate(
        "<Response><Gather numDigits='1' action='/m'><Say>Press 1</Say></Gather>"
        "<Dial timeout='10'><Number>+919811000101</Number></Dial></Response>",
        "http://127.0.0.1:9/voice"))
    for event in (FlowFetched(3, steps), FlowFetched(4, None, "404 from http://x")):
        assert decode_event(json.loads(json.dumps(encode_event(event)))) == event
    assert parse_flow([{"hangup": {}}])  # the same validation as a number's flow
