"""Parser and serializer: RFC 3261 §7/§20/§25 grammar, RFC 4475 torture cases, limits."""

from __future__ import annotations

import pytest

from legato.sip import (
    Limits,
    NameAddr,
    Reason,
    RemoteProtocolError,
    Request,
    Response,
    SipURI,
    StreamParser,
    Via,
    make_response,
    parse_message,
)

from .messages import INVITE, WSINV, WSINV_BODY


def test_invite_parses_with_typed_fields() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri) == ("INVITE", "sip:bob@192.0.2.4")
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.com"
    assert (msg.cseq.seq, msg.cseq.method) == (314159, "INVITE")
    assert msg.from_.tag == "1928301774" and msg.from_.display_name == "Alice A."
    assert msg.to.tag is None
    via = msg.top_via
    assert via.branch == "z9hG4bK776asdhds" and via.sent_by == ("192.0.2.1", 5060)
    assert "rport" in via.params and via.rport is None
    assert msg.body == b"v=0\r\no=- 1 1 IN\r\n"
    assert msg.max_forwards == 70


def test_round_trip_is_stable() -> None:
    msg = parse_message(INVITE)
    again = parse_message(msg.to_bytes())
    assert again.headers == msg.headers and again.body == msg.body
    assert again.to_bytes() == msg.to_bytes()


def test_rfc4475_wsinv_short_tortuous_invite() -> None:
    msg = parse_message(WSINV)
    assert isinstance(msg, Request)
    assert msg.body == WSINV_BODY
    assert msg.cseq.seq == 9 and msg.cseq.method == "INVITE"
    assert msg.max_forwards == 68
    assert msg.to.tag == "1918181833n"
    assert msg.from_.tag == "98asjd8"
    assert msg.get("Subject") == ""
    assert msg.get("newfangledheader") == "newfangled value continued newfangled value"
    assert msg.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    (contact,) = msg.contacts
    assert contact.uri == "sip:jdrosen@example.com"
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    (route,) = msg.route
    assert route.parsed_uri.loose_route


def test_compact_forms_are_expanded() -> None:
    raw = (
        b"OPTIONS sip:x@192.0.2.1 SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKc\r\n"
        b"f: <sip:a@192.0.2.9>;tag=1\r\nt: <sip:x@192.0.2.1>\r\ni: cid\r\n"
        b"CSeq: 1 OPTIONS\r\nm: <sip:a@192.0.2.9>\r\nk: timer, 100rel\r\n"
        b"c: text/plain\r\ns: hi\r\ne: gzip\r\no: presence\r\nr: <sip:z@h>\r\n"
        b"u: talk\r\nx: 1800\r\ny: abc\r\nb: <sip:q@h>\r\nl: 2\r\n\r\nhi"
    )
    msg = parse_message(raw)
    names = [n for n, _ in msg.headers]
    assert names == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Supported",
        "Supported",
        "Content-Type",
        "Subject",
        "Content-Encoding",
        "Event",
        "Refer-To",
        "Allow-Events",
        "Session-Expires",
        "Identity",
        "Referred-By",
        "Content-Length",
    ]
    assert msg.get_all("k") == ["timer", "100rel"]
    assert msg.body == b"hi"


def test_list_headers_split_outside_quotes_and_brackets() -> None:
    raw = INVITE.replace(
        b"Contact: <sip:alice@192.0.2.1:5060>",
        b'Contact: "Doe, John" <sip:a@h;x=1,2>;q=0.5, <sip:b@h>',
    )
    msg = parse_message(raw)
    assert [c.uri for c in msg.contacts] == ["sip:a@h;x=1,2", "sip:b@h"]
    assert msg.contacts[0].display_name == "Doe, John"


def test_response_parses() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    resp = make_response(req, 180, to_tag="xyz")
    parsed = parse_message(resp.to_bytes())
    assert isinstance(parsed, Response)
    assert (parsed.status, parsed.reason) == (180, "Ringing")
    assert parsed.to.tag == "xyz"
    assert parsed.top_via.branch == "z9hG4bK776asdhds"


def test_udp_body_is_rest_without_content_length_and_cut_to_it() -> None:
    no_cl = INVITE.replace(b"Content-Length: 17\r\n", b"")
    assert parse_message(no_cl).body == b"v=0\r\no=- 1 1 IN\r\n"
    shorter = INVITE.replace(b"Content-Length: 17", b"Content-Length: 4")
    assert parse_message(shorter).body == b"v=0\r"


@pytest.mark.parametrize(
    ("raw", "reason", "status"),
    [
        (INVITE.replace(b"Content-Length: 17", b"Content-Length: 99"), "Content-Length 99", 400),
        (INVITE.replace(b"Content-Length: 17", b"Content-Length: -1"), "Content-Length", 400),
        (INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 ACK"), "does not match", 400),
        (INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 99999999999 INVITE"), "2**31", 400),
        (INVITE.replace(b"Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n", b""), "Call-ID", 400),
        (INVITE.replace(b"SIP/2.0\r\nVia", b"SIP/7.0\r\nVia"), "version", 505),
        (INVITE.replace(b"INVITE sip:bob@192.0.2.4", b"INVITE <sip:bob@192.0.2.4>"), "URI", 400),
        (INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 300"), "Max-Forwards", 400),
        (INVITE.replace(b"Max-Forwards: 70", b"Max Forwards: 70"), "header name", 400),
        (INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards 70"), "colon", 400),
        (INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 1 INVITE\r\nCSeq: 2 INVITE"), "once", 400),
        (b"INVITE  sip:a@b SIP/2.0\r\n\r\n", "start line", 400),
        (b"SIP/2.0 99 Weird\r\n\r\n", "status code", 400),
        (b"\xff\xfe garbage\r\n\r\n", "UTF-8", 400),
        (b"", "empty", 400),
    ],
)
def test_malformed_input_names_the_rule(raw: bytes, reason: str, status: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(raw)
    assert reason in info.value.reason
    assert info.value.status_code == status


def test_partial_message_kept_so_a_400_can_be_sent() -> None:
    raw = INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE")
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(raw)
    assert isinstance(info.value.partial, Request)
    assert info.value.partial.call_id == "a84b4c76e66710@pc33.atlanta.com"


def test_limits_are_enforced() -> None:
    with pytest.raises(RemoteProtocolError, match="exceeds the limit") as info:
        parse_message(INVITE, Limits(max_message_size=100))
    assert info.value.status_code == 513
    many = INVITE.replace(b"Max-Forwards: 70\r\n", b"X-A: 1\r\n" * 200)
    with pytest.raises(RemoteProtocolError, match="more than 128"):
        parse_message(many)
    long_line = INVITE.replace(b"Max-Forwards: 70", b"X-Long: " + b"a" * 9000)
    with pytest.raises(RemoteProtocolError, match="longer than 8192"):
        parse_message(long_line)
    folded = INVITE.replace(b"Max-Forwards: 70", b"X-Long: a" + b"\r\n b" * 5000)
    with pytest.raises(RemoteProtocolError, match="folded header longer"):
        parse_message(folded)
    with pytest.raises(ValueError):
        Limits(max_headers=0)


def test_stream_parser_frames_partial_and_multiple_messages() -> None:
    parser = StreamParser()
    two = INVITE + b"\r\n\r\n" + INVITE  # keep-alive CRLFs between messages
    out = []
    for i in range(0, len(two), 7):  # 7-byte reads
        out += parser.feed(two[i : i + 7])
    assert len(out) == 2 and all(m.body == b"v=0\r\no=- 1 1 IN\r\n" for m in out)
    assert parser.buffered == 0
    assert len(StreamParser().feed(INVITE * 3)) == 3


def test_stream_parser_requires_content_length_and_bounds_buffer() -> None:
    with pytest.raises(RemoteProtocolError, match="mandatory"):
        StreamParser().feed(INVITE.replace(b"Content-Length: 17\r\n", b""))
    parser = StreamParser(Limits(max_message_size=1000))
    with pytest.raises(RemoteProtocolError, match="header section exceeds"):
        parser.feed(b"INVITE sip:a@b SIP/2.0\r\nX: " + b"a" * 2000)


def test_uri_parsing_sip_sips_tel() -> None:
    uri = SipURI.parse("sips:alice:secret@[2001:db8::1]:5061;transport=TCP;lr?subject=hi&x=y")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "alice",
        "secret",
        "[2001:db8::1]",
        5061,
    )
    assert uri.params == {"transport": "TCP", "lr": None} and uri.loose_route
    assert uri.transport == "TCP"
    assert uri.headers == {"subject": "hi", "x": "y"}
    assert SipURI.parse(str(uri)) == uri
    tel = SipURI.parse("tel:+1-201-555-0123;phone-context=example.com")
    assert (tel.scheme, tel.user) == ("tel", "+1-201-555-0123")
    assert str(tel) == "tel:+1-201-555-0123;phone-context=example.com"
    assert SipURI.parse("sip:EXAMPLE.com").host == "example.com"
    for bad in ("http://x", "sip:", "sip:a@", "sip:a@host:99999", "sip:a@ho st", "tel:abc!"):
        with pytest.raises(RemoteProtocolError):
            SipURI.parse(bad)


def test_name_addr_forms() -> None:
    na = NameAddr.parse("sip:a@h;tag=1")  # addr-spec: params belong to the header
    assert (na.uri, na.tag) == ("sip:a@h", "1")
    na = NameAddr.parse("Bob Smith <sip:b@h;transport=tcp>;tag=x;expires=60")
    assert na.display_name == "Bob Smith" and na.parsed_uri.transport == "TCP"
    assert na.params == {"tag": "x", "expires": "60"}
    assert str(na) == "Bob Smith <sip:b@h;transport=tcp>;tag=x;expires=60"
    assert NameAddr.parse("*").uri == "*"
    for bad in ('"unterminated <sip:a@h>', "<sip:a@h", "Bob <nouri>", '"x" sip:a@h'):
        with pytest.raises(RemoteProtocolError):
            NameAddr.parse(bad)


def test_via_with_received_and_rport() -> None:
    via = Via.parse("SIP/2.0/udp 10.0.0.1:5070;branch=z9hG4bK1;received=1.2.3.4;rport=6000")
    assert via.transport == "UDP" and via.sent_by == ("10.0.0.1", 5070)
    assert via.received == "1.2.3.4" and via.rport == 6000
    assert str(via) == "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;received=1.2.3.4;rport=6000"
    for bad in ("SIP/2.0/UDP", "SIP/3.0/UDP h", "SIP/2.0/UDP h;branch="):
        with pytest.raises(RemoteProtocolError):
            Via.parse(bad)


def test_reason_header_parsed_and_generated() -> None:
    reason = Reason.parse('Q.850 ;cause=17 ;text="User \\"busy\\""')
    assert reason == Reason("Q.850", 17, 'User "busy"')
    assert Reason.parse(str(reason)) == reason
    assert str(Reason.q850(16)) == "Q.850;cause=16"
    msg = parse_message(
        INVITE.replace(b"Max-Forwards: 70", b'Reason: SIP;cause=200;text="x", Q.850;cause=31')
    )
    assert [r.protocol for r in msg.reasons] == ["SIP", "Q.850"]
    assert msg.q850_cause == 31
    with pytest.raises(RemoteProtocolError):
        Reason.parse("Q.850;text=x")
    with pytest.raises(ValueError):
        Reason.q850(200)


def test_header_editing_helpers() -> None:
    msg = parse_message(INVITE)
    msg.set("max-forwards", "69")
    assert msg.get("Max-Forwards") == "69"
    msg.prepend("v", "SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKtop")
    assert msg.top_via.host == "10.9.9.9" and len(msg.vias) == 2
    msg.add("X-Custom", "1")
    assert msg.get("x-custom") == "1"
    msg.remove("X-CUSTOM")
    assert msg.get("X-Custom") is None
    msg.body = b"changed"
    assert b"Content-Length: 7\r\n" in msg.to_bytes()


@pytest.mark.parametrize(("status", "phrase"), [
    (200, "OK"), (422, "Session Interval Too Small"), (429, "Provide Referrer Identity"),
    (607, "Unwanted"), (608, "Rejected"), (699, "Unknown"),
])
def test_a_built_response_carries_the_registrys_phrase(status: int, phrase: str) -> None:
    """Every IANA-registered code gets its phrase (the one table the cause map uses too)."""
    assert Response(status).to_bytes().split(b"\r\n", 1)[0] == f"SIP/2.0 {status} {phrase}".encode()
