"""Media anchoring: forward RTP between two endpoints, optionally recording both sides.

Each direction is rewritten to look like one continuous stream from the sending endpoint:
our SSRC, our sequence numbers, and timestamps shifted to continue the endpoint's own clock
(so a phone that heard our ringback sees no jump when the agent's audio replaces it).
A peer changing SSRC mid-call (a transfer on its side) starts a new talkspurt with the
marker bit. G.711 laws are transcoded when the two legs negotiated different ones, and
telephone-events are passed with the other leg's payload type (dropped if it has none).
"""

from __future__ import annotations

from pathlib import Path

from legato.media import g711
from legato.media.audio import write_wav
from legato.media.capture import Capture
from legato.media.endpoint import RtpEndpoint
from legato.media.rtp import RtpPacket


class _Direction:
    __slots__ = ("capture", "offset", "source", "src", "start", "target")

    def __init__(self, src: RtpEndpoint, target: RtpEndpoint, capture: Capture | None) -> None:
        self.src = src
        self.target = target
        self.source: int | None = None  # the SSRC we last forwarded
        self.offset = 0
        self.capture = capture
        self.start = src.loop.time()

    def forward(self, packet: RtpPacket) -> None:
        src, target = self.src, self.target
        marker = packet.marker
        if packet.ssrc != self.source:
            self.source = packet.ssrc
            now_ts = target.timestamp_at(target.loop.time())
            self.offset = (now_ts - packet.timestamp) & 0xFFFFFFFF
            marker = True
        timestamp = (packet.timestamp + self.offset) & 0xFFFFFFFF
        if packet.pt == src.event_pt:
            if target.event_pt is not None:
                target.send(packet.payload, timestamp, target.event_pt, marker)
            return
        codec = g711_of(src, packet.pt)
        if codec is None:
            return  # comfort noise or a stray type: nothing to forward
        payload = g711.transcode(packet.payload, codec, target.codec)
        target.send(payload, timestamp, target.pt, marker)
        if self.capture is not None:
            arrival = round((src.loop.time() - self.start) * 8000)
            self.capture.add(packet, codec, arrival)


def g711_of(endpoint: RtpEndpoint, pt: int) -> g711.Codec | None:
    if pt == endpoint.pt:
        return endpoint.codec
    return "PCMU" if pt == 0 else "PCMA" if pt == 8 else None


class Relay:
    """Bridges the media of two endpoints until `stop()`; records when given a path.

    Starting a relay stops whatever each endpoint was playing (ringback, a prompt).
    """

    def __init__(self, a: RtpEndpoint, b: RtpEndpoint, record_to: str | Path | None = None
                 ) -> None:
        self.a, self.b = a, b
        self.record_to = Path(record_to) if record_to else None
        captures = (Capture(), Capture()) if self.record_to else (None, None)
        self._ab = _Direction(a, b, captures[0])
        self._ba = _Direction(b, a, captures[1])
        a.stop()
        b.stop()
        a.on_packet = self._ab.forward
        b.on_packet = self._ba.forward

    def stop(self) -> Path | None:
        """Stop forwarding; write the recording (left: leg a, right: leg b) and return its path."""
        if self.a.on_packet == self._ab.forward:
            self.a.on_packet = None
        if self.b.on_packet == self._ba.forward:
            self.b.on_packet = None
        path, self.record_to = self.record_to, None
        if path is None:
            return None
        left, right = self._ab.capture, self._ba.capture
        assert left is not None and right is not None
        write_wav(str(path), [left.samples(), right.samples()])
        return path
