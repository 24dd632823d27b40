"""Dynamic flows: documents fetched at the start, after a gather, after a dial, on redirect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from legato.core.admission import Policy
from legato.core.catalogue import Service, Status
from legato.core.config import NumberConfig, parse_flow
from legato.core.engine import Call, CallSpec, create_call
from legato.core.events import Dial, FetchFlow, FlowFetched, Reject
from legato.core.record import CallRecord
from legato.sim import PhoneBehaviour, SimNetwork

NUMBER, CALLER, AGENT = "+918047001000", "+919811000001", "+919811000101"
BASE = "http://flows.example.test"


class Documents:
    """A document source keyed by URL (what an HTTP server would return); records every
    fetch so the tests can check what the engine asked for."""

    def __init__(self, docs: dict[str, Any]) -> None:
        self.docs = docs
        self.fetches: list[FetchFlow] = []

    def __call__(self, command: FetchFlow, call: Call,
                 reply: Callable[[FlowFetched], None]) -> None:
        self.fetches.append(command)
        doc = self.docs.get(command.url)
        if doc is None:
            reply(FlowFetched(command.request, None, f"404 from {command.url}"))
        else:
            reply(FlowFetched(command.request, tuple(parse_flow(doc))))


def _run(config: dict[str, Any], phones: dict[str, dict[str, Any]], docs: Documents | None,
         service: str = "incoming", leg1: str = CALLER) -> tuple[CallRecord, list[Any]]:
    cfg = NumberConfig.model_validate(config)
    spec = CallSpec("t", Service(service), NUMBER, (leg1,), (), cfg, Policy.from_config(cfg),
                    datetime(2026, 11, 23, tzinfo=UTC))
    network = SimNetwork({n: PhoneBehaviour.model_validate(b) for n, b in phones.items()},
                         fetcher=docs)
    call = create_call(spec, 0.0)
    seen: list[Any] = []
    original = network._after

    def spy(active: Any, now: float) -> None:
        seen.extend(active.call.commands)
        original(active, now)

    network._after = spy  # type: ignore[method-assign]
    network.place(call, 0.0)
    network.run()
    assert call.settled
    return call.record, seen


MENU = [{"gather": {"prompt": {"text": "press 1 for sales", "seconds": 3}, "digits": 1,
                    "timeout": 5, "action": {"url": f"{BASE}/menu"}}},
        {"play": {"text": "we did not get that", "seconds": 2}}]


def test_flow_url_then_gather_action_then_dial() -> None:
    docs = Documents({f"{BASE}/start": MENU,
                      f"{BASE}/menu": [{"dial": {"to": [AGENT], "caller_id": NUMBER}}]})
    record, commands = _run({"flow_url": {"url": f"{BASE}/start"}},
                            {CALLER: {"dtmf": ["1"], "hangup_after": 60},
                             AGENT: {"answer_after": 2}}, docs)
    assert [(f.url, f.params) for f in docs.fetches] == [
        (f"{BASE}/start", {"event": "start"}),
        (f"{BASE}/menu", {"event": "gather", "digits": "1"}),
    ]
    assert (record.status, record.disconnected_by, record.picked_by) == (
        Status.ANSWER, "leg1", AGENT)
    assert [c.caller_id for c in commands if isinstance(c, Dial)] == [NUMBER]


def test_gather_action_without_digits_goes_on_with_the_next_step() -> None:
    docs = Documents({f"{BASE}/start": MENU})
    record, _ = _run({"flow_url": {"url": f"{BASE}/start"}}, {CALLER: {}}, docs)
    assert len(docs.fetches) == 1
    assert (record.status, record.disconnected_by) == (Status.IVR_ANSWER, "platform")
    assert record.duration_seconds == 3 + 5 + 2


def test_a_flow_that_cannot_be_fetched_at_the_start_is_ivr() -> None:
    record, commands = _run({"flow_url": {"url": f"{BASE}/missing"}}, {CALLER: {}},
                            Documents({}))
    assert (record.status, record.disconnected_by) == (Status.IVR, "platform")
    assert any(isinstance(c, Reject) for c in commands)
    assert ("flow_error", {"error": f"404 from {BASE}/missing"}) in [
        (e[1], e[3]) for e in record.timeline]


def test_without_a_fetcher_dynamic_flows_fail_clearly() -> None:
    record, _ = _run({"flow_url": {"url": f"{BASE}/start"}}, {CALLER: {}}, None)
    assert record.status is Status.IVR
    errors = [e[3]["error"] for e in record.timeline if e[1] == "flow_error"]
    assert errors and "no flow fetcher" in errors[0]


def test_a_failed_fetch_mid_flow_ends_the_call_by_the_platform() -> None:
    docs = Documents({f"{BASE}/start": [{"play": {"text": "hi", "seconds": 1}},
                                        {"redirect": {"url": f"{BASE}/gone"}}]})
    record, _ = _run({"flow_url": {"url": f"{BASE}/start"}}, {CALLER: {}}, docs)
    assert (record.status, record.disconnected_by) == (Status.IVR_ANSWER, "platform")


def test_redirect_replaces_the_rest_of_the_flow() -> None:
    docs = Documents({f"{BASE}/next": [{"play": {"text": "new", "seconds": 4}}]})
    record, _ = _run({"flow": [{"answer": {}}, {"redirect": {"url": f"{BASE}/next"}},
                               {"dial": {"to": [AGENT]}}]},
                     {CALLER: {}, AGENT: {}}, docs)
    assert (record.status, record.duration_seconds) == (Status.IVR_ANSWER, 4.0)
    assert [f.params for f in docs.fetches] == [{"event": "redirect"}]


def test_dial_action_gets_the_outcome_and_its_flow_runs() -> None:
    docs = Documents({f"{BASE}/after": [{"play": {"text": "all agents busy", "seconds": 2}}]})
    flow = [{"answer": {}}, {"dial": {"to": [AGENT], "action": {"url": f"{BASE}/after"}}},
            {"play": {"text": "never played", "seconds": 9}}]
    record, _ = _run({"flow": flow}, {CALLER: {}, AGENT: {"busy": True}}, docs)
    assert docs.fetches[0].params == {"event": "dial", "outcome": "BUSY", "sip_code": "486",
                                      "talk_seconds": "0", "number": AGENT}
    assert (record.status, record.disconnected_by, record.duration_seconds) == (
        Status.BUSY, "platform", 2.0)


def test_with_a_dial_action_the_caller_stays_after_the_agent_hangs_up() -> None:
    docs = Documents({f"{BASE}/after": [{"play": {"text": "rate the call", "seconds": 5}}]})
    flow = [{"dial": {"to": [AGENT], "action": {"url": f"{BASE}/after"}}}]
    record, _ = _run({"flow": flow}, {CALLER: {}, AGENT: {"answer_after": 1,
                                                          "hangup_after": 10}}, docs)
    assert docs.fetches[0].params["outcome"] == "ANSWERED"
    assert docs.fetches[0].params["talk_seconds"] == "10"
    assert (record.status, record.disconnected_by, record.duration_seconds) == (
        Status.ANSWER, "platform", 16.0)


@pytest.mark.parametrize(("reason", "code"), [("rejected", 603), ("busy", 486)])
def test_reject_step_refuses_the_caller_as_blocked(reason: str, code: int) -> None:
    record, commands = _run({"flow": [{"reject": {"reason": reason}}]}, {CALLER: {}}, None)
    assert (record.status, record.disconnected_by) == (Status.BLOCKED, "platform")
    assert [c.sip_code for c in commands if isinstance(c, Reject)] == [code]


def test_pause_waits_in_silence() -> None:
    record, _ = _run({"flow": [{"answer": {}}, {"pause": {"seconds": 7}}]}, {CALLER: {}}, None)
    assert (record.status, record.duration_seconds) == (Status.IVR_ANSWER, 7.0)


def test_flow_and_flow_url_together_is_an_error() -> None:
    with pytest.raises(ValueError, match="give `flow` or `flow_url`, not both"):
        NumberConfig.model_validate({"flow": [{"hangup": {}}],
                                     "flow_url": {"url": f"{BASE}/x"}})
    with pytest.raises(ValueError, match="not an http"):
        NumberConfig.model_validate({"flow_url": {"url": "ftp://x"}})
