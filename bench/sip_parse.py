"""Parse + serialise cost of typical SIP messages with `legato.sip` (µs per message).

Usage: python bench/sip_parse.py [--quick]
"""

from __future__ import annotations

import argparse
import time

from legato.sip import parse_message

INVITE = (
    b"INVITE sip:+919876543210@10.0.0.2:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-524287-1---abcdef;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"Contact: <sip:alice@10.0.0.1:5060;transport=udp>\r\n"
    b"To: <sip:+919876543210@10.0.0.2>\r\n"
    b'From: "Alice" <sip:+911140000000@10.0.0.1>;tag=f7a91c2e\r\n'
    b"Call-ID: 5f1d2c3b4a5968778695a4b3c2d1e0f0@10.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE\r\n"
    b"Content-Type: application/sdp\r\n"
    b"User-Agent: bench\r\n"
    b"Content-Length: 127\r\n\r\n"
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
OK = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-524287-1---abcdef;rport=5060\r\n"
    b"Contact: <sip:+919876543210@10.0.0.2:5060>\r\n"
    b"To: <sip:+919876543210@10.0.0.2>;tag=9a8b7c\r\n"
    b'From: "Alice" <sip:+911140000000@10.0.0.1>;tag=f7a91c2e\r\n'
    b"Call-ID: 5f1d2c3b4a5968778695a4b3c2d1e0f0@10.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)
BYE = (
    b"BYE sip:+919876543210@10.0.0.2:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-524287-1---bye;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:+919876543210@10.0.0.2>;tag=9a8b7c\r\n"
    b'From: "Alice" <sip:+911140000000@10.0.0.1>;tag=f7a91c2e\r\n'
    b"Call-ID: 5f1d2c3b4a5968778695a4b3c2d1e0f0@10.0.0.1\r\n"
    b"CSeq: 2 BYE\r\n"
    b"Reason: Q.850;cause=16;text=\"Normal call clearing\"\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def measure(data: bytes, n: int) -> tuple[float, float, float]:
    """µs per parse, per serialise, and per parse + top-Via/CSeq/tags read (what a tx needs)."""
    t0 = time.perf_counter()
    for _ in range(n):
        parse_message(data)
    t1 = time.perf_counter()
    msg = parse_message(data)
    for _ in range(n):
        msg.to_bytes()
    t2 = time.perf_counter()
    for _ in range(n):
        m = parse_message(data)
        m.top_via.branch  # noqa: B018
        m.cseq  # noqa: B018
        m.from_.tag  # noqa: B018
        m.to.tag  # noqa: B018
    t3 = time.perf_counter()
    return (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6, (t3 - t2) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer iterations (< 5 s)")
    args = ap.parse_args()
    n = 5_000 if args.quick else 50_000
    print(f"{'message':<10}{'bytes':>7}{'parse µs':>11}{'serialise µs':>14}{'parse+fields µs':>17}")
    totals = []
    for name, data in (("INVITE", INVITE), ("200 OK", OK), ("BYE", BYE)):
        p, s, pf = measure(data, n)
        totals.append(p + s)
        print(f"{name:<10}{len(data):>7}{p:>11.1f}{s:>14.1f}{pf:>17.1f}")
    mean = sum(totals) / len(totals)
    invite_p, invite_s, _ = measure(INVITE, n)
    print(
        f"sip_parse_invite_us={invite_p:.1f} sip_serialize_invite_us={invite_s:.1f} "
        f"sip_parse_serialize_mean_us={mean:.1f}"
    )


if __name__ == "__main__":
    main()
