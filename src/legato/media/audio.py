"""Audio held as 8 kHz G.711 in both laws, so playing costs a slice, never a conversion.

`to_telephone` turns any WAV (any rate, width, channel count) into 8 kHz mono 16-bit;
it is the only place that resamples, and it runs once per prompt (the result is cached).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from scipy.io import wavfile  # type: ignore[import-untyped]
from scipy.signal import resample_poly  # type: ignore[import-untyped]

from legato.media import g711
from legato.media.g711 import Codec

RATE = 8000


class AudioError(ValueError):
    """An audio file Legato cannot play; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Audio:
    """A prompt ready to send: the same 8 kHz audio in µ-law and A-law."""

    pcmu: bytes
    pcma: bytes

    @classmethod
    def from_pcm(cls, pcm: npt.NDArray[np.int16]) -> Audio:
        return cls(g711.encode(pcm, "PCMU"), g711.encode(pcm, "PCMA"))

    def law(self, codec: Codec) -> bytes:
        return self.pcmu if codec == "PCMU" else self.pcma

    @property
    def seconds(self) -> float:
        return len(self.pcmu) / RATE

    def pcm(self) -> npt.NDArray[np.int16]:
        return g711.decode(self.pcmu, "PCMU")


def _normalise(data: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    """Samples of any WAV dtype as floats in [-1, 1) (8-bit WAV is unsigned)."""
    if data.dtype == np.uint8:
        return (data.astype(np.float64) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.integer):
        scale = float(np.iinfo(data.dtype).max) + 1.0  # type: ignore[type-var]
        return data.astype(np.float64) / scale
    return data.astype(np.float64)


def to_telephone(samples: npt.NDArray[np.generic], rate: int) -> npt.NDArray[np.int16]:
    """Any sample format, rate and channel count -> 8 kHz mono int16 (band-limited)."""
    floats = _normalise(np.asarray(samples))
    if floats.ndim == 2:
        floats = floats.mean(axis=1)
    if rate != RATE:
        ratio = Fraction(RATE, rate)
        floats = resample_poly(floats, ratio.numerator, ratio.denominator)
    return np.clip(np.round(floats * 32767.0), -32768, 32767).astype(np.int16)


def read_wav(data: bytes, name: str) -> npt.NDArray[np.int16]:
    """Decode a WAV file's bytes (PCM 8/16/24/32-bit or float) to telephone audio."""
    try:
        with warnings.catch_warnings():
            # espeak-ng --stdout streams: its header claims the maximum length
            warnings.filterwarnings("ignore", "Reached EOF prematurely", wavfile.WavFileWarning)
            rate, samples = wavfile.read(io.BytesIO(data))
    except (ValueError, EOFError) as exc:
        raise AudioError(f"prompt {name}: not a PCM or float WAV file ({exc})") from None
    if rate <= 0 or samples.size == 0:
        raise AudioError(f"prompt {name}: empty WAV (rate {rate}, {samples.size} samples)")
    return to_telephone(samples, rate)


def write_wav(path: str, channels: list[npt.NDArray[np.int16]], rate: int = RATE) -> None:
    """Write int16 channels (padded to the longest) as one multi-channel PCM WAV."""
    length = max((len(c) for c in channels), default=0)
    frame = np.zeros((length, len(channels)), dtype=np.int16)
    for index, channel in enumerate(channels):
        frame[: len(channel), index] = channel
    wavfile.write(path, rate, frame)
