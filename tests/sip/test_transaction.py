"""RFC 3261 §17 transaction timers, on a fake clock (`now` passed in)."""

from __future__ import annotations

import pytest

from legato.sip import Request, make_response, parse_message
from legato.sip.transaction import (
    Addr,
    ClientTransaction,
    ServerTransaction,
    State,
    TimerConfig,
    build_ack_for_non_2xx,
)

PEER: Addr = ("192.0.2.7", 5060)
CFG = TimerConfig()


def request(method: str = "INVITE") -> Request:
    req = Request(
        method,
        "sip:bob@192.0.2.7",
        [
            ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtx1"),
            ("Max-Forwards", "70"),
            ("From", "<sip:alice@192.0.2.1>;tag=a1"),
            ("To", "<sip:bob@192.0.2.7>"),
            ("Call-ID", "c1"),
            ("CSeq", f"5 {method}"),
            ("Route", "<sip:proxy.example.com;lr>"),
        ],
    )
    return req


def run(tx: ClientTransaction | ServerTransaction, until: float) -> list[float]:
    """Fire timers up to `until`; return the times at which something was sent."""
    sent_at: list[float] = []
    while tx.deadline is not None and tx.deadline <= until:
        now = tx.deadline
        before = len(tx.out)
        tx.on_timer(now)
        if len(tx.out) > before:
            sent_at.append(now)
    return sent_at


def test_invite_client_timer_a_doubles_and_b_times_out() -> None:
    out: list[tuple[bytes, Addr]] = []
    tx = ClientTransaction(request(), PEER, out, CFG, False, now=0.0)
    assert len(out) == 1 and tx.state is State.CALLING
    assert run(tx, 31.9) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert tx.deadline == 32.0
    assert tx.on_timer(32.0) is True and tx.terminated


def test_invite_client_acks_non_2xx_and_absorbs_retransmissions() -> None:
    out: list[tuple[bytes, Addr]] = []
    req = request()
    tx = ClientTransaction(req, PEER, out, CFG, False, now=0.0)
    assert tx.receive_response(make_response(req, 180, to_tag="b1"), 0.1) is True
    assert tx.state is State.PROCEEDING and tx.deadline is None  # no A, no B in Proceeding
    busy = make_response(req, 486, to_tag="b1")
    assert tx.receive_response(busy, 1.0) is True
    assert tx.state is State.COMPLETED and len(out) == 2
    ack = parse_message(out[-1][0])
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.uri == req.uri and ack.cseq.seq == 5 and ack.cseq.method == "ACK"
    assert ack.to.tag == "b1" and ack.top_via.branch == "z9hG4bKtx1"
    assert ack.get("Route") == "<sip:proxy.example.com;lr>"
    assert tx.receive_response(busy, 2.0) is False and len(out) == 3  # ACK re-sent
    assert tx.deadline == 33.0  # Timer D = 32 s
    tx.on_timer(33.0)
    assert tx.terminated


def test_invite_client_2xx_goes_to_accepted_and_passes_retransmissions() -> None:
    out: list[tuple[bytes, Addr]] = []
    req = request()
    tx = ClientTransaction(req, PEER, out, CFG, False, now=0.0)
    ok = make_response(req, 200, to_tag="b1")
    assert tx.receive_response(ok, 0.2) is True and tx.state is State.ACCEPTED
    tx.ack_for_2xx = b"ACK..."
    assert tx.receive_response(ok, 0.7) is True and out[-1][0] == b"ACK..."
    assert tx.deadline == pytest.approx(0.2 + 32)  # Timer M
    tx.on_timer(tx.deadline or 0)
    assert tx.terminated


def test_cancel_limits_wait_for_final_response() -> None:
    out: list[tuple[bytes, Addr]] = []
    req = request()
    tx = ClientTransaction(req, PEER, out, CFG, False, now=0.0)
    tx.receive_response(make_response(req, 180, to_tag="b"), 1.0)
    tx.stop_waiting_after_cancel(10.0)
    assert tx.deadline == 42.0
    assert tx.on_timer(42.0) is True


def test_non_invite_client_timer_e_caps_at_t2_then_f() -> None:
    out: list[tuple[bytes, Addr]] = []
    tx = ClientTransaction(request("BYE"), PEER, out, CFG, False, now=0.0)
    assert run(tx, 31.9) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert tx.on_timer(32.0) is True and tx.terminated


def test_non_invite_client_proceeding_retransmits_every_t2_and_k_absorbs() -> None:
    out: list[tuple[bytes, Addr]] = []
    req = request("OPTIONS")
    tx = ClientTransaction(req, PEER, out, CFG, False, now=0.0)
    assert tx.receive_response(make_response(req, 100), 0.1) is True
    assert run(tx, 9.0) == [0.5, 4.5, 8.5]
    ok = make_response(req, 200, to_tag="x")
    assert tx.receive_response(ok, 9.0) is True and tx.state is State.COMPLETED
    assert tx.receive_response(ok, 9.5) is False
    assert tx.deadline == 14.0  # Timer K = T4
    tx.on_timer(14.0)
    assert tx.terminated


def test_reliable_transport_has_no_retransmissions_and_zero_wait_timers() -> None:
    out: list[tuple[bytes, Addr]] = []
    req = request()
    tx = ClientTransaction(req, PEER, out, CFG, True, now=0.0)
    assert tx.deadline == 32.0  # only B
    tx.receive_response(make_response(req, 503, to_tag="z"), 1.0)
    assert tx.deadline == 1.0  # D = 0
    server = ServerTransaction(request("BYE"), PEER, out, CFG, True, now=0.0)
    server.respond(make_response(server.request, 200, to_tag="t"), 2.0)
    assert server.deadline == 2.0  # J = 0


def test_configurable_timers() -> None:
    cfg = TimerConfig(t1=0.1, t2=0.4, t4=1.0)
    out: list[tuple[bytes, Addr]] = []
    tx = ClientTransaction(request("BYE"), PEER, out, cfg, False, now=0.0)
    assert run(tx, 1.5) == pytest.approx([0.1, 0.3, 0.7, 1.1, 1.5])
    with pytest.raises(ValueError):
        TimerConfig(t1=5.0, t2=4.0)


def test_invite_server_sends_100_after_trying_delay_unless_answered() -> None:
    out: list[tuple[bytes, Addr]] = []
    tx = ServerTransaction(request(), PEER, out, CFG, False, now=0.0)
    assert out == [] and tx.deadline == 0.2
    tx.on_timer(0.2)
    assert parse_message(out[0][0]).status == 100  # type: ignore[union-attr]
    out.clear()
    quick = ServerTransaction(request(), PEER, out, CFG, False, now=0.0)
    quick.respond(make_response(quick.request, 180, to_tag="t"), 0.05)
    assert quick.deadline is None and len(out) == 1  # no 100 once the TU has answered
    immediate = ServerTransaction(request(), PEER, out, TimerConfig(trying_delay=0), False, now=0.0)
    assert immediate.state is State.PROCEEDING and len(out) == 2


def test_invite_server_retransmits_final_with_g_until_ack_or_h() -> None:
    out: list[tuple[bytes, Addr]] = []
    tx = ServerTransaction(request(), PEER, out, CFG, False, now=0.0)
    tx.respond(make_response(tx.request, 486, to_tag="t"), 0.0)
    assert run(tx, 10.0) == [0.5, 1.5, 3.5, 7.5]  # G doubles, capped at T2
    tx.receive_request(request(), 10.0)  # retransmitted INVITE: final re-sent
    assert len(out) == 6
    ack = build_ack_for_non_2xx(tx.request, parse_message(out[0][0]))  # type: ignore[arg-type]
    tx.receive_request(ack, 10.5)
    assert tx.state is State.CONFIRMED and tx.deadline == 15.5  # Timer I = T4
    tx.on_timer(15.5)
    assert tx.terminated
    lost = ServerTransaction(request(), PEER, out, CFG, False, now=0.0)
    lost.respond(make_response(lost.request, 486, to_tag="t"), 0.0)
    run(lost, 31.9)
    assert lost.on_timer(32.0) is True and lost.terminated  # Timer H: the ACK never came


def test_invite_server_2xx_accepted_absorbs_retransmitted_invite() -> None:
    out: list[tuple[bytes, Addr]] = []
    tx = ServerTransaction(request(), PEER, out, CFG, False, now=0.0)
    tx.respond(make_response(tx.request, 200, to_tag="t"), 0.1)
    assert tx.state is State.ACCEPTED
    tx.receive_request(request(), 0.6)
    assert len(out) == 1  # the TU, not the transaction, retransmits a 2xx
    assert tx.deadline == pytest.approx(32.1)  # Timer L


def test_non_invite_server_replays_last_response_and_j() -> None:
    out: list[tuple[bytes, Addr]] = []
    tx = ServerTransaction(request("BYE"), PEER, out, CFG, False, now=0.0)
    assert tx.state is State.TRYING
    tx.receive_request(request("BYE"), 0.1)
    assert out == []  # nothing to replay yet
    tx.respond(make_response(tx.request, 200, to_tag="t"), 0.2)
    tx.receive_request(request("BYE"), 0.7)
    assert len(out) == 2 and out[0] == out[1]
    assert tx.deadline == pytest.approx(32.2)  # Timer J = 64*T1


def test_responses_after_final_are_a_local_error() -> None:
    from legato.sip import LocalProtocolError

    out: list[tuple[bytes, Addr]] = []
    tx = ServerTransaction(request("BYE"), PEER, out, CFG, False, now=0.0)
    tx.respond(make_response(tx.request, 200, to_tag="t"), 0.0)
    with pytest.raises(LocalProtocolError, match="already has a final response"):
        tx.respond(make_response(tx.request, 500), 0.1)


def test_transport_error_terminates() -> None:
    out: list[tuple[bytes, Addr]] = []
    tx = ClientTransaction(request(), PEER, out, CFG, False, now=0.0)
    tx.transport_error()
    assert tx.terminated and tx.deadline is None
