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


def test_a_redirected_call_replays_to_the_same_record() -> None:
    """The API's redirect is journaled ("redirect" entries): replaying the journal into a
    fresh engine gives the record the live call had (what crash recovery relies on)."""
    from datetime import UTC, datetime
    from typing import Any

    from legato.core.admission import Policy
    from legato.core.catalogue import Service
    from legato.core.config import FlowUrl, NumberConfig
    from legato.core.engine import CallSpec, create_call
    from legato.service.journal import JournaledCall, replay
    from legato.sim import PhoneBehaviour, SimNetwork

    url = "http://127.0.0.1:9/next"
    config = NumberConfig.model_validate({"flow": parse_flow(translate(
        "<Response><Gather numDigits='1'><Say>Press a key</Say></Gather></Response>",
        "http://127.0.0.1:9/voice"))})
    spec = CallSpec("c1", Service.OUTBOUND, "+918047001000", ("+919811000001",), (), config,
                    Policy.from_config(config), datetime(2026, 11, 23, tzinfo=UTC))

    def fetch(command: Any, call: Any, reply: Any) -> None:
        reply(FlowFetched(command.request, tuple(translate(
            "<Response><Say>Moved</Say><Pause length='2'/></Response>", url))))

    network = SimNetwork({"+919811000001": PhoneBehaviour(answer_after=1, hangup_after=90)},
                         fetcher=fetch)
    live = JournaledCall(create_call(spec, 0.0), 0.0, lambda: 0.0)
    handle = network.place(lambda _when: live, 0.0)  # type: ignore[arg-type,return-value]
    network.run(until=3.0)
    inline = parse_flow(translate("<Response><Redirect>/next</Redirect></Response>", url))
    assert network.act(handle, lambda c, now: c.redirect(now, inline), 3.0)
    network.run(until=4.0)
    assert network.act(handle, lambda c, now: c.redirect(now, FlowUrl(url=url)), 4.0)
    network.run()
    assert live.finished and [e[0] for e in live.journal].count("redirect") == 2
    fresh = create_call(spec, 0.0)
    replay(fresh, json.loads(json.dumps(live.journal)))
    assert fresh.record.to_dict() == live.record.to_dict()
