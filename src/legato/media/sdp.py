"""SDP (RFC 4566) for one audio stream, and the offer/answer rules of RFC 3264.

Legato speaks G.711 (PCMU payload type 0, PCMA 8) plus `telephone-event` (RFC 4733) for
DTMF. Parsing is strict where a mistake would break audio (the connection address, the
port, the payload types) and lenient elsewhere (unknown attributes are kept, not refused);
every error names the line number and the rule broken.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field, replace
from typing import Literal

from legato.media.g711 import Codec

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
DIRECTIONS: tuple[Direction, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")
STATIC_PT: dict[int, Codec] = {0: "PCMU", 8: "PCMA"}
TELEPHONE_EVENT = "telephone-event"
_REVERSE: dict[Direction, Direction] = {
    "sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive",
}
_session_versions = itertools.count(1)


class SdpError(ValueError):
    """A session description that cannot be used; the message names the line and the rule."""

    def __init__(self, line: int | None, rule: str) -> None:
        self.line = line
        self.rule = rule
        super().__init__(f"SDP line {line}: {rule}" if line else f"SDP: {rule}")


@dataclass(frozen=True, slots=True)
class RtpMap:
    """One payload type of the m= line with its rtpmap (static types get their defaults)."""

    pt: int
    encoding: str
    clock_rate: int = 8000
    fmtp: str | None = None


@dataclass(slots=True)
class AudioStream:
    """The audio m= line of a description, with what Legato needs from its attributes."""

    port: int
    formats: list[RtpMap]
    address: str | None = None  # media-level c=
    direction: Direction = "sendrecv"
    ptime: int | None = None
    rtcp_port: int | None = None
    other: list[str] = field(default_factory=list)  # attributes kept verbatim (a=...)

    def codec(self, pt: int) -> Codec | None:
        """The G.711 codec a payload type maps to in this stream, if any."""
        for fmt in self.formats:
            if fmt.pt == pt:
                name = fmt.encoding.upper()
                return name if name in ("PCMU", "PCMA") else None  # type: ignore[return-value]
        return None

    def event_pt(self) -> int | None:
        """The payload type of telephone-event at 8 kHz, if offered."""
        for fmt in self.formats:
            if fmt.encoding.lower() == TELEPHONE_EVENT and fmt.clock_rate == 8000:
                return fmt.pt
        return None


@dataclass(slots=True)
class SessionDescription:
    """A parsed SDP body: the origin, the session connection and the first audio stream."""

    origin_user: str
    session_id: int
    session_version: int
    origin_address: str
    address: str | None  # session-level c=
    audio: AudioStream | None
    session_name: str = "-"
    other_media: list[str] = field(default_factory=list)  # m= lines we do not handle

    @property
    def media_address(self) -> str:
        """Where the audio goes: the media-level c= else the session-level one."""
        address = (self.audio.address if self.audio else None) or self.address
        if address is None:
            raise SdpError(None, "no c= line for the audio stream (RFC 4566 §5.7)")
        return address

    @property
    def on_hold(self) -> bool:
        """The peer put us on hold: it will not receive (sendonly/inactive, or c=0.0.0.0)."""
        if self.audio is None:
            return False
        return self.audio.direction in ("sendonly", "inactive") or self.media_address == "0.0.0.0"

    def encode(self) -> bytes:
        """Serialise with CRLF line ends, in the order RFC 4566 §5 requires."""
        family = "IP6" if ":" in self.origin_address else "IP4"
        lines = [
            "v=0",
            f"o={self.origin_user} {self.session_id} {self.session_version} IN {family} "
            f"{self.origin_address}",
            f"s={self.session_name}",
        ]
        if self.address:
            lines.append(f"c=IN {'IP6' if ':' in self.address else 'IP4'} {self.address}")
        lines.append("t=0 0")
        audio = self.audio
        if audio is not None:
            pts = " ".join(str(f.pt) for f in audio.formats)
            lines.append(f"m=audio {audio.port} RTP/AVP {pts}")
            if audio.address:
                lines.append(f"c=IN {'IP6' if ':' in audio.address else 'IP4'} {audio.address}")
            for fmt in audio.formats:
                lines.append(f"a=rtpmap:{fmt.pt} {fmt.encoding}/{fmt.clock_rate}")
                if fmt.fmtp:
                    lines.append(f"a=fmtp:{fmt.pt} {fmt.fmtp}")
            if audio.ptime:
                lines.append(f"a=ptime:{audio.ptime}")
            lines.append(f"a={audio.direction}")
        # media we refuse are answered with port 0 (RFC 3264 §6)
        lines.extend(self.other_media)
        return ("\r\n".join(lines) + "\r\n").encode()


def _address(value: str, line: int) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(line, f"c= must be 'IN IP4|IP6 <address>', got {value!r}")
    address = parts[2].split("/")[0]  # drop a multicast TTL
    try:
        ipaddress.ip_address(address)
    except ValueError:
        if not address or any(c.isspace() for c in address):
            raise SdpError(line, f"c= address {address!r} is not an IP address or host") from None
    return address


def parse(body: bytes | str) -> SessionDescription:
    """Parse an SDP body; raise `SdpError` naming the line for anything unusable."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    raw_lines = [line.rstrip("\r") for line in text.split("\n")]
    origin: tuple[str, int, int, str] | None = None
    session_address: str | None = None
    session_name = "-"
    audio: AudioStream | None = None
    current: AudioStream | None = None  # attributes after an audio m= belong to it
    in_media = False
    other_media: list[str] = []
    rtpmaps: dict[int, tuple[str, int]] = {}
    fmtps: dict[int, str] = {}
    pts: list[int] = []
    seen_version = False
    for number, line in enumerate(raw_lines, start=1):
        if not line.strip():
            continue
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(number, f"expected '<type>=<value>', got {line[:40]!r}")
        kind, value = line[0], line[2:]
        if not seen_version:
            if kind != "v" or value.strip() != "0":
                raise SdpError(number, "the first line must be v=0")
            seen_version = True
            continue
        if kind == "o":
            parts = value.split()
            if len(parts) != 6:
                raise SdpError(number, "o= needs 6 fields: user id version IN IP4|IP6 address")
            try:
                origin = (parts[0], int(parts[1]), int(parts[2]), parts[5])
            except ValueError:
                raise SdpError(number, "o= session id and version must be integers") from None
        elif kind == "s":
            session_name = value or "-"
        elif kind == "c":
            address = _address(value, number)
            if in_media:
                if current is not None:
                    current.address = address
            else:
                session_address = address
        elif kind == "m":
            in_media = True
            parts = value.split()
            if len(parts) < 4:
                raise SdpError(number, "m= needs: media port proto format...")
            if parts[0] != "audio" or audio is not None:
                current = None
                other_media.append(f"m={parts[0]} 0 {' '.join(parts[2:])}")
                continue
            if parts[2] not in ("RTP/AVP", "RTP/AVPF"):
                raise SdpError(number, f"audio transport {parts[2]!r} unsupported (RTP/AVP only)")
            try:
                port = int(parts[1].split("/")[0])
                pts = [int(p) for p in parts[3:]]
            except ValueError:
                raise SdpError(number, "m= port and payload types must be integers") from None
            if not 0 <= port <= 65535 or any(not 0 <= p <= 127 for p in pts):
                raise SdpError(number, "m= port must be 0-65535 and payload types 0-127")
            current = audio = AudioStream(port=port, formats=[])
        elif kind == "a" and current is not None:
            name, _, arg = value.partition(":")
            if name == "rtpmap":
                pt_text, _, encoding = arg.partition(" ")
                enc_parts = encoding.split("/")
                try:
                    rtpmaps[int(pt_text)] = (enc_parts[0], int(enc_parts[1]))
                except (ValueError, IndexError):
                    raise SdpError(
                        number, "a=rtpmap must be '<pt> <encoding>/<clock rate>'"
                    ) from None
            elif name == "fmtp":
                pt_text, _, params = arg.partition(" ")
                if pt_text.isdigit():
                    fmtps[int(pt_text)] = params
            elif name in DIRECTIONS:
                current.direction = name
            elif name == "ptime":
                try:
                    current.ptime = int(float(arg))
                except ValueError:
                    raise SdpError(number, "a=ptime must be a number of milliseconds") from None
            elif name == "rtcp":
                try:
                    current.rtcp_port = int(arg.split()[0])
                except (ValueError, IndexError):
                    raise SdpError(number, "a=rtcp must start with a port number") from None
            else:
                current.other.append(value)
    if not seen_version:
        raise SdpError(None, "empty description (no v=0 line)")
    if origin is None:
        raise SdpError(None, "no o= line (RFC 4566 §5.2)")
    if audio is not None:
        for pt in pts:
            if pt in rtpmaps:
                encoding, rate = rtpmaps[pt]
            elif pt in STATIC_PT:
                encoding, rate = STATIC_PT[pt], 8000
            else:
                encoding, rate = f"unknown{pt}", 0  # dynamic type without rtpmap: unusable
            audio.formats.append(RtpMap(pt, encoding, rate, fmtps.get(pt)))
        if audio.address is None and session_address is None:
            raise SdpError(None, "no c= line at session or audio level (RFC 4566 §5.7)")
    return SessionDescription(
        origin_user=origin[0], session_id=origin[1], session_version=origin[2],
        origin_address=origin[3], address=session_address, audio=audio,
        session_name=session_name, other_media=other_media,
    )


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What both sides agreed: the codec and its payload type, DTMF, direction, the peer."""

    codec: Codec
    pt: int
    event_pt: int | None
    direction: Direction  # ours
    remote_address: str
    remote_port: int
    ptime: int = 20


class NoCommonCodec(SdpError):
    """The offer has no G.711 audio: answer 488 Not Acceptable Here."""


def offer(
    address: str, port: int, codecs: tuple[Codec, ...] = ("PCMU", "PCMA"),
    direction: Direction = "sendrecv", event_pt: int = 101, session_id: int | None = None,
) -> SessionDescription:
    """Our offer: G.711 in preference order plus telephone-event 0-16."""
    formats = [RtpMap(0 if c == "PCMU" else 8, c) for c in codecs]
    formats.append(RtpMap(event_pt, TELEPHONE_EVENT, 8000, "0-16"))
    sid = session_id if session_id is not None else next(_session_versions)
    return SessionDescription(
        origin_user="legato", session_id=sid, session_version=sid, origin_address=address,
        address=address, audio=AudioStream(port, formats, direction=direction, ptime=20),
    )


def answer(
    remote: SessionDescription, address: str, port: int,
    codecs: tuple[Codec, ...] = ("PCMU", "PCMA"), session_id: int | None = None,
    version: int | None = None,
) -> tuple[SessionDescription, Negotiated]:
    """Answer an offer (RFC 3264 §6): the first offered G.711 codec we support, the offer's
    telephone-event type, and the reverse direction; other media are refused with port 0."""
    stream = remote.audio
    if stream is None or stream.port == 0:
        raise NoCommonCodec(None, "the offer has no active audio stream")
    chosen = next(
        (f for f in stream.formats if f.encoding.upper() in codecs and f.clock_rate == 8000),
        None,
    )
    if chosen is None:
        names = ", ".join(f.encoding for f in stream.formats) or "none"
        raise NoCommonCodec(None, f"no common codec: offered {names}; Legato takes PCMU/PCMA")
    codec: Codec = chosen.encoding.upper()  # type: ignore[assignment]
    event_pt = stream.event_pt()
    formats = [replace(chosen, encoding=codec, fmtp=None)]
    if event_pt is not None:
        formats.append(RtpMap(event_pt, TELEPHONE_EVENT, 8000, "0-16"))
    direction = _REVERSE[stream.direction]
    sid = session_id if session_id is not None else next(_session_versions)
    ours = SessionDescription(
        origin_user="legato", session_id=sid, session_version=sid if version is None else version,
        origin_address=address,
        address=address, audio=AudioStream(port, formats, direction=direction, ptime=20),
        other_media=remote.other_media,
    )
    negotiated = Negotiated(
        codec=codec, pt=chosen.pt, event_pt=event_pt, direction=direction,
        remote_address=remote.media_address, remote_port=stream.port, ptime=stream.ptime or 20,
    )
    return ours, negotiated


def accept_answer(ours: SessionDescription, remote: SessionDescription) -> Negotiated:
    """Read the answer to our offer: the codec the peer picked must be one we offered."""
    stream = remote.audio
    if stream is None or stream.port == 0 or not stream.formats:
        raise NoCommonCodec(None, "the answer refused the audio stream (port 0 or no format)")
    offered = {f.pt for f in ours.audio.formats} if ours.audio else set()
    for fmt in stream.formats:
        codec = stream.codec(fmt.pt)
        if codec is not None and fmt.pt in offered:
            return Negotiated(
                codec=codec, pt=fmt.pt, event_pt=stream.event_pt(),
                direction=ours.audio.direction if ours.audio else "sendrecv",
                remote_address=remote.media_address, remote_port=stream.port,
                ptime=stream.ptime or 20,
            )
    raise NoCommonCodec(None, "the answer names no G.711 payload type we offered")


def hold(description: SessionDescription) -> SessionDescription:
    """A re-offer putting the peer on hold (RFC 3264 §8.4: sendonly, new version)."""
    audio = description.audio
    if audio is None:
        raise SdpError(None, "nothing to hold: no audio stream")
    return replace(
        description, session_version=description.session_version + 1,
        audio=replace(audio, direction="sendonly"),
    )
