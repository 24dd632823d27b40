"""G.711 µ-law and A-law (ITU-T G.711), vectorised with numpy lookup tables.

Encoding goes through a 65 536-entry table indexed by the 16-bit sample, so a 20 ms frame
(160 samples) costs one numpy fancy-index; decoding is a 256-entry table. The tables are
built once from the reference bit-level algorithm, so they are exact by construction.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Codec = Literal["PCMU", "PCMA"]

_QUANT = 0x0F


def _segment(values: npt.NDArray[np.int32], ends: tuple[int, ...]) -> npt.NDArray[np.int32]:
    """Index of the first segment end >= value (8 when beyond the last)."""
    return np.searchsorted(np.array(ends, dtype=np.int32), values, side="left").astype(np.int32)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit, as in the Sun reference
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + 0x21
    seg = _segment(magnitude, (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF))
    code = (seg << 4) | ((magnitude >> (np.minimum(seg, 7) + 1)) & _QUANT)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & _QUANT) << 3) + 0x84) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13-bit
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    pcm = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = _segment(pcm, (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = (seg << 4) | ((pcm >> shift) & _QUANT)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    t = (code & _QUANT) << 4
    seg = (code & 0x70) >> 4
    shifted = (t + 0x108) << np.maximum(seg - 1, 0)
    t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, shifted))
    return np.where(code & 0x80, t, -t).astype(np.int16)


_ENCODE: dict[Codec, npt.NDArray[np.uint8]] = {
    "PCMU": _ulaw_encode_table(),
    "PCMA": _alaw_encode_table(),
}
_DECODE: dict[Codec, npt.NDArray[np.int16]] = {
    "PCMU": _ulaw_decode_table(),
    "PCMA": _alaw_decode_table(),
}
SILENCE: dict[Codec, int] = {"PCMU": 0xFF, "PCMA": 0xD5}


def encode(pcm: npt.NDArray[np.int16], codec: Codec) -> bytes:
    """16-bit linear samples -> G.711 bytes."""
    index = pcm.astype(np.int32) + 32768
    return bytes(_ENCODE[codec][index].tobytes())


def decode(payload: bytes, codec: Codec) -> npt.NDArray[np.int16]:
    """G.711 bytes -> 16-bit linear samples."""
    return _DECODE[codec][np.frombuffer(payload, dtype=np.uint8)]


def _translation(source: Codec, target: Codec) -> bytes:
    return bytes(_ENCODE[target][_DECODE[source].astype(np.int32) + 32768].tobytes())


_TRANSLATE: dict[tuple[Codec, Codec], bytes] = {
    ("PCMU", "PCMA"): _translation("PCMU", "PCMA"),
    ("PCMA", "PCMU"): _translation("PCMA", "PCMU"),
}


def transcode(payload: bytes, source: Codec, target: Codec) -> bytes:
    """Convert between µ-law and A-law when two legs chose differently: one 256-byte
    translation table (decode then encode, precomputed), applied by `bytes.translate`."""
    if source == target:
        return payload
    return payload.translate(_TRANSLATE[(source, target)])
