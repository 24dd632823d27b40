"""The user agent end to end between two real `UserAgent`s on a virtual clock: calls,
CANCEL/487, 200 crossing CANCEL, BYE both ways, retransmissions under loss, re-INVITE and
UPDATE pass-through, OPTIONS, Reason headers, malformed input, and timeouts."""

from __future__ import annotations

import pytest

from legato.sip import LocalProtocolError, Reason, Request, parse_message
from legato.sip import events as ev
from legato.sip.transaction import TimerConfig
from legato.sip.ua import UAConfig, UserAgent

from .net import Net

A = ("127.0.0.1", 5060)
B = ("127.0.0.1", 5070)
SDP_OFFER = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"
SDP_ANSWER = b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\n"


@pytest.fixture
def net() -> Net:
    return Net(UserAgent(UAConfig(A)), UserAgent(UAConfig(B)))


def ua(net: Net, addr: tuple[str, int]) -> UserAgent:
    return net.agents[addr]


def call(net: Net, **kwargs: object) -> tuple[int, int]:
    """A calls B; returns (A's leg, B's leg) with B's IncomingCall taken."""
    leg = ua(net, A).invite(
        "sip:bob@127.0.0.1:5070",
        from_="Alice <sip:alice@127.0.0.1>",
        now=net.now,
        body=SDP_OFFER,
        **kwargs,  # type: ignore[arg-type]
    )
    net.deliver()
    (incoming,) = net.take(B)
    assert isinstance(incoming, ev.IncomingCall)
    assert incoming.request.body == SDP_OFFER
    return leg, incoming.leg


def answer(net: Net, b_leg: int) -> None:
    ua(net, B).respond(b_leg, 180, net.now)
    net.advance(0.05)
    ua(net, B).respond(b_leg, 200, net.now, body=SDP_ANSWER)
    net.advance(0.05)


def established(net: Net) -> tuple[int, int]:
    """A call from A to B, answered and ACKed, its events taken."""
    a_leg, b_leg = call(net)
    answer(net, b_leg)
    net.take(A), net.take(B)
    return a_leg, b_leg


def reinvite(net: Net, a_leg: int) -> ev.DialogRequest:
    """A re-INVITEs (hold); B's DialogRequest for it."""
    ua(net, A).request(a_leg, "INVITE", net.now, body=b"v=0 hold\r\n")
    net.advance(0.05)
    (request,) = net.take(B)
    assert isinstance(request, ev.DialogRequest) and request.request.body == b"v=0 hold\r\n"
    return request


def test_basic_call_answer_and_bye_from_caller(net: Net) -> None:
    a_leg, b_leg = call(net)
    answer(net, b_leg)
    progress, answered = net.take(A)
    assert isinstance(progress, ev.Progress) and progress.response.status == 180
    assert isinstance(answered, ev.Answered) and answered.response.body == SDP_ANSWER
    (confirmed,) = net.take(B)
    assert isinstance(confirmed, ev.Confirmed)
    assert ua(net, A).leg_state(a_leg) == ua(net, B).leg_state(b_leg) == "confirmed"
    ua(net, A).bye(a_leg, net.now, Reason.q850(16))
    net.advance(0.05)
    (ended_b,) = net.take(B)
    assert isinstance(ended_b, ev.Ended) and ended_b.by == "remote"
    assert ended_b.reason == Reason("Q.850", 16)
    (ended_a,) = net.take(A)
    assert ended_a == ev.Ended(a_leg, "local", Reason("Q.850", 16), 200)
    assert net.lines() == [
        "INVITE sip:bob@127.0.0.1:5070 SIP/2.0",
        "SIP/2.0 180 Ringing",
        "SIP/2.0 200 OK",
        "ACK sip:legato@127.0.0.1:5070 SIP/2.0",
        "BYE sip:legato@127.0.0.1:5070 SIP/2.0",
        "SIP/2.0 200 OK",
    ]
    net.advance(40)
    for agent in net.agents.values():
        assert agent.active_legs == 0 and agent.active_transactions == 0
        assert agent.get_timer() is None


def test_bye_from_callee(net: Net) -> None:
    a_leg, b_leg = call(net)
    answer(net, b_leg)
    net.take(A), net.take(B)
    ua(net, B).bye(b_leg, net.now)
    net.advance(0.05)
    assert net.take(A) == [ev.Ended(a_leg, "remote", None)]
    assert net.take(B) == [ev.Ended(b_leg, "local", None, 200)]


def test_100_trying_is_sent_after_200_ms_when_not_answered(net: Net) -> None:
    call(net)
    net.advance(0.19)
    assert "SIP/2.0 100 Trying" not in net.lines()
    net.advance(0.02)
    assert net.lines()[-1] == "SIP/2.0 100 Trying"
    assert net.take(A) == []  # a 100 is not an event


def test_rejection_with_reason_header_and_ack_by_transaction(net: Net) -> None:
    a_leg, b_leg = call(net)
    ua(net, B).respond(b_leg, 486, net.now, reason=Reason.q850(17, "User busy"))
    net.advance(0.1)
    (failed,) = net.take(A)
    assert isinstance(failed, ev.Failed)
    assert (failed.status, failed.reason_phrase) == (486, "Busy Here")
    assert failed.reason == Reason("Q.850", 17, "User busy")
    assert net.lines()[-1] == "ACK sip:bob@127.0.0.1:5070 SIP/2.0"
    assert ua(net, A).leg_state(a_leg) == "terminated"
    net.advance(40)
    assert ua(net, B).active_transactions == 0 and ua(net, A).active_transactions == 0


def test_cancel_gives_487_and_200_and_events_on_both_sides(net: Net) -> None:
    a_leg, b_leg = call(net)
    ua(net, B).respond(b_leg, 180, net.now)
    net.advance(0.1)
    net.take(A)
    ua(net, A).cancel(a_leg, net.now, Reason.q850(16))
    net.advance(0.1)
    (cancelled,) = net.take(B)
    assert isinstance(cancelled, ev.Cancelled) and cancelled.reason == Reason("Q.850", 16)
    (failed,) = net.take(A)
    assert isinstance(failed, ev.Failed) and failed.status == 487
    lines = net.lines()
    assert lines[-4:] == [
        "CANCEL sip:bob@127.0.0.1:5070 SIP/2.0",
        "SIP/2.0 200 OK",
        "SIP/2.0 487 Request Terminated",
        "ACK sip:bob@127.0.0.1:5070 SIP/2.0",
    ]
    assert ua(net, B).respond(b_leg, 200, net.now) is False  # the race is harmless


def test_cancel_before_any_provisional_waits_for_one(net: Net) -> None:
    a_leg, _b_leg = call(net)
    ua(net, A).cancel(a_leg, net.now)
    net.deliver()
    assert not any(line.startswith("CANCEL") for line in net.lines())
    net.advance(0.3)  # B's 100 Trying arrives, then the CANCEL goes
    assert any(line.startswith("CANCEL") for line in net.lines())
    assert isinstance(net.take(B)[0], ev.Cancelled)
    assert isinstance(net.take(A)[0], ev.Failed)


def test_200_crossing_cancel_is_acked_then_byed(net: Net) -> None:
    a_leg, b_leg = call(net)
    ua(net, B).respond(b_leg, 180, net.now)
    net.advance(0.1)
    net.take(A)
    # B answers and A cancels at the same instant: the 200 and the CANCEL cross.
    ua(net, B).respond(b_leg, 200, net.now, body=SDP_ANSWER)
    ua(net, A).cancel(a_leg, net.now, Reason.q850(16))
    net.advance(0.1)
    a_events = net.take(A)
    assert [type(e) for e in a_events] == [ev.Answered, ev.Ended]
    assert a_events[1] == ev.Ended(a_leg, "local", Reason("Q.850", 16), 200)
    b_events = net.take(B)
    assert [type(e) for e in b_events] == [ev.Confirmed, ev.Ended]
    lines = net.lines()
    assert lines.index("ACK sip:legato@127.0.0.1:5070 SIP/2.0") < lines.index(
        "BYE sip:legato@127.0.0.1:5070 SIP/2.0"
    )


def test_hangup_does_the_right_thing_in_every_state(net: Net) -> None:
    a_leg, b_leg = call(net)
    ua(net, B).hangup(b_leg, net.now, Reason.q850(21), status=603)
    net.advance(0.1)
    (failed,) = net.take(A)
    assert isinstance(failed, ev.Failed) and failed.status == 603
    assert failed.reason == Reason("Q.850", 21)
    a_leg, b_leg = call(net)
    answer(net, b_leg)
    net.take(A), net.take(B)
    ua(net, A).hangup(a_leg, net.now)
    net.advance(0.1)
    assert isinstance(net.take(B)[0], ev.Ended)
    ua(net, A).hangup(a_leg, net.now)  # already over: no-op


def test_lost_invite_is_retransmitted(net: Net) -> None:
    dropped: list[bytes] = []

    def drop_first_invite(src: object, dst: object, data: bytes) -> bool:
        if data.startswith(b"INVITE") and not dropped:
            dropped.append(data)
            return True
        return False

    net.drop = drop_first_invite
    ua(net, A).invite("sip:bob@127.0.0.1:5070", from_="sip:alice@127.0.0.1", now=0.0)
    net.deliver()
    assert net.take(B) == []
    net.advance(0.5)  # Timer A
    assert isinstance(net.take(B)[0], ev.IncomingCall)


def test_lost_200_is_retransmitted_until_ack_and_lost_ack_is_resent(net: Net) -> None:
    _a_leg, b_leg = call(net)
    lost = {"200": 0, "ACK": 0}

    def lossy(src: object, dst: object, data: bytes) -> bool:
        if data.startswith(b"SIP/2.0 200") and b"INVITE" in data and lost["200"] < 1:
            lost["200"] += 1
            return True
        if data.startswith(b"ACK") and lost["ACK"] < 1:
            lost["ACK"] += 1
            return True
        return False

    net.drop = lossy
    ua(net, B).respond(b_leg, 200, net.now, body=SDP_ANSWER)
    net.deliver()
    assert net.take(A) == []
    net.advance(0.5)  # 2xx retransmitted at T1: A answers, its ACK is lost
    assert [type(e) for e in net.take(A)] == [ev.Answered]
    assert net.take(B) == []
    net.advance(1.0)  # next 2xx retransmission: A re-sends the ACK
    assert [type(e) for e in net.take(B)] == [ev.Confirmed]
    assert [type(e) for e in net.take(A)] == []  # retransmissions are not events
    count = len(net.lines())
    net.advance(10)
    assert len(net.lines()) == count  # nothing more once the ACK arrived


def test_no_ack_ends_the_call_with_bye(net: Net) -> None:
    _a_leg, b_leg = call(net)
    net.drop = lambda src, dst, data: data.startswith(b"ACK")
    ua(net, B).respond(b_leg, 200, net.now)
    net.advance(33)
    events = net.take(B)
    reason = Reason("SIP", 408, "ACK not received")
    # the driver learns at once that nobody is there (it did not ask for this BYE) ...
    assert [e for e in events if isinstance(e, ev.Lost)] == [
        ev.Lost(b_leg, reason)]
    # ... and then that the BYE completed
    ended = [e for e in events if isinstance(e, ev.Ended)]
    assert ended and ended[0].by == "local" and ended[0].reason == reason
    assert events.index(ended[0]) > events.index(ev.Lost(b_leg, reason))
    retrans = [line for line in net.lines(A) if line == "SIP/2.0 200 OK"]
    assert 8 <= len(retrans) <= 12  # 0, .5, 1.5, 3.5, 7.5, 11.5 ... capped at T2


def test_no_response_at_all_fails_with_408_after_timer_b(net: Net) -> None:
    net.drop = lambda src, dst, data: True
    a_leg = ua(net, A).invite("sip:bob@127.0.0.1:5070", from_="sip:a@127.0.0.1", now=0.0)
    net.advance(31.9)
    assert net.take(A) == []
    assert len([x for x in net.lines() if x.startswith("INVITE")]) == 7
    net.advance(0.2)
    assert net.take(A) == [ev.Failed(a_leg, 408, "Request Timeout", None, None)]


def test_re_invite_and_update_are_passed_through(net: Net) -> None:
    a_leg, b_leg = established(net)
    hold = reinvite(net, a_leg)
    ua(net, B).respond_request(hold.request_id, 200, net.now, body=b"v=0 held\r\n")
    net.advance(0.05)
    (resp,) = net.take(A)
    assert isinstance(resp, ev.DialogResponse) and resp.status == 200 and resp.method == "INVITE"
    assert isinstance(net.take(B)[0], ev.Confirmed)  # the ACK of the re-INVITE
    ua(net, B).request(b_leg, "UPDATE", net.now, body=b"v=0 upd\r\n")
    net.advance(0.05)
    (update,) = net.take(A)
    assert isinstance(update, ev.DialogRequest) and update.request.method == "UPDATE"
    ua(net, A).respond_request(update.request_id, 200, net.now)
    net.advance(0.05)
    assert [e.status for e in net.take(B) if isinstance(e, ev.DialogResponse)] == [200]
    with pytest.raises(LocalProtocolError):
        ua(net, B).respond_request(update.request_id, 200, net.now)


@pytest.mark.parametrize("status", [481, 408])
def test_481_or_408_to_a_request_in_the_dialog_ends_the_session(net: Net, status: int) -> None:
    """§12.2.1.2 / §14.1: the far end no longer knows the dialog (481) or did not answer
    (408): the UA that sent the re-INVITE ends the session with BYE and tells its driver
    (`Lost`), which did not ask for that BYE."""
    a_leg, b_leg = established(net)
    ua(net, B).respond_request(reinvite(net, a_leg).request_id, status, net.now)
    net.advance(0.5)
    events = net.take(A)
    reason = Reason("SIP", status, "Call/Transaction Does Not Exist" if status == 481
                    else "Request Timeout")
    assert [type(e) for e in events] == [ev.DialogResponse, ev.Lost, ev.Ended]
    assert isinstance(events[0], ev.DialogResponse) and events[0].status == status
    assert events[1:] == [ev.Lost(a_leg, reason), ev.Ended(a_leg, "local", reason, 200)]
    assert ev.Ended(b_leg, "remote", reason) in net.take(B)  # the BYE says why


def test_no_answer_at_all_to_a_request_in_the_dialog_ends_the_session(net: Net) -> None:
    a_leg, _b_leg = established(net)
    net.drop = lambda src, dst, data: data.startswith(b"INFO")  # B never sees it
    ua(net, A).request(a_leg, "INFO", net.now, body=b"Signal=1\r\n",
                       content_type="application/dtmf-relay")
    net.advance(40)  # Timer F: 64*T1
    events = net.take(A)
    assert [type(e) for e in events] == [ev.DialogResponse, ev.Lost, ev.Ended]
    lost = events[1]
    assert isinstance(lost, ev.Lost) and (lost.leg, lost.reason.cause) == (a_leg, 408)
    assert [type(e) for e in net.take(B)] == [ev.Ended]  # the BYE did get through


def test_options_answered_in_and_out_of_dialog(net: Net) -> None:
    from legato.sip import Request as Req

    options = Req(
        "OPTIONS",
        "sip:127.0.0.1:5070",
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKopt1"),
            ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>"),
            ("Call-ID", "opt"),
            ("CSeq", "1 OPTIONS"),
            ("Max-Forwards", "70"),
        ],
    )
    ua(net, B).receive_datagram(options.to_bytes(), A, 0.0)
    ((data, addr),) = ua(net, B).datagrams_to_send(0.0)
    response = parse_message(data)
    assert addr == A and response.status == 200  # type: ignore[union-attr]
    assert "INVITE" in (response.get("Allow") or "")


def test_requests_outside_any_dialog(net: Net) -> None:
    bye = Request(
        "BYE",
        "sip:127.0.0.1:5070",
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbye1"),
            ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>;tag=nope"),
            ("Call-ID", "x"),
            ("CSeq", "1 BYE"),
        ],
    )
    ua(net, B).receive_datagram(bye.to_bytes(), A, 0.0)
    ((data, _),) = ua(net, B).datagrams_to_send(0.0)
    assert parse_message(data).status == 481  # type: ignore[union-attr]
    message = Request(
        "MESSAGE",
        "sip:127.0.0.1:5070",
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKm1"),
            ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>"),
            ("Call-ID", "y"),
            ("CSeq", "1 MESSAGE"),
        ],
    )
    ua(net, B).receive_datagram(message.to_bytes(), A, 0.0)
    ((data, _),) = ua(net, B).datagrams_to_send(0.0)
    resp = parse_message(data)
    assert resp.status == 405 and resp.get("Allow")  # type: ignore[union-attr]


def test_malformed_request_gets_400_with_the_reason_and_calls_go_on(net: Net) -> None:
    _a_leg, b_leg = call(net)
    bad = (
        b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbad\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: bad\r\nCSeq: 1 BYE\r\n\r\n"
    )
    ua(net, B).receive_datagram(bad, A, net.now)
    ua(net, B).receive_datagram(b"\x00\xffnot sip at all", A, net.now)
    out = ua(net, B).datagrams_to_send(net.now)
    assert len(out) == 1
    resp = parse_message(out[0][0])
    assert resp.status == 400  # type: ignore[union-attr]
    assert "does not match" in resp.reason  # type: ignore[union-attr]
    bad_events = [e for e in net.take(B) if isinstance(e, ev.BadMessage)]
    assert len(bad_events) == 0  # taken directly from the agent below
    kinds = []
    while (event := ua(net, B).next_event()) is not None:
        kinds.append(type(event))
    assert kinds == [ev.BadMessage, ev.BadMessage]
    answer(net, b_leg)
    assert [type(e) for e in net.take(A)] == [ev.Progress, ev.Answered]


def test_require_unknown_extension_gets_420_and_zero_max_forwards_483(net: Net) -> None:
    for header, status in ((("Require", "100rel"), 420), (("Max-Forwards", "0"), 483)):
        ua(net, A).invite(
            "sip:bob@127.0.0.1:5070", from_="sip:a@127.0.0.1", now=net.now, headers=[header]
        )
        net.advance(0.1)
        failed = [e for e in net.take(A) if isinstance(e, ev.Failed)]
        assert failed[0].status == status
        assert net.take(B) == []


def test_received_and_rport_stamped_and_answer_goes_to_source() -> None:
    b = UserAgent(UAConfig(B))
    invite = Request(
        "INVITE",
        "sip:b@127.0.0.1:5070",
        [
            ("Via", "SIP/2.0/UDP 10.1.1.1:5999;branch=z9hG4bKnat;rport"),
            ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>"),
            ("Call-ID", "nat"),
            ("CSeq", "1 INVITE"),
            ("Contact", "<sip:a@10.1.1.1:5999>"),
        ],
    )
    b.receive_datagram(invite.to_bytes(), ("127.0.0.9", 40000), 0.0)
    (incoming,) = [b.next_event()]
    assert isinstance(incoming, ev.IncomingCall)
    b.respond(incoming.leg, 486, 0.0)
    ((data, addr),) = b.datagrams_to_send(0.0)
    assert addr == ("127.0.0.9", 40000)
    via = parse_message(data).top_via
    assert via.received == "127.0.0.9" and via.rport == 40000


def test_defer_ack_lets_the_driver_answer_a_delayed_offer(net: Net) -> None:
    a = ua(net, A)
    a_leg = a.invite("sip:bob@127.0.0.1:5070", from_="sip:a@127.0.0.1", now=0.0, defer_ack=True)
    net.deliver()
    (incoming,) = net.take(B)
    assert incoming.request.body == b""  # type: ignore[union-attr]
    ua(net, B).respond(incoming.leg, 200, net.now, body=SDP_OFFER)  # type: ignore[union-attr]
    net.advance(0.05)
    (answered,) = net.take(A)
    assert isinstance(answered, ev.Answered)
    assert not any(line.startswith("ACK") for line in net.lines())
    a.ack(a_leg, net.now, body=SDP_ANSWER)
    net.advance(0.05)
    (confirmed,) = net.take(B)
    assert isinstance(confirmed, ev.Confirmed) and confirmed.request.body == SDP_ANSWER
    with pytest.raises(LocalProtocolError):
        a.ack(a_leg, net.now)


def test_local_misuse_raises_local_protocol_error(net: Net) -> None:
    a_leg, b_leg = call(net)
    with pytest.raises(LocalProtocolError, match="confirmed"):
        ua(net, A).bye(a_leg, net.now)
    with pytest.raises(LocalProtocolError, match="incoming"):
        ua(net, A).respond(a_leg, 200, net.now)
    with pytest.raises(LocalProtocolError, match="calls we placed"):
        ua(net, B).cancel(b_leg, net.now)
    with pytest.raises(LocalProtocolError, match="not an IP"):
        ua(net, A).invite("sip:bob@example.com", from_="sip:a@127.0.0.1", now=0.0)
    with pytest.raises(LocalProtocolError, match="to"):
        ua(net, A).invite("not a uri", from_="sip:a@127.0.0.1", now=0.0)
    with pytest.raises(LocalProtocolError):
        ua(net, B).respond(b_leg, 700, net.now)


def test_timer_values_come_from_config() -> None:
    fast = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
    net = Net(UserAgent(UAConfig(A, timers=fast)), UserAgent(UAConfig(B, timers=fast)))
    net.drop = lambda src, dst, data: True
    a_leg = ua(net, A).invite("sip:bob@127.0.0.1:5070", from_="sip:a@127.0.0.1", now=0.0)
    net.advance(3.3)
    assert net.take(A) == [ev.Failed(a_leg, 408, "Request Timeout", None, None)]


def test_invite_without_contact_gets_400_through_its_transaction() -> None:
    b = UserAgent(UAConfig(B))
    invite = Request(
        "INVITE",
        "sip:b@127.0.0.1:5070",
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnocontact"),
            ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>"),
            ("Call-ID", "nc"),
            ("CSeq", "1 INVITE"),
        ],
    )
    b.receive_datagram(invite.to_bytes(), A, 0.0)
    ((data, _),) = b.datagrams_to_send(0.0)
    response = parse_message(data)
    assert response.status == 400 and "Contact" in response.reason  # type: ignore[union-attr]
    b.receive_datagram(invite.to_bytes(), A, 0.3)  # a retransmission gets the same 400
    assert len(b.datagrams_to_send(0.3)) == 1
    assert isinstance(b.next_event(), ev.BadMessage)
    while (when := b.get_timer()) is not None:
        b.handle_timer(when)
        b.datagrams_to_send(when)
    assert b.active_transactions == 0 and b.active_legs == 0


def test_finished_calls_leave_no_reference_cycles_and_no_state() -> None:
    """Python's cyclic GC causes SIP latency tails: a call must be freed by reference
    counting alone, and nothing may stay behind once its timers ran out."""
    import gc

    net = Net(UserAgent(UAConfig(A)), UserAgent(UAConfig(B)))
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            a_leg, b_leg = call(net)
            answer(net, b_leg)
            ua(net, A).bye(a_leg, net.now)
            net.advance(0.05)
            net.take(A), net.take(B)
            a_leg, b_leg = call(net)
            ua(net, A).cancel(a_leg, net.now)
            net.advance(0.3)
            net.take(A), net.take(B)
        net.events = {addr: [] for addr in net.agents}
        net.wire.clear()
        net.advance(100)
        assert gc.collect() == 0
    finally:
        gc.enable()
    for agent in net.agents.values():
        assert agent.active_legs == agent.active_transactions == 0
        assert agent.get_timer() is None and agent._heap == []


def test_memory_per_held_call_is_bounded() -> None:
    """A confirmed call keeps only its dialog and a slim INVITE (goal: 10,000 concurrent
    bridged calls at < 10 KB each for the whole B2BUA; the SIP layer's share is measured)."""
    import gc
    import tracemalloc

    net = Net(UserAgent(UAConfig(A)), UserAgent(UAConfig(B)))
    calls = 500
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(calls):
            ua(net, A).invite(
                "sip:bob@127.0.0.1:5070", from_="sip:alice@127.0.0.1", now=net.now, body=SDP_OFFER
            )
        net.deliver()
        for event in net.take(B):
            assert isinstance(event, ev.IncomingCall)
            ua(net, B).respond(event.leg, 200, net.now, body=SDP_ANSWER)
        net.advance(40)  # every transaction and retransmission timer has run out
        net.events = {addr: [] for addr in net.agents}
        net.wire.clear()
        gc.collect()
        per_call = (tracemalloc.get_traced_memory()[0] - before) / calls
    finally:
        tracemalloc.stop()
    assert ua(net, A).active_legs == ua(net, B).active_legs == calls
    assert per_call < 6000, f"{per_call:.0f} bytes per call (both legs)"


def ended_by_bye(net: Net) -> bytes:
    """An answered call that A hangs up: B has ended it; returns the BYE A sent (a copy of
    every BYE is kept, so a test can replay it late)."""
    a_leg, b_leg = call(net)
    answer(net, b_leg)
    net.take(A), net.take(B)
    captured: list[bytes] = []

    def keep_byes(src: object, dst: object, data: bytes) -> bool:
        if data.startswith(b"BYE"):
            captured.append(data)
        return False

    net.drop = keep_byes
    ua(net, A).bye(a_leg, net.now)
    net.advance(0.1)
    assert [type(e) for e in net.take(B)] == [ev.Ended]
    return captured[0]


def test_late_bye_after_the_call_ended_gets_200_then_481_after_64_t1(net: Net) -> None:
    bye = ended_by_bye(net)
    late = bye.replace(b"z9hG4bK", b"z9hG4bKlate")  # a new transaction, same dialog
    ua(net, B).receive_datagram(late, A, net.now)
    ((data, _),) = ua(net, B).datagrams_to_send(net.now)
    assert parse_message(data).status == 200  # type: ignore[union-attr]
    net.advance(33)
    ua(net, B).receive_datagram(late.replace(b"z9hG4bKlate", b"z9hG4bKlater"), A, net.now)
    ((data, _),) = ua(net, B).datagrams_to_send(net.now)
    assert parse_message(data).status == 481  # type: ignore[union-attr]


def test_bye_retransmitted_on_default_timers_gets_200_when_ours_are_fast() -> None:
    """Our T1 is 100 ms (Timer J 6.4 s), the caller's the default 500 ms: its BYE may be
    retransmitted 7.5 s after the first copy (0.5 + 1 + 2 + 4 s, our 200s lost). That copy
    outlives our BYE transaction and must still get 200, not 481 (seen with SIPp -lost)."""
    fast = UAConfig(B, timers=TimerConfig(t1=0.1, t2=0.8, t4=1.0))
    net = Net(UserAgent(UAConfig(A)), UserAgent(fast))
    bye = ended_by_bye(net)
    for wait, status in ((7.4, 200), (25.0, 481)):  # 7.5 s, then past 32 s (64 x 500 ms)
        net.advance(wait)
        ua(net, B).receive_datagram(bye, A, net.now)  # the same transaction, late
        ((data, _),) = ua(net, B).datagrams_to_send(net.now)
        assert parse_message(data).status == status  # type: ignore[union-attr]


def _invite(uri: str = "sip:b@127.0.0.1:5070", branch: str = "z9hG4bKe1") -> Request:
    return Request(
        "INVITE",
        uri,
        [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch={branch}"),
            ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>"),
            ("Call-ID", f"c-{branch}"),
            ("CSeq", "1 INVITE"),
            ("Contact", "<sip:a@127.0.0.1:5060>"),
        ],
    )


def test_unknown_request_uri_scheme_gets_416() -> None:
    b = UserAgent(UAConfig(B))
    b.receive_datagram(_invite("http://www.example.com/").to_bytes(), A, 0.0)
    ((data, _),) = b.datagrams_to_send(0.0)
    assert parse_message(data).status == 416  # type: ignore[union-attr]
    assert isinstance(b.next_event(), ev.BadMessage)


def test_cancel_after_the_final_response_changes_nothing() -> None:
    b = UserAgent(UAConfig(B))
    invite = _invite()
    b.receive_datagram(invite.to_bytes(), A, 0.0)
    incoming = b.next_event()
    assert isinstance(incoming, ev.IncomingCall)
    b.respond(incoming.leg, 200, 0.0)
    b.datagrams_to_send(0.0)
    cancel = Request(
        "CANCEL",
        invite.uri,
        [(n, v) for n, v in invite.headers if n in ("Via", "From", "To", "Call-ID")]
        + [("CSeq", "1 CANCEL")],
    )
    b.receive_datagram(cancel.to_bytes(), A, 0.1)
    ((data, _),) = b.datagrams_to_send(0.1)
    assert parse_message(data).status == 200  # type: ignore[union-attr]
    assert b.next_event() is None and b.leg_state(incoming.leg) == "confirmed"
    stray = Request(
        "CANCEL",
        invite.uri,
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnomatch"),
            ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>"),
            ("Call-ID", "zz"),
            ("CSeq", "1 CANCEL"),
        ],
    )
    b.receive_datagram(stray.to_bytes(), A, 0.2)
    ((data, _),) = b.datagrams_to_send(0.2)
    assert parse_message(data).status == 481  # type: ignore[union-attr]


def test_stream_input_is_framed_and_garbage_closes_the_connection() -> None:
    tcp = UserAgent(UAConfig(B, transport="TCP"))
    data = _invite().to_bytes() + _invite(branch="z9hG4bKe2").to_bytes()
    for i in range(0, len(data), 13):
        assert tcp.receive_stream_data(data[i : i + 13], A, 0.0) is True
    events = [tcp.next_event(), tcp.next_event()]
    assert all(isinstance(e, ev.IncomingCall) for e in events)
    assert tcp.datagrams_to_send(0.0) == []  # 100 Trying waits for its 200 ms
    assert tcp.receive_stream_data(b"NOT SIP\r\n\r\n", ("127.0.0.1", 40000), 0.0) is False
    assert isinstance(tcp.next_event(), ev.BadMessage)
    # Reliable transport: no retransmission timers, only the 100 Trying delay and Timer B/H.
    leg = events[0].leg  # type: ignore[union-attr]
    tcp.respond(leg, 486, 0.1)
    ((response, addr),) = tcp.datagrams_to_send(0.1)
    assert addr == A and parse_message(response).status == 486  # type: ignore[union-attr]
    tcp.handle_timer(0.6)
    statuses = [parse_message(d).status for d, _ in tcp.datagrams_to_send(0.6)]  # type: ignore[union-attr]
    assert statuses == [100]  # the other INVITE's 100 Trying; no Timer G re-send of the 486


def test_bye_on_a_deferred_ack_leg_acks_first(net: Net) -> None:
    a = ua(net, A)
    a_leg = a.invite("sip:bob@127.0.0.1:5070", from_="sip:a@127.0.0.1", now=0.0, defer_ack=True)
    net.deliver()
    (incoming,) = net.take(B)
    ua(net, B).respond(incoming.leg, 200, net.now, body=SDP_OFFER)  # type: ignore[union-attr]
    net.advance(0.05)
    a.bye(a_leg, net.now)
    net.advance(0.05)
    assert net.lines()[-3:] == [
        "ACK sip:legato@127.0.0.1:5070 SIP/2.0",
        "BYE sip:legato@127.0.0.1:5070 SIP/2.0",
        "SIP/2.0 200 OK",
    ]
    assert [type(e) for e in net.take(B)] == [ev.Confirmed, ev.Ended]


def test_ipv6_call() -> None:
    a6, b6 = ("::1", 5060), ("::1", 5070)
    net = Net(UserAgent(UAConfig(a6)), UserAgent(UAConfig(b6)))
    leg = net.agents[a6].invite("sip:bob@[::1]:5070", from_="sip:a@[::1]", now=0.0)
    net.deliver()
    (incoming,) = net.take(b6)
    assert isinstance(incoming, ev.IncomingCall)
    assert incoming.request.top_via.received is None  # same host: nothing to stamp
    net.agents[b6].respond(incoming.leg, 200, net.now)
    net.advance(0.05)
    net.agents[a6].bye(leg, net.now)
    net.advance(0.05)
    assert net.lines() == [
        "INVITE sip:bob@[::1]:5070 SIP/2.0",
        "SIP/2.0 200 OK",
        "ACK sip:legato@[::1]:5070 SIP/2.0",
        "BYE sip:legato@[::1]:5070 SIP/2.0",
        "SIP/2.0 200 OK",
    ]
