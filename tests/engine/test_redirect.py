"""`Call.redirect`: moving a live call to a new document (Twilio's update with Url/Twiml),
driven from outside the flow through the sim network's `act`, like the runtime does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from legato.core.admission import Policy
from legato.core.catalogue import Service, Status
from legato.core.config import FlowUrl, NumberConfig, parse_flow
from legato.core.engine import Call, CallSpec, create_call
from legato.core.events import Cancel, FetchFlow, FlowFetched, Hangup, StopPlay
from legato.sim import PhoneBehaviour, SimNetwork

NUMBER, SUBSCRIBER, AGENT, SLOW = "+918047001000", "+919811000001", "+919811000101", \
    "+919811000301"
BASE = "http://flows.example.test"
PHONES = {SUBSCRIBER: {"answer_after": 1, "hangup_after": 300},
          AGENT: {"answer_after": 2}, SLOW: {"answer_after": 200}}
GATHER = [{"gather": {"prompt": {"text": "press a key", "seconds": 10}, "timeout": 30}},
          {"play": {"text": "never reached", "seconds": 60}}]
GOODBYE = [{"play": {"text": "goodbye", "seconds": 4}}]


class Harness:
    """One outbound call on a sim network; records every command it emits."""

    def __init__(self, config: dict[str, Any], to: str = SUBSCRIBER,
                 docs: dict[str, Any] | None = None, service: str = "outbound") -> None:
        cfg = NumberConfig.model_validate(config)
        spec = CallSpec("t", Service(service), NUMBER, (to,), (), cfg,
                        Policy.from_config(cfg), datetime(2026, 11, 23, tzinfo=UTC))
        self.docs = docs or {}
        self.fetches: list[FetchFlow] = []
        self.network = SimNetwork(
            {n: PhoneBehaviour.model_validate(b) for n, b in PHONES.items()},
            fetcher=self._fetch)
        self.call = create_call(spec, 0.0)
        self.commands: list[Any] = []
        original = self.network._after

        def spy(active: Any, now: float) -> None:
            self.commands.extend(active.call.commands)
            original(active, now)

        self.network._after = spy  # type: ignore[method-assign]
        self.handle = self.network.place(self.call, 0.0)

    def _fetch(self, command: FetchFlow, call: Call, reply: Any) -> None:
        self.fetches.append(command)
        reply(FlowFetched(command.request, tuple(parse_flow(self.docs[command.url]))))

    def redirect(self, at: float, to: FlowUrl | list[Any]) -> bool:
        self.network.run(until=at)
        steps = to if isinstance(to, FlowUrl) else parse_flow(to)
        return self.network.act(self.handle, lambda c, now: c.redirect(now, steps), at)

    def finish(self) -> None:
        self.network.run()
        assert self.call.settled

    def kinds(self) -> list[str]:
        return [e[1] for e in self.call.record.timeline]


def test_a_gather_in_progress_is_stopped_and_the_new_steps_run() -> None:
    h = Harness({"flow": GATHER})
    assert h.redirect(5.0, GOODBYE)
    h.finish()
    rec = h.call.record
    assert any(isinstance(c, StopPlay) for c in h.commands)
    assert h.kinds()[-3:] == ["redirect", "play", "end"]
    assert (rec.status, rec.disconnected_by, rec.ended_at) == (Status.ANSWER, "platform", 9.0)


def test_a_redirect_to_a_url_fetches_it_and_runs_it_from_the_start() -> None:
    h = Harness({"flow": GATHER}, docs={f"{BASE}/new": GOODBYE})
    assert h.redirect(5.0, FlowUrl(url=f"{BASE}/new", method="GET"))
    h.finish()
    assert [(f.url, f.method, f.params) for f in h.fetches] == [
        (f"{BASE}/new", "GET", {"event": "redirect"})]
    assert h.call.record.ended_at == 9.0


def test_a_connected_agent_is_hung_up_and_the_dial_action_is_not_fetched() -> None:
    flow = [{"dial": {"to": [AGENT], "action": {"url": f"{BASE}/after"}}}]
    h = Harness({"flow": flow}, docs={f"{BASE}/after": [{"hangup": {}}]})
    assert h.redirect(10.0, GOODBYE)
    h.finish()
    rec = h.call.record
    agent = next(leg for leg in rec.legs if leg.leg == 2)
    assert (agent.ended_at, agent.ended_by) == (10.0, "platform")
    assert any(isinstance(c, Hangup) and c.leg == 1 for c in h.commands)
    assert h.fetches == []  # Twilio abandons the <Dial>: its action is not requested
    assert (rec.status, rec.ended_at, rec.connected_to) == (Status.ANSWER, 14.0, AGENT)


def test_ringing_agents_are_cut_as_a_timer_would_cut_them() -> None:
    h = Harness({"flow": [{"dial": {"to": [SLOW]}}]})
    assert h.redirect(5.0, GOODBYE)
    h.finish()
    slow = next(leg for leg in h.call.record.legs if leg.leg == 2)
    assert any(isinstance(c, Cancel) for c in h.commands)
    assert slow.outcome is not None and slow.outcome.value == "NOANSWER"
    assert h.call.record.status is Status.ANSWER  # the subscriber was served: not CANCEL


def test_a_call_still_ringing_runs_the_new_document_when_answered() -> None:
    h = Harness({"flow": GATHER})
    assert h.redirect(0.5, GOODBYE)  # the subscriber answers at 1 s
    h.finish()
    assert h.kinds().count("gather") == 0
    assert h.call.record.ended_at == 5.0


def test_a_finished_call_cannot_be_redirected() -> None:
    h = Harness({"flow": [{"hangup": {}}]})
    h.finish()
    assert not h.call.redirect(100.0, parse_flow(GOODBYE))
    assert "redirect" not in h.kinds()


def test_an_incoming_call_in_its_ivr_is_redirected() -> None:
    h = Harness({"flow": [{"answer": {}}, *GATHER]}, service="incoming")
    assert h.redirect(3.0, [{"pause": {"seconds": 2}}, {"hangup": {}}])
    h.finish()
    assert (h.call.record.status, h.call.record.ended_at) == (Status.IVR_ANSWER, 5.0)
