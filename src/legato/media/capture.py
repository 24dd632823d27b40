"""Received audio placed by RTP timestamp, so reordering and jitter do not garble it.

Used by the recorder and by tests that check what a peer actually heard. Lost packets
leave silence; a late packet still lands where it belongs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from legato.media import g711
from legato.media.g711 import Codec
from legato.media.rtp import RtpPacket

MAX_SECONDS = 4 * 3600  # a runaway timestamp must not allocate gigabytes


class Capture:
    """Decoded samples of one RTP stream, indexed from `start` (a sample offset)."""

    def __init__(self, start: int = 0) -> None:
        self.start = start
        self._buffer = np.zeros(8000, dtype=np.int16)
        self.length = 0
        self._first_ts: int | None = None
        self._ssrc: int | None = None
        self._base = 0  # sample position of _first_ts

    def add(self, packet: RtpPacket, codec: Codec | None, arrival: int | None = None) -> None:
        """Decode and place one audio packet; `codec` None means "by its payload type".

        `arrival` (samples since the capture began) places a new source in time, so two
        captures of one call line up; without it a new source follows the previous one.
        """
        law = codec or g711_codec(packet.pt)
        if law is None:
            return
        if self._ssrc != packet.ssrc:  # a new source: continue where the old one ended
            self._ssrc = packet.ssrc
            self._first_ts = packet.timestamp
            self._base = self.length if arrival is None else max(self.length, arrival)
        assert self._first_ts is not None
        offset = (packet.timestamp - self._first_ts) & 0xFFFFFFFF
        if offset >= 0x80000000:  # before the source's first packet: it was reordered
            early = 0x100000000 - offset
            if early > 8000 or self._base + self.length + early > MAX_SECONDS * 8000:
                return  # too early to be jitter: a stray packet
            self._shift(early)
            self._first_ts = packet.timestamp
            offset = 0
        self.write(self._base + offset, g711.decode(packet.payload, law))

    def write(self, position: int, samples: npt.NDArray[np.int16]) -> None:
        end = position + len(samples)
        if end > MAX_SECONDS * 8000:
            return
        if end > len(self._buffer):
            grown = np.zeros(max(end, 2 * len(self._buffer)), dtype=np.int16)
            grown[: self.length] = self._buffer[: self.length]
            self._buffer = grown
        self._buffer[position:end] = samples
        self.length = max(self.length, end)

    def _shift(self, samples: int) -> None:
        """Make room for `samples` before the current source's first packet."""
        current = self._buffer[self._base : self.length].copy()
        self.write(self._base + samples, current)
        self._buffer[self._base : self._base + samples] = 0

    def samples(self) -> npt.NDArray[np.int16]:
        return np.concatenate([np.zeros(self.start, dtype=np.int16), self._buffer[: self.length]])


def g711_codec(pt: int) -> Codec | None:
    return "PCMU" if pt == 0 else "PCMA" if pt == 8 else None
