"""Call-progress tones for early media: ringback as a looping frame source.

The cadence is a list of (seconds on, seconds off); the tone a sum of sine frequencies.
Defaults are the ETSI/ITU 425 Hz 1 s on, 4 s off; North America is 440+480 Hz 2 s on,
4 s off (`Tone.north_america()`). One cadence cycle is rendered once, then looped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from legato.media.audio import RATE, Audio
from legato.media.g711 import Codec


@dataclass(frozen=True, slots=True)
class ToneSpec:
    frequencies: tuple[float, ...] = (425.0,)
    cadence: tuple[tuple[float, float], ...] = ((1.0, 4.0),)
    level_dbfs: float = -13.0

    @classmethod
    def north_america(cls) -> ToneSpec:
        return cls((440.0, 480.0), ((2.0, 4.0),), -16.0)

    @classmethod
    def parse(cls, text: str) -> ToneSpec:
        """`425/1.0,4.0` or `440+480/2,4` (frequencies / on,off[,on,off...]) for config."""
        freqs, sep, cadence = text.partition("/")
        try:
            frequencies = tuple(float(f) for f in freqs.split("+"))
            times = [float(t) for t in cadence.split(",")] if sep else [1.0, 0.0]
        except ValueError:
            raise ValueError(f"ringback tone: expected like 425/1,4 or 440+480/2,4, got {text!r}"
                             ) from None
        bad_freq = not all(0 < f < 4000 for f in frequencies)
        if len(times) % 2 or any(t < 0 for t in times) or bad_freq:
            raise ValueError(
                f"ringback tone {text!r}: frequencies must be 0-4000 Hz and times on,off pairs")
        return cls(frequencies, tuple(zip(times[::2], times[1::2], strict=True)))

    def render(self) -> Audio:
        """One full cadence cycle as G.711."""
        amplitude = 10 ** (self.level_dbfs / 20) / max(1, len(self.frequencies))
        pieces = []
        for on, off in self.cadence:
            t = np.arange(round(on * RATE)) / RATE
            tone = sum(np.sin(2 * np.pi * f * t) for f in self.frequencies)
            pieces.append(np.asarray(tone, dtype=np.float64) * amplitude)
            pieces.append(np.zeros(round(off * RATE)))
        samples = np.concatenate(pieces) if pieces else np.zeros(160)
        return Audio.from_pcm(np.round(samples * 32767).astype(np.int16))


class Ringback:
    """An endless frame source looping one rendered cadence cycle (until stopped)."""

    def __init__(self, spec: ToneSpec | None = None, audio: Audio | None = None) -> None:
        self.audio = audio if audio is not None else (spec or ToneSpec()).render()
        self._offset = 0

    def next_frame(self, codec: Codec, size: int) -> bytes | None:
        data = self.audio.law(codec)
        if not data:
            return None
        end = self._offset + size
        frame = data[self._offset : end]
        while len(frame) < size:
            frame += data[: size - len(frame)]
        self._offset = end % len(data)
        return frame
