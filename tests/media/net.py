"""Test helpers: read RTP out of SIPp's pcaps, and a plain UDP peer on loopback."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

SIPP_PCAPS = Path("/usr/share/sip-tester")


def pcap_udp_payloads(path: Path) -> list[tuple[float, bytes]]:
    """(capture time, UDP payload) of every IPv4/UDP packet of an Ethernet pcap file."""
    data = path.read_bytes()
    magic = data[:4]
    endian = "<" if magic == b"\xd4\xc3\xb2\xa1" else ">"
    (linktype,) = struct.unpack_from(endian + "I", data, 20)
    assert linktype == 1, f"{path}: only Ethernet captures are read here"
    out: list[tuple[float, bytes]] = []
    offset = 24
    while offset + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from(endian + "IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        udp = 14 + ihl
        (length,) = struct.unpack_from("!H", frame, udp + 4)
        out.append((sec + usec / 1e6, frame[udp + 8 : udp + length]))
    return out


class UdpPeer(asyncio.DatagramProtocol):
    """A bare UDP socket standing in for a phone's RTP port: sends and records datagrams."""

    def __init__(self) -> None:
        self.received: list[tuple[float, bytes, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> UdpPeer:
        loop = asyncio.get_running_loop()
        peer = cls()
        await loop.create_datagram_endpoint(lambda: peer, local_addr=("127.0.0.1", 0),
                                            family=socket.AF_INET)
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((asyncio.get_running_loop().time(), data, addr))

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]

    async def replay(self, packets: list[tuple[float, bytes]], to: tuple[str, int],
                     speed: float = 1.0) -> None:
        """Send pcap payloads with their original spacing (divided by `speed`)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        start, first = loop.time(), packets[0][0]
        for when, payload in packets:
            delay = start + (when - first) / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.transport.sendto(payload, to)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
