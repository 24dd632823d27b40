"""Random calls of every service through the engine and the sim: invariants that hold for
every call, whatever the phones and the flow do."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legato.core.catalogue import Service, Status, applies_to
from legato.core.outcomes import Outcome
from legato.scenario.model import Scenario
from legato.scenario.run import run_scenario

NUMBER = "+918047001000"
CALLER = "+919811000001"
AGENTS = ["+919811000101", "+919811000102", "+919811000103"]
CUSTOMERS = ["+919911000001", "+919911000002"]

seconds = st.sampled_from([0, 0.5, 1, 2, 3, 5, 8, 20, 35])


@st.composite
def phone(draw: st.DrawFn, caller: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kind = draw(st.sampled_from(["answer", "answer_after", "busy", "no_answer", "unreachable",
                                 "congestion", "sip_status", "reject_after"]))
    if caller:
        kind = "answer"
    if kind == "answer_after":
        out["answer_after"] = draw(seconds)
    elif kind in ("busy", "no_answer", "unreachable", "congestion"):
        out[kind] = True
    elif kind == "sip_status":
        out["sip_status"] = draw(st.sampled_from([403, 404, 408, 480, 486, 487, 500, 503, 600,
                                                  603, 604, 606]))
        if draw(st.booleans()):
            out["q850"] = draw(st.sampled_from([1, 16, 17, 18, 19, 20, 21, 31, 34, 127]))
    elif kind == "reject_after":
        out["reject_after"] = draw(seconds)
    if draw(st.booleans()):
        out["hangup_after"] = draw(seconds)
    if draw(st.booleans()):
        out["dtmf"] = draw(st.lists(st.sampled_from(["1", "2", "9", "12", "1#", ""]),
                                    max_size=3))
    return out


def steps(depth: int = 0, outbound: bool = False) -> st.SearchStrategy[list[Any]]:
    dial = st.fixed_dictionaries({"dial": st.fixed_dictionaries(
        {"to": st.lists(st.sampled_from(AGENTS), min_size=1, max_size=3, unique=True),
         "strategy": st.sampled_from(["sequential", "parallel"]),
         "ring_timeout": st.sampled_from([1, 5, 15])})})
    simple = [
        dial,
        st.fixed_dictionaries({"play": st.fixed_dictionaries(
            {"text": st.just("hello"), "seconds": seconds})}),
        st.fixed_dictionaries({"pause": st.fixed_dictionaries({"seconds": seconds})}),
        st.just({"hangup": {}}),
    ]
    if not outbound:
        simple.append(st.fixed_dictionaries({"answer": st.fixed_dictionaries(
            {"after": seconds})}))
    step = st.one_of(*simple)
    if depth < 1:
        gather = st.fixed_dictionaries({"gather": st.fixed_dictionaries({
            "prompt": st.fixed_dictionaries({"text": st.just("menu"), "seconds": seconds}),
            "digits": st.sampled_from([1, 2]),
            "timeout": st.sampled_from([0.5, 2, 5]),
            "branches": st.dictionaries(st.sampled_from(["1", "2", "12"]),
                                        steps(depth + 1, outbound), max_size=2),
            "default": steps(depth + 1, outbound),
        })})
        step = st.one_of(step, gather)
    return st.lists(step, max_size=4)


@st.composite
def scenario(draw: st.DrawFn) -> Scenario:
    service = draw(st.sampled_from(list(Service)))
    config: dict[str, Any] = {"ring_timeout": draw(st.sampled_from([2, 10, 30])),
                              "max_duration": draw(st.sampled_from([4, 30, 3600]))}
    if draw(st.booleans()):
        config["lines"] = draw(st.integers(0, 2))
        config["lines_in_use"] = draw(st.integers(0, 2))
    if draw(st.integers(0, 5)) == 0:
        config["blacklist"] = [CALLER]
    if draw(st.integers(0, 5)) == 0:
        config["missed_call"] = True
    if draw(st.integers(0, 3)) == 0:
        config["dnd"] = draw(st.lists(st.sampled_from(CUSTOMERS), unique=True))
        config["dnd_scrub"] = draw(st.booleans())
    data: dict[str, Any] = {"name": "random", "service": service.value, "number": NUMBER,
                            "config": config}
    phones: dict[str, Any] = {a: draw(phone()) for a in AGENTS + CUSTOMERS}
    if service in (Service.INCOMING, Service.MISSED_CALL):
        data["from"] = CALLER
        phones[CALLER] = draw(phone(caller=True))
        if service is Service.INCOMING and draw(st.integers(0, 6)) > 0:
            config["flow"] = draw(steps())
    elif service is Service.CLICK_TO_CALL:
        data["from"] = draw(st.lists(st.sampled_from(AGENTS), min_size=1, max_size=3,
                                     unique=True))
        data["to"] = draw(st.lists(st.sampled_from(CUSTOMERS), min_size=1, max_size=2,
                                   unique=True))
    else:
        data["to"] = draw(st.sampled_from(CUSTOMERS))
        if draw(st.integers(0, 6)) > 0:
            config["flow"] = draw(steps(outbound=True))
    data["phones"] = phones
    return Scenario.model_validate(data)


PARTIES = {"leg1", "leg2", "platform"}
ANSWERING = {Status.ANSWER, Status.IVR_ANSWER}


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_every_call_ends_with_one_coherent_record(s: Scenario) -> None:
    record = run_scenario(s)
    status = record.status
    assert status is not None and applies_to(status, s.service), (status, s.service)
    assert record.disconnected_by in PARTIES
    assert record.ended_at is not None and record.ended_at >= record.t0
    assert (record.answered_at is not None) == (status in ANSWERING), status
    if record.answered_at is not None:
        assert record.t0 <= record.answered_at <= record.ended_at
        assert record.billable_seconds >= 0
    else:
        assert record.billable_seconds == 0
    if s.service is Service.MISSED_CALL or (s.service is Service.INCOMING
                                           and s.config.missed_call):
        assert status in {Status.MISWIG, Status.BLOCKED}
    if status in {Status.BLOCKED, Status.OFF_HOUR, Status.MAX_USE, Status.MISWIG,
                  Status.DND, Status.NOTALLOWED}:
        assert not [leg for leg in record.legs if leg.direction == "outbound"], \
            "nothing is dialled for a pre-dial status"
    for leg in record.legs:
        assert leg.outcome is not None, leg
        assert leg.ended_at is not None and leg.ended_at <= record.ended_at + 1e-9
        if leg.outcome is Outcome.ANSWERED:
            assert leg.answered_at is not None and leg.sip_code == 200
        elif leg.direction == "outbound" and leg.outcome is Outcome.CANCELLED:
            assert leg.sip_code == 487
        if leg.dialed_at is not None and leg.ring_seconds is not None:
            assert leg.ring_seconds >= 0 and leg.talk_seconds >= 0
    answered_agents = [leg for leg in record.legs
                       if leg.leg == 2 and leg.answered_at is not None]
    if s.service is Service.INCOMING and status is Status.ANSWER:
        assert record.picked_by == record.connected_to == answered_agents[0].number
    if s.service is Service.CLICK_TO_CALL:
        legs1 = [leg for leg in record.legs if leg.leg == 1]
        assert sum(1 for leg in legs1 if leg.outcome is Outcome.ANSWERED) <= 1
        if status is Status.ANSWER:
            assert record.connected_to in s.to and record.picked_by in s.from_
