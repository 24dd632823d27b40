"""Property tests: parse(serialize(msg)) round trips, and random bytes only ever raise
`RemoteProtocolError` from the parsers (datagram and stream) and never disturb the agent."""

from __future__ import annotations

import contextlib
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legato.sip import RemoteProtocolError, Request, Response, StreamParser, parse_message
from legato.sip.ua import UAConfig, UserAgent

from .messages import INVITE, WSINV

TOKEN = st.text(string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=12)
SAFE_VALUE = (
    st.text(
        string.ascii_letters + string.digits + " -.!%*_+`'~;=@:<>/\"?&[]", min_size=1, max_size=40
    )
    .map(str.strip)
    .filter(lambda v: v != "" and "," not in v)
)
HEADER_NAME = st.sampled_from(["Subject", "User-Agent", "Priority"]) | TOKEN.map("X-{}".format)


@st.composite
def messages(draw: st.DrawFn) -> Request | Response:
    headers = [
        ("Via", f"SIP/2.0/UDP 10.0.0.{draw(st.integers(1, 254))}:5060;branch=z9hG4bK{draw(TOKEN)}"),
        ("From", f"<sip:{draw(TOKEN)}@example.com>;tag={draw(TOKEN)}"),
        ("To", f"<sip:{draw(TOKEN)}@example.com>"),
        ("Call-ID", draw(TOKEN)),
    ]
    extra = draw(st.lists(st.tuples(HEADER_NAME, SAFE_VALUE), max_size=8))
    body = draw(st.binary(max_size=300))
    if draw(st.booleans()):
        method = draw(st.sampled_from(["INVITE", "BYE", "OPTIONS", "INFO"]) | TOKEN)
        headers.append(("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"))
        msg: Request | Response = Request(
            method, f"sip:{draw(TOKEN)}@example.com", headers + extra, body
        )
    else:
        headers.append(("CSeq", f"{draw(st.integers(0, 2**31 - 1))} INVITE"))
        phrase = draw(st.text(string.ascii_letters + " ", min_size=1, max_size=20)).strip()
        msg = Response(draw(st.integers(100, 699)), phrase or "X", headers + extra, body)
    return msg


@given(messages())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parse_serialize_round_trip(msg: Request | Response) -> None:
    data = msg.to_bytes()
    parsed = parse_message(data)
    assert type(parsed) is type(msg)
    assert parsed.body == msg.body
    assert [(n.lower(), v) for n, v in parsed.headers if n != "Content-Length"] == [
        (n.lower(), v) for n, v in msg.headers
    ]
    assert parsed.to_bytes() == data
    if isinstance(msg, Request):
        assert isinstance(parsed, Request)
        assert (parsed.method, parsed.uri) == (msg.method, msg.uri)
    else:
        assert isinstance(parsed, Response)
        assert (parsed.status, parsed.reason) == (msg.status, msg.reason)
    stream = StreamParser().feed(data + data)
    assert [m.to_bytes() for m in stream] == [data, data]


@given(st.binary(max_size=2000))
@settings(max_examples=1000, deadline=None)
def test_random_bytes_only_raise_remote_protocol_error(data: bytes) -> None:
    try:
        parse_message(data)
    except RemoteProtocolError as exc:
        assert exc.reason
    try:
        StreamParser().feed(data)
    except RemoteProtocolError as exc:
        assert exc.reason


@given(st.data())
@settings(max_examples=500, deadline=None)
def test_mutated_messages_only_raise_remote_protocol_error(data: st.DataObject) -> None:
    base = bytearray(data.draw(st.sampled_from([INVITE, WSINV])))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(base) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            base[pos] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del base[pos : pos + data.draw(st.integers(1, 20))]
        else:
            base[pos:pos] = data.draw(
                st.sampled_from(
                    [b",", b";", b"\r\n", b" ", b":", b'"', b"<", b">", b"\x00", b"=", b"\r\n "]
                )
            )
        if not base:
            break
    raw = bytes(base)
    try:
        msg = parse_message(raw)
    except RemoteProtocolError:
        return
    # Whatever parsed must serialise and re-parse, and its typed fields parse or fail cleanly.
    parse_message(msg.to_bytes())
    for accessor in (
        "cseq",
        "from_",
        "to",
        "top_via",
        "vias",
        "contacts",
        "route",
        "reasons",
        "max_forwards",
    ):
        with contextlib.suppress(RemoteProtocolError):
            getattr(msg, accessor)


@given(st.lists(st.binary(max_size=600), max_size=20), st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_agent_survives_garbage_and_still_answers(
    garbage: list[bytes], data: st.DataObject
) -> None:
    ua = UserAgent(UAConfig(("127.0.0.1", 5060)))
    for chunk in garbage:
        ua.receive_datagram(chunk, ("127.0.0.1", 5999), 0.0)
    mutated = bytearray(INVITE)
    pos = data.draw(st.integers(0, len(mutated) - 1))
    mutated[pos] = data.draw(st.integers(0, 255))
    ua.receive_datagram(bytes(mutated), ("127.0.0.1", 5999), 0.0)
    ua.datagrams_to_send(0.0)
    while ua.next_event() is not None:
        pass
    ua.receive_datagram(
        INVITE.replace(b"z9hG4bK776asdhds", b"z9hG4bKfresh"), ("127.0.0.1", 5999), 1.0
    )
    events = []
    while (event := ua.next_event()) is not None:
        events.append(type(event).__name__)
    assert events == ["IncomingCall"]


def test_atheris_fuzz_target_runs_clean_for_a_bounded_time(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    (seeds / "invite").write_bytes(INVITE)
    (seeds / "wsinv").write_bytes(WSINV)
    target = Path(__file__).with_name("fuzz_parser.py")
    proc = subprocess.run(
        [sys.executable, str(target), "-max_total_time=10", "-rss_limit_mb=1024", str(seeds)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(tmp_path.glob("crash-*"))
