"""The engine as a sans-IO state machine: events in, commands out, time passed in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from legato.core.admission import Policy
from legato.core.catalogue import Service, Status
from legato.core.config import NumberConfig
from legato.core.engine import Call, CallSpec, create_call
from legato.core.events import (
    Answer,
    Bridge,
    Cancel,
    Dial,
    Digits,
    Gather,
    Hangup,
    LegAnswered,
    LegFailed,
    LegHangup,
    LegProgress,
    Play,
    PlayDone,
    Reject,
    Ring,
    StopPlay,
)
from legato.core.outcomes import Outcome

AGENT_A, AGENT_B = "+919811000001", "+919811000002"
CUSTOMER_A, CUSTOMER_B = "+919811000011", "+919811000012"
CALLER, NUMBER = "+919811000099", "+918047001000"


def make_call(service: str, leg1: list[str], leg2: list[str] | None = None,
              **config: Any) -> Call:
    cfg = NumberConfig.model_validate(config)
    spec = CallSpec(id="t", service=Service(service), number=NUMBER, leg1=tuple(leg1),
                    leg2=tuple(leg2 or ()), config=cfg, policy=Policy.from_config(cfg),
                    started_at=datetime(2026, 11, 23, 10, tzinfo=UTC),
                    lines_in_use=cfg.lines_in_use)
    call = create_call(spec, 100.0)
    call.start(100.0)
    return call


def drain(call: Call) -> list[Any]:
    out, call.commands = call.commands, []
    return out


def _dials(commands: list[object]) -> list[Dial]:
    return [c for c in commands if isinstance(c, Dial)]


def test_click_to_call_rings_agents_at_once_and_the_first_answer_wins() -> None:
    call = make_call("click_to_call", [AGENT_A, AGENT_B], [CUSTOMER_A], ring_timeout=20)
    dials = _dials(drain(call))
    assert [d.number for d in dials] == [AGENT_A, AGENT_B]
    assert call.get_timer() == 120.0  # the ring timer runs from the dial
    a, b = dials[0].leg, dials[1].leg
    call.handle(LegProgress(a, 180), 100.5)
    call.handle(LegAnswered(b), 103.0)
    commands = drain(call)
    assert Cancel(a) in commands
    assert [d.number for d in _dials(commands)] == [CUSTOMER_A]
    # the cancelled agent's phone answers anyway: a 200 crossing our CANCEL is hung up
    call.handle(LegAnswered(a), 103.01)
    assert drain(call) == [Hangup(a, 16)]
    assert call.legs[a].rec.outcome is Outcome.CANCELLED
    assert call.record.picked_by == AGENT_B


def test_leg1_hangs_up_while_leg2_rings_is_cancel_and_leg2_is_cancelled() -> None:
    call = make_call("click_to_call", [AGENT_A], [CUSTOMER_A])
    agent = _dials(drain(call))[0].leg
    call.handle(LegAnswered(agent), 101.0)
    customer = _dials(drain(call))[0].leg
    call.handle(LegProgress(customer, 183), 101.2)
    call.handle(LegHangup(agent), 105.0)
    assert drain(call) == [Cancel(customer)]
    assert call.finished and not call.settled  # waiting for the 487 to our CANCEL
    call.handle(LegFailed(customer, 487), 105.02)
    assert call.settled
    rec = call.record
    assert (rec.status, rec.disconnected_by) == (Status.CANCEL, "leg1")
    leg2 = call.legs[customer].rec
    assert (leg2.outcome, leg2.sip_code, leg2.ended_at) == (Outcome.CANCELLED, 487, 105.0)
    assert leg2.pdd_ms == 200.0


def test_ring_timeout_without_any_provisional_is_failed_with_the_code_of_the_cancel() -> None:
    call = make_call("click_to_call", [AGENT_A], [CUSTOMER_A], ring_timeout=10)
    agent = _dials(drain(call))[0].leg
    call.handle_timer(109.99)
    assert drain(call) == []
    call.handle_timer(110.0)
    assert drain(call) == [Cancel(agent)]
    call.handle(LegFailed(agent, 487), 110.1)
    leg = call.legs[agent].rec
    assert (leg.outcome, leg.sip_code) == (Outcome.FAILED, 487)
    assert (call.record.status, call.record.disconnected_by) == (Status.FAILED_LEG1, "platform")


def test_ring_timeout_after_ringing_is_noanswer() -> None:
    call = make_call("click_to_call", [AGENT_A], [CUSTOMER_A], ring_timeout=10)
    agent = _dials(drain(call))[0].leg
    call.handle(LegProgress(agent, 100), 100.1)  # any 1xx counts, not only 180/183
    call.handle_timer(110.0)
    assert call.legs[agent].rec.ringing_at is None
    assert call.record.status is Status.NOANSWER_LEG1


def test_a_cancelled_leg_that_never_answers_the_cancel_settles_after_32_seconds() -> None:
    call = make_call("click_to_call", [AGENT_A], [CUSTOMER_A], ring_timeout=10)
    drain(call)
    call.handle_timer(110.0)
    assert call.finished and not call.settled
    assert call.get_timer() == 142.0
    call.handle_timer(142.0)
    assert call.settled and call.get_timer() is None


def test_reason_header_decides_the_outcome_and_the_sip_code_is_kept() -> None:
    call = make_call("outbound", [CUSTOMER_A])
    leg = _dials(drain(call))[0].leg
    call.handle(LegFailed(leg, 486, reason_cause=34), 101.0)
    rec = call.legs[leg].rec
    assert (rec.outcome, rec.sip_code, rec.q850_cause, rec.q850_derived) == (
        Outcome.CONGESTION, 486, 34, False)
    assert (call.record.status, call.record.disconnected_by) == (Status.CONGESTION, "leg1")


def test_no_response_at_all_is_failed_by_the_platform() -> None:
    call = make_call("outbound", [CUSTOMER_A])
    leg = _dials(drain(call))[0].leg
    call.handle(LegFailed(leg, None), 100.0)
    rec = call.legs[leg].rec
    assert (rec.outcome, rec.sip_code, rec.q850_cause) == (Outcome.FAILED, None, None)
    assert (call.record.status, call.record.disconnected_by) == (Status.FAILED, "platform")


MENU = {
    "flow": [
        {"answer": {"after": 1}},
        {"play": {"prompt": "welcome", "seconds": 4}},
        {"gather": {"prompt": {"text": "press 1", "seconds": 3}, "digits": 2, "timeout": 5,
                    "branches": {"1": [{"dial": {"to": [AGENT_A]}}], "12": [{"hangup": {}}]},
                    "default": [{"hangup": {}}]}},
    ]
}


def _to_gather(call_digits: str | None = None) -> tuple[object, int]:
    call = make_call("incoming", [CALLER], **MENU)
    caller = call.legs[0].id
    assert drain(call) == [Ring(caller)]
    assert call.get_timer() == 101.0
    call.handle_timer(101.0)
    play = drain(call)
    assert play == [Answer(caller), Play(caller, 1, "welcome", None, 4.0)]
    call.handle(Digits(caller, "1"), 102.0)  # pressed during a play: dropped
    call.handle(PlayDone(1), 105.0)
    assert drain(call) == [Gather(caller, 2, 1, None, "press 1", 3.0)]
    return call, caller


def test_barge_in_stops_the_gather_prompt_and_the_digit_counts() -> None:
    call, caller = _to_gather()
    call.handle(Digits(caller, "1"), 106.0)  # during the prompt: barge-in
    assert drain(call) == [StopPlay(2)]
    call.handle(Digits(caller, "#"), 106.5)  # '#' ends the entry early: branch "1"
    dial = _dials(drain(call))
    assert [d.number for d in dial] == [AGENT_A]


def test_gather_timeout_takes_the_digits_so_far() -> None:
    call, caller = _to_gather()
    call.handle(PlayDone(2), 108.0)
    assert call.get_timer() == 113.0  # timeout counts from the end of the prompt
    call.handle(Digits(caller, "1"), 109.0)
    call.handle_timer(113.0)
    assert [d.number for d in _dials(drain(call))] == [AGENT_A]


def test_gather_with_no_digits_takes_default_and_the_ivr_answered() -> None:
    call, _ = _to_gather()
    call.handle(PlayDone(2), 108.0)
    call.handle_timer(113.0)
    assert call.finished
    assert (call.record.status, call.record.disconnected_by) == (Status.IVR_ANSWER, "platform")
    assert call.record.connected_to == "ivr"
    assert call.record.answered_at == 101.0


def test_agent_answer_bridges_and_either_hang_up_ends_the_call() -> None:
    call, caller = _to_gather()
    call.handle(Digits(caller, "1#"), 106.0)
    agent = _dials(drain(call))[0].leg
    call.handle(LegAnswered(agent), 110.0)
    assert drain(call) == [Bridge(caller, agent)]
    call.handle(LegHangup(agent), 130.0)
    assert drain(call) == [Hangup(caller, 16)]
    rec = call.record
    assert (rec.status, rec.disconnected_by, rec.picked_by) == (Status.ANSWER, "leg2", AGENT_A)
    assert rec.billable_seconds == 20 and rec.duration_seconds == 30.0


def test_policy_rejections_carry_a_sip_code_the_callers_network_understands() -> None:
    call = make_call("incoming", [CALLER], blacklist=[CALLER])
    commands = drain(call)
    assert commands == [Ring(0), Reject(0, 603, 21)]
    assert call.record.admission is not None
    assert call.record.admission.rule == "blacklist"
    call = make_call("incoming", [CALLER], lines=2, lines_in_use=2)
    assert drain(call)[-1] == Reject(0, 486, 17)
    assert call.record.status is Status.MAX_USE


def test_missed_call_number_rings_then_rejects() -> None:
    call = make_call("incoming", [CALLER], missed_call=True, missed_call_ring=3)
    assert drain(call) == [Ring(0)]
    call.handle_timer(103.0)
    assert drain(call) == [Reject(0, 603, 21)]
    assert (call.record.status, call.record.disconnected_by) == (Status.MISWIG, "platform")


def test_parallel_hunt_precedence_and_last_ended_attempt_decides() -> None:
    flow = [{"dial": {"to": [AGENT_A, AGENT_B], "strategy": "parallel", "ring_timeout": 15}}]
    call = make_call("incoming", [CALLER], flow=flow)
    a, b = (d.leg for d in _dials(drain(call)))
    call.handle(LegFailed(a, 486), 101.0)
    call.handle(LegProgress(b), 101.0)
    call.handle_timer(115.0)  # B rang out: NOANSWER; BUSY wins the precedence
    rec = call.record
    assert (rec.status, rec.disconnected_by) == (Status.BUSY, "platform")
    # the caller was never answered: refused with what the hunt ended in
    assert any(isinstance(c, Reject) and c.sip_code == 486 for c in drain(call))


def test_terminate_ends_a_ringing_call_as_the_platform_with_the_reason() -> None:
    call = make_call("click_to_call", [AGENT_A], [CUSTOMER_A])
    agent = _dials(drain(call))[0].leg
    call.handle(LegProgress(agent), 100.2)
    call.terminate(105.0, "shutdown")
    assert drain(call) == [Cancel(agent)]
    rec = call.record
    assert (rec.status, rec.disconnected_by) == (Status.NOANSWER_LEG1, "platform")
    assert ("terminated", {"reason": "shutdown"}) in [(e[1], e[3]) for e in rec.timeline]
    call.terminate(106.0, "again")  # a finished call stays as it ended
    assert rec.ended_at == 105.0
