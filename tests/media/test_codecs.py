"""G.711 against the C reference (audioop, still in 3.11), SDP, RTP/RTCP and DTMF parsing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from legato.media import dtmf, g711, rtp, sdp

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the independent reference implementation; removed in 3.13

ALL = np.arange(-32768, 32768, dtype=np.int16)


@pytest.mark.parametrize(("codec", "lin2", "to_lin"), [
    ("PCMU", audioop.lin2ulaw, audioop.ulaw2lin),
    ("PCMA", audioop.lin2alaw, audioop.alaw2lin),
])
def test_g711_matches_the_c_reference_for_every_sample(codec, lin2, to_lin):
    assert g711.encode(ALL, codec) == lin2(ALL.tobytes(), 2)
    codes = bytes(range(256))
    assert g711.decode(codes, codec).tobytes() == to_lin(codes, 2)


def test_transcode_between_laws_keeps_the_signal():
    tone = (np.sin(np.arange(800) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
    alaw = g711.transcode(g711.encode(tone, "PCMU"), "PCMU", "PCMA")
    back = g711.decode(alaw, "PCMA").astype(float)
    assert np.max(np.abs(back - tone)) < 0.07 * 8000


PHONE_OFFER = (
    "v=0\r\no=- 3 4 IN IP4 192.0.2.10\r\ns=phone\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=audio 49170 RTP/AVP 9 8 0 96\r\na=rtpmap:9 G722/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    "m=video 49172 RTP/AVP 31\r\n"
)


def test_answer_picks_the_first_offered_g711_and_the_offers_event_type():
    answer, agreed = sdp.answer(sdp.parse(PHONE_OFFER), "127.0.0.1", 10000)
    assert (agreed.codec, agreed.pt, agreed.event_pt) == ("PCMA", 8, 96)
    assert (agreed.remote_address, agreed.remote_port) == ("192.0.2.10", 49170)
    text = answer.encode().decode()
    assert "m=audio 10000 RTP/AVP 8 96\r\n" in text
    assert "m=video 0 RTP/AVP 31" in text  # refused media keep their line with port 0
    again = sdp.parse(text)  # what we generate parses back
    assert again.audio is not None and again.audio.event_pt() == 96


def test_answer_reverses_direction_and_offerer_reads_the_answer():
    offer = sdp.offer("127.0.0.1", 12000, codecs=("PCMA", "PCMU"))
    held = sdp.hold(offer)
    answer, agreed = sdp.answer(sdp.parse(held.encode()), "127.0.0.2", 13000)
    assert agreed.direction == "recvonly" and agreed.codec == "PCMA"
    assert sdp.parse(held.encode()).on_hold
    final = sdp.accept_answer(offer, sdp.parse(answer.encode()))
    assert (final.codec, final.remote_port, final.event_pt) == ("PCMA", 13000, 101)


def test_no_common_codec_is_a_clear_error():
    only_g722 = PHONE_OFFER.replace("9 8 0 96", "9")
    with pytest.raises(sdp.NoCommonCodec, match="offered G722"):
        sdp.answer(sdp.parse(only_g722), "127.0.0.1", 10000)


@pytest.mark.parametrize(("body", "line", "rule"), [
    ("o=- 1 1 IN IP4 1.2.3.4\r\n", 1, "v=0"),
    ("v=0\r\no=- 1 IN IP4 1.2.3.4\r\n", 2, "6 fields"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4\r\n", 4, "c= must be"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\n", 5, "0-65535"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nm=audio 5 RTP/SAVP 0\r\n", 5, "RTP/SAVP"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", 4, "rtpmap"),
    ("v=0\r\nthis is not sdp\r\n", 2, "<type>=<value>"),
])
def test_bad_sdp_names_the_line_and_the_rule(body, line, rule):
    with pytest.raises(sdp.SdpError) as caught:
        sdp.parse(body)
    assert caught.value.line == line
    assert rule in str(caught.value) and f"line {line}" in str(caught.value)


def test_missing_connection_is_refused():
    with pytest.raises(sdp.SdpError, match="no c= line"):
        sdp.parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\n")


def test_rtp_round_trip_and_header_extension_skipped():
    packet = rtp.parse(rtp.build(8, 65535, 2**32 - 1, 0xDEADBEEF, b"abc", marker=True))
    assert packet == rtp.RtpPacket(8, 65535, 2**32 - 1, 0xDEADBEEF, b"abc", True)
    with_ext = bytearray(rtp.build(0, 1, 2, 3, b"xyz"))
    with_ext[0] |= 0x10
    with_ext[12:12] = b"\xbe\xde\x00\x01" + b"\x00" * 4
    assert rtp.parse(bytes(with_ext)).payload == b"xyz"
    with pytest.raises(rtp.RtpError, match="shorter than"):
        rtp.parse(b"\x80\x00")


def test_sender_report_carries_counts_and_cname():
    report = rtp.sender_report(42, 1234, 50, 8000, wall=1_700_000_000.25)
    assert rtp.is_rtcp(report) and len(report) % 4 == 0
    sr = rtp.parse_sender_report(report)
    assert sr is not None
    assert (sr.ssrc, sr.rtp_timestamp, sr.packets, sr.octets) == (42, 1234, 50, 8000)
    assert sr.ntp == pytest.approx(1_700_000_000.25, abs=1e-6)
    assert b"legato" in report


def test_retransmitted_end_packets_count_once_and_lost_ends_still_count():
    receiver = dtmf.EventReceiver()
    got = []
    for duration in (160, 320, 480):
        got.append(receiver.feed(1000, dtmf.build_event("5", False, duration)))
    for _ in range(3):
        got.append(receiver.feed(1000, dtmf.build_event("5", True, 640)))
    assert [g for g in got if g] == ["5"]
    # '7' loses all of its end packets; the next key reveals it
    receiver.feed(5000, dtmf.build_event("7", False, 160))
    assert receiver.feed(9000, dtmf.build_event("#", False, 160)) == "7"
    assert receiver.flush() == "#"
    assert receiver.feed(5000, dtmf.build_event("7", True, 800)) is None  # a late end


@pytest.mark.parametrize(("body", "digit"), [
    (b"Signal=1\r\nDuration=160\r\n", "1"),
    (b"Signal= #\r\nDuration= 250", "#"),
    (b"signal=11\nduration=100", "#"),
    (b"*", "*"),
])
def test_sip_info_dtmf_relay(body, digit):
    assert dtmf.parse_dtmf_relay(body) == digit


@pytest.mark.parametrize(("body", "message"), [
    (b"Duration=160", "no Signal"),
    (b"Signal=12\r\n", "not a DTMF digit"),
])
def test_sip_info_dtmf_relay_errors(body, message):
    with pytest.raises(dtmf.DtmfError, match=message):
        dtmf.parse_dtmf_relay(body)


@pytest.mark.parametrize(("source", "target"), [("PCMU", "PCMA"), ("PCMA", "PCMU")])
def test_transcode_table_equals_decode_then_encode(source, target):
    codes = bytes(range(256))
    assert g711.transcode(codes, source, target) == g711.encode(g711.decode(codes, source), target)
