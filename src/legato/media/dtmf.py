"""DTMF from RFC 4733 telephone-events and from SIP INFO (application/dtmf-relay).

An RFC 4733 key press is a run of packets sharing one RTP timestamp; the last three carry
the end bit. `EventReceiver` reports a digit once, at its first end packet (or, if every end
packet was lost, when the next event starts), so retransmitted ends are counted once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EVENT_DIGITS = "0123456789*#ABCD"


class DtmfError(ValueError):
    """A DTMF payload or INFO body that cannot be read; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        return EVENT_DIGITS[self.event] if self.event < len(EVENT_DIGITS) else None


def parse_event(payload: bytes) -> TelephoneEvent:
    """Decode a 4-byte RFC 4733 §2.3 event payload."""
    if len(payload) < 4:
        raise DtmfError(f"telephone-event payload of {len(payload)} bytes, need 4")
    event, flags, duration = struct.unpack_from("!BBH", payload)
    return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


def build_event(digit: str, end: bool, duration: int, volume: int = 10) -> bytes:
    """Encode one telephone-event payload for `digit` (used to send DTMF and in tests)."""
    index = EVENT_DIGITS.find(digit.upper())
    if index < 0 or len(digit) != 1:
        raise DtmfError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
    return struct.pack("!BBH", index, (0x80 if end else 0) | (volume & 0x3F), duration & 0xFFFF)


class EventReceiver:
    """Turns a stream of telephone-event packets into digits, each exactly once."""

    __slots__ = ("_current", "_done")

    def __init__(self) -> None:
        self._current: tuple[int, str] | None = None  # (timestamp, digit) still pressed
        self._done: set[int] = set()  # timestamps of events already reported (bounded)

    def feed(self, timestamp: int, payload: bytes) -> str | None:
        """The digit completed by this packet, or None (still pressed, repeat, not a digit)."""
        try:
            event = parse_event(payload)
        except DtmfError:
            return None
        digit = event.digit
        if digit is None or timestamp in self._done:
            return None
        result: str | None = None
        if self._current is not None and self._current[0] != timestamp:
            # a new event began while the previous one never showed an end packet
            result = self._finish(self._current[0], self._current[1])
        if event.end:
            self._current = None
            finished = self._finish(timestamp, digit)
            return result + finished if result else finished
        self._current = (timestamp, digit)
        return result

    def flush(self) -> str | None:
        """A digit whose end packets were all lost, reported when the stream goes quiet."""
        if self._current is None:
            return None
        timestamp, digit = self._current
        self._current = None
        return self._finish(timestamp, digit)

    def _finish(self, timestamp: int, digit: str) -> str:
        self._done.add(timestamp)
        if len(self._done) > 64:
            self._done = set(sorted(self._done)[-32:])
        return digit


def parse_dtmf_relay(body: bytes | str) -> str:
    """The digit of a SIP INFO `application/dtmf-relay` body (`Signal=1\\r\\nDuration=160`).

    Also takes `application/dtmf` bodies, which are just the digit.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    fields: dict[str, str] = {}
    for line in text.replace("\r", "\n").split("\n"):
        if "=" in line:
            key, _, value = line.partition("=")
            fields[key.strip().lower()] = value.strip()
    if "signal" in fields:
        signal = fields["signal"]
    elif text.strip() and "=" not in text:
        signal = text.strip()
    else:
        raise DtmfError("dtmf-relay body has no Signal= line")
    if signal == "10":  # some phones send the event number for * and #
        signal = "*"
    elif signal == "11":
        signal = "#"
    if len(signal) != 1 or signal.upper() not in EVENT_DIGITS:
        raise DtmfError(f"dtmf-relay Signal={signal!r} is not a DTMF digit (0-9, *, #, A-D)")
    return signal.upper()
