"""An RTP endpoint: one UDP socket pair, paced sending, receiving with DTMF and latching.

Sending is paced against the loop's clock: frame n of a stream is due at start + n * ptime
and is scheduled on the loop's shared `Pacer` (`call_at` per 2 ms grid instant, shared by
all streams due then), so lateness never accumulates (no `sleep(0.02)` drift).
The RTP timestamp is derived from the same clock, so a gap (a loop stall, silence between
prompts) shows up to the receiver as a timestamp jump rather than as time compression.

Symmetric RTP (RFC 4961): once the peer's packets arrive, we send to where they come from,
which is what makes callers behind NAT hear us whatever their SDP says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from legato.media import rtp
from legato.media.dtmf import EventReceiver, build_event
from legato.media.g711 import SILENCE, Codec
from legato.media.pacer import pacer_for
from legato.media.ports import PortRange
from legato.media.sdp import Negotiated

log = logging.getLogger(__name__)

Addr = tuple[str, int]
RTCP_INTERVAL = 5.0
MAX_CATCH_UP = 3  # frames sent back to back after a stall; beyond that they are skipped


class FrameSource(Protocol):
    """Something that yields one ptime's worth of encoded audio at a time (None = finished)."""

    def next_frame(self, codec: Codec, size: int) -> bytes | None: ...


@dataclass(slots=True)
class EndpointStats:
    """Counters for RTCP and for the operator; lateness samples only when asked for."""

    sent_packets: int = 0
    sent_octets: int = 0
    received_packets: int = 0
    received_octets: int = 0
    bad_packets: int = 0
    skipped_frames: int = 0
    #: send time minus due time, seconds (bench); the send time is read from
    #: `time.monotonic()` (the loops' clock, uvloop's included) at each send, since the loop's
    #: own time is cached per iteration (and in whole ms under uvloop)
    lateness: list[float] | None = None
    jitter: float = 0.0  # RFC 3550 §6.4.1 interarrival jitter, in timestamp units
    _transit: float | None = field(default=None, repr=False)


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.endpoint._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("rtp socket error: %s", exc)  # ICMP port unreachable while the peer starts


class _RtcpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.endpoint._on_rtcp(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("rtcp socket error: %s", exc)


class RtpEndpoint:
    """One leg's media: send paced G.711 from a `FrameSource`, receive audio and DTMF."""

    on_audio: Callable[[rtp.RtpPacket], None] | None
    on_digit: Callable[[str], None] | None
    on_packet: Callable[[rtp.RtpPacket], None] | None  # every valid packet (relay, recorder)

    def __init__(self, loop: asyncio.AbstractEventLoop, rtp_sock: socket.socket,
                 rtcp_sock: socket.socket, symmetric: bool = True) -> None:
        self.loop = loop
        self._rtp_sock = rtp_sock
        self._rtcp_sock = rtcp_sock
        self.local: Addr = rtp_sock.getsockname()[:2]
        self.symmetric = symmetric
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(16)
        self._ts_base = secrets.randbits(32)
        self._epoch = loop.time()
        self.codec: Codec = "PCMU"
        self.pt = 0
        self.event_pt: int | None = None
        self.ptime = 0.02
        self.remote: Addr | None = None
        self.muted = False
        self.remote_rtcp: Addr | None = None
        self._latched = False
        self.stats = EndpointStats()
        self.on_audio = None
        self.on_digit = None
        self.on_packet = None
        self._events = EventReceiver()
        self._source: FrameSource | None = None
        self._source_done: Callable[[bool], None] | None = None
        self._start = 0.0  # loop time of the current source's first frame
        self._frame = 0  # index of the next frame of the current source
        self._next_ts = 0
        self._pacer = pacer_for(loop)
        self._pacer_key: int | None = None
        self.generation = 0
        self._rtcp_timer: asyncio.TimerHandle | None = None
        self._marker = True
        self._rtp_transport: asyncio.DatagramTransport | None = None
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self.closed = False
        self.ready: asyncio.Task[None] | None = None

    @classmethod
    def bind(cls, host: str, ports: PortRange, symmetric: bool = True) -> RtpEndpoint:
        """Bind a port pair now (the port is known at once, for the SDP) and start receiving
        on the next loop turn; for callers that cannot await (the SIP driver's handlers).
        Datagrams arriving in between wait in the socket; sends in between are dropped."""
        loop = asyncio.get_running_loop()
        rtp_sock, rtcp_sock = ports.bind_pair(host)
        endpoint = cls(loop, rtp_sock, rtcp_sock, symmetric)
        endpoint.ready = loop.create_task(endpoint._attach())
        return endpoint

    @classmethod
    async def open(cls, host: str, ports: PortRange, symmetric: bool = True) -> RtpEndpoint:
        """Bind a port pair from `ports` on `host` and start receiving."""
        endpoint = cls.bind(host, ports, symmetric)
        assert endpoint.ready is not None
        await endpoint.ready
        return endpoint

    async def _attach(self) -> None:
        try:
            if not self.closed:
                transport, _ = await self.loop.create_datagram_endpoint(
                    lambda: _RtpProtocol(self), sock=self._rtp_sock)
                self._rtp_transport = transport
            if not self.closed:
                rtcp_transport, _ = await self.loop.create_datagram_endpoint(
                    lambda: _RtcpProtocol(self), sock=self._rtcp_sock)
                self._rtcp_transport = rtcp_transport
        except (OSError, ValueError):
            if not self.closed:  # closed meanwhile: its sockets are gone, nothing to attach
                self.close()
                raise

    # ------------------------------------------------------------------ configuration

    def configure(self, negotiated: Negotiated) -> None:
        """Apply an offer/answer result: codec, payload types, the peer's address, ptime."""
        self.codec = negotiated.codec
        self.pt = negotiated.pt
        self.event_pt = negotiated.event_pt
        self.ptime = (negotiated.ptime or 20) / 1000.0
        # RFC 3264 §5.1: a recvonly/inactive stream carries nothing from us (the peer holds)
        self.muted = negotiated.direction in ("recvonly", "inactive")
        if not self._latched:
            self.remote = (negotiated.remote_address, negotiated.remote_port)
            self.remote_rtcp = (negotiated.remote_address, negotiated.remote_port + 1)
        if negotiated.remote_address in ("0.0.0.0", "::") or negotiated.remote_port == 0:
            self.remote = None  # RFC 3264 hold by c=0.0.0.0, or the stream was refused

    @property
    def frame_samples(self) -> int:
        return round(self.ptime * 8000)

    def timestamp_at(self, when: float) -> int:
        """The RTP timestamp of loop time `when` (8 kHz clock from the endpoint's epoch)."""
        return (self._ts_base + round((when - self._epoch) * 8000)) & 0xFFFFFFFF

    # --------------------------------------------------------------------------- sending

    def send(self, payload: bytes, timestamp: int, pt: int | None = None,
             marker: bool = False) -> None:
        """Send one packet now with our SSRC and the next sequence number."""
        if self.remote is None or self._rtp_transport is None or self.muted:
            return
        self.seq = (self.seq + 1) & 0xFFFF
        self._rtp_transport.sendto(
            rtp.build(self.pt if pt is None else pt, self.seq, timestamp, self.ssrc, payload,
                      marker),
            self.remote,
        )
        self.stats.sent_packets += 1
        self.stats.sent_octets += len(payload)
        if self._rtcp_timer is None:
            self._rtcp_timer = self.loop.call_at(self.loop.time() + RTCP_INTERVAL, self._send_rtcp)

    def play(self, source: FrameSource, on_done: Callable[[bool], None] | None = None) -> None:
        """Start sending `source` at ptime pace, replacing what was playing (reported stopped).

        `on_done(stopped)` runs once: stopped=False when the source ran out, True when
        `stop()` or another `play()` cut it short.
        """
        self.stop()
        self.generation += 1
        self._source = source
        self._source_done = on_done
        self._marker = True  # a new talkspurt (RFC 3551 §4.1)
        self._start = self._pacer.align(self.loop.time())
        self._frame = 0
        self._next_ts = self.timestamp_at(self._start)
        self._pacer_key = self._pacer.schedule(self, self._start)

    @property
    def playing(self) -> bool:
        return self._source is not None

    def stop(self) -> None:
        """Stop the current source now (barge-in); its `on_done(True)` runs."""
        self.generation += 1
        if self._pacer_key is not None:
            self._pacer.cancel(self, self._pacer_key)
            self._pacer_key = None
        self._finish(stopped=True)

    def _finish(self, stopped: bool) -> None:
        done, self._source, self._source_done = self._source_done, None, None
        if done is not None:
            done(stopped)

    def _tick(self) -> None:
        self._pacer_key = None
        source = self._source
        if source is None:
            return
        now = self.loop.time()
        lateness = self.stats.lateness
        size = self.frame_samples
        due = self._start + self._frame * self.ptime  # never accumulated: no drift
        behind = int((now - due) / self.ptime)
        frames = 1
        if behind >= 1:  # the loop stalled: catch up a little, skip the rest
            frames = min(behind + 1, MAX_CATCH_UP)
            skipped = behind + 1 - frames
            if skipped:
                self.stats.skipped_frames += skipped
                self._frame += skipped
                self._next_ts = (self._next_ts + skipped * size) & 0xFFFFFFFF
        for _ in range(frames):
            if lateness is not None:  # the real send instant, not the loop's cached clock
                lateness.append(time.monotonic() - (self._start + self._frame * self.ptime))
            payload = source.next_frame(self.codec, size)
            if payload is None:
                self._finish(stopped=False)
                return
            self.send(payload, self._next_ts, marker=self._marker)
            self._marker = False
            self._frame += 1
            self._next_ts = (self._next_ts + size) & 0xFFFFFFFF
        self._pacer_key = self._pacer.schedule(self, self._start + self._frame * self.ptime)

    def send_digit(self, digit: str, duration: float = 0.1) -> None:
        """Send one RFC 4733 event (three end packets) paced at ptime; needs event_pt."""
        if self.event_pt is None:
            raise ValueError("the peer did not negotiate telephone-event; cannot send RFC 4733")
        start = self.timestamp_at(self.loop.time())
        steps = max(1, round(duration / self.ptime))
        for step in range(steps + 3):
            end = step >= steps
            length = min(step + 1, steps) * self.frame_samples
            payload = build_event(digit, end, length)
            self.loop.call_later(min(step, steps) * self.ptime + max(0, step - steps) * 0.001,
                                 self.send, payload, start, self.event_pt, step == 0)

    def _send_rtcp(self) -> None:
        self._rtcp_timer = None
        if self.closed or self.remote_rtcp is None or self._rtcp_transport is None:
            return
        report = rtp.sender_report(self.ssrc, self.timestamp_at(self.loop.time()),
                                   self.stats.sent_packets, self.stats.sent_octets)
        self._rtcp_transport.sendto(report, self.remote_rtcp)
        self._rtcp_timer = self.loop.call_at(self.loop.time() + RTCP_INTERVAL, self._send_rtcp)

    # ------------------------------------------------------------------------- receiving

    def _on_datagram(self, data: bytes, addr: Addr) -> None:
        if rtp.is_rtcp(data):  # rtcp-mux peers (RFC 5761)
            self._on_rtcp(data, addr)
            return
        try:
            packet = rtp.parse(data)
        except rtp.RtpError:
            self.stats.bad_packets += 1
            return
        if packet.pt != self.pt and packet.pt != self.event_pt and packet.pt not in (0, 8, 13):
            self.stats.bad_packets += 1  # not a payload type of this session
            return
        if self.symmetric and addr != self.remote:
            self.remote = addr
            self.remote_rtcp = (addr[0], addr[1] + 1)
            self._latched = True
        stats = self.stats
        stats.received_packets += 1
        stats.received_octets += len(packet.payload)
        arrival = round((self.loop.time() - self._epoch) * 8000)
        transit = arrival - packet.timestamp
        if stats._transit is not None:
            d = abs(transit - stats._transit)
            stats.jitter += (d - stats.jitter) / 16.0
        stats._transit = transit
        if self.on_packet is not None:
            self.on_packet(packet)
        if packet.pt == self.event_pt:
            digit = self._events.feed(packet.timestamp, packet.payload)
            if digit and self.on_digit is not None:
                for one in digit:
                    self.on_digit(one)
        elif self.on_audio is not None:
            self.on_audio(packet)

    def _on_rtcp(self, data: bytes, addr: Addr) -> None:
        if self.symmetric:
            self.remote_rtcp = addr

    def close(self) -> None:
        """Stop sending, release the ports; a flush reports a digit whose end was lost."""
        if self.closed:
            return
        self.closed = True
        self.stop()
        if self._rtcp_timer is not None:
            self._rtcp_timer.cancel()
        digit = self._events.flush()
        if digit and self.on_digit is not None:
            self.on_digit(digit)
        for transport, sock in ((self._rtp_transport, self._rtp_sock),
                                (self._rtcp_transport, self._rtcp_sock)):
            if transport is not None:
                transport.close()
            else:
                with contextlib.suppress(OSError):
                    sock.close()


class Silence:
    """A source of `seconds` of G.711 silence (a pause inside a prompt list)."""

    def __init__(self, seconds: float) -> None:
        self.remaining = round(seconds * 8000)

    def next_frame(self, codec: Codec, size: int) -> bytes | None:
        if self.remaining <= 0:
            return None
        self.remaining -= size
        return bytes([SILENCE[codec]]) * size
