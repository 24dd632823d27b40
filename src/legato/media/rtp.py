"""RTP (RFC 3550) packets and RTCP sender reports, as plain bytes in and out.

Kept separate from the socket so that the relay, the recorder and the tests read and write
packets the same way the endpoint does.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

_HEADER = struct.Struct("!BBHII")
_NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01


class RtpError(ValueError):
    """A datagram that is not a usable RTP or RTCP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet: the header fields Legato uses and the payload after CSRCs/extension."""

    pt: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def encode(self) -> bytes:
        return build(self.pt, self.seq, self.timestamp, self.ssrc, self.payload, self.marker)


def build(
    pt: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False
) -> bytes:
    """Version 2, no padding/extension/CSRC: the header every G.711 sender uses."""
    return _HEADER.pack(
        0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
    ) + payload


def parse(data: bytes) -> RtpPacket:
    """Decode an RTP packet, skipping CSRCs, a header extension and padding."""
    if len(data) < 12:
        raise RtpError(f"RTP packet of {len(data)} bytes is shorter than the 12-byte header")
    first, second, seq, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        if len(data) < offset + 4:
            raise RtpError("RTP header extension truncated")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if first & 0x20:
        end -= data[-1]
    if offset > end:
        raise RtpError("RTP header longer than the packet")
    payload = bytes(data[offset:end])
    return RtpPacket(second & 0x7F, seq, timestamp, ssrc, payload, bool(second & 0x80))


def is_rtcp(data: bytes) -> bool:
    """RTCP packet types 192-223 sit where RTP has marker+PT (RFC 5761 §4)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def ntp_now(wall: float | None = None) -> tuple[int, int]:
    """NTP timestamp (seconds, fraction) of the wall clock, for sender reports."""
    now = time.time() if wall is None else wall
    seconds = int(now) + _NTP_EPOCH_OFFSET
    return seconds & 0xFFFFFFFF, int((now % 1.0) * (1 << 32)) & 0xFFFFFFFF


def sender_report(
    ssrc: int, rtp_timestamp: int, packets: int, octets: int, wall: float | None = None,
    cname: str = "legato",
) -> bytes:
    """A compound RTCP packet: SR (no report blocks) + SDES CNAME, as RFC 3550 §6.1 asks."""
    ntp_sec, ntp_frac = ntp_now(wall)
    sr = struct.pack(
        "!BBHIIIIII", 0x80, 200, 6, ssrc, ntp_sec, ntp_frac,
        rtp_timestamp & 0xFFFFFFFF, packets & 0xFFFFFFFF, octets & 0xFFFFFFFF,
    )
    name = cname.encode()[:255]
    item = bytes([1, len(name)]) + name + b"\x00"
    item += b"\x00" * (-(len(item) + 4) % 4)
    sdes = struct.pack("!BBHI", 0x81, 202, (len(item) + 4) // 4, ssrc) + item
    return sr + sdes


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp: float
    rtp_timestamp: int
    packets: int
    octets: int


def parse_sender_report(data: bytes) -> SenderReport | None:
    """The SR of a compound RTCP packet, or None when it starts with another type."""
    if len(data) < 28 or data[1] != 200:
        return None
    _, _, _, ssrc, sec, frac, ts, packets, octets = struct.unpack_from("!BBHIIIIII", data)
    return SenderReport(ssrc, sec - _NTP_EPOCH_OFFSET + frac / (1 << 32), ts, packets, octets)
