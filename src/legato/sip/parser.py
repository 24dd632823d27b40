"""Strict, bounded SIP parser: datagrams (RFC 3261 §18.3 UDP rules) and byte streams (TCP).

Only the framing and the headers every layer needs are checked here (start line, header
syntax, the five mandatory headers, CSeq/method agreement, Content-Length). Everything else
is parsed lazily by the typed accessors of `Message`. Every failure is a
`RemoteProtocolError` whose `reason` names the rule; when the start line and headers were
readable, `partial` holds the message so the endpoint can answer 400 with that reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from legato.sip.errors import RemoteProtocolError
from legato.sip.fields import CSeq
from legato.sip.headers import CANONICAL, LIST_HEADERS, split_list
from legato.sip.headers import digits as _digits
from legato.sip.message import Message, Request, Response

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+\Z")
_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard bounds on what a peer may make us hold in memory or parse."""

    max_message_size: int = 65535
    max_headers: int = 128
    max_line_length: int = 8192

    def __post_init__(self) -> None:
        if min(self.max_message_size, self.max_headers, self.max_line_length) <= 0:
            raise ValueError("SIP parser limits must be positive")


DEFAULT_LIMITS = Limits()


def parse_message(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, stream: bool = False
) -> Request | Response:
    """Parse one whole message (a UDP datagram, or one framed message from a stream).

    Datagram rules (RFC 3261 §18.3): the body is the rest of the datagram, cut to
    Content-Length when that is shorter; a Content-Length longer than the rest is an error.
    """
    if len(data) > limits.max_message_size:
        raise RemoteProtocolError(
            f"message of {len(data)} bytes exceeds the limit of {limits.max_message_size}", 513
        )
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head, body = data[:end], data[end + 4 :]
    else:
        # Tolerate a message with no body and no blank line at the end of the datagram.
        head, body = data.rstrip(b"\r\n"), b""
    message = _parse_head(head, limits)
    length_text = message.get("Content-Length")
    if length_text is not None:
        length = _content_length(length_text, message)
        if length > len(body):
            raise RemoteProtocolError(
                f"Content-Length {length} exceeds the {len(body)} body bytes received",
                partial=message,
            )
        body = body[:length]
    elif stream:
        raise RemoteProtocolError(
            "Content-Length is mandatory on stream transports", partial=message
        )
    message.body = body
    return message


def _content_length(text: str, message: Message) -> int:
    text = text.strip()
    if not _digits(text):
        raise RemoteProtocolError(f"Content-Length: not a number: {text!r}", partial=message)
    return int(text)


def _parse_head(head: bytes, limits: Limits) -> Request | Response:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"header section is not UTF-8 (byte {exc.start})") from None
    # Leading CRLFs before a message are allowed (RFC 3261 §7.5).
    text = text.lstrip("\r\n")
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    if not lines or not lines[0]:
        raise RemoteProtocolError("empty message")
    if len(lines) > limits.max_headers + 1 and _count_headers(lines) > limits.max_headers:
        raise RemoteProtocolError(f"more than {limits.max_headers} header lines")
    start = lines[0]
    if len(start) > limits.max_line_length:
        raise RemoteProtocolError(f"start line longer than {limits.max_line_length}", 414)
    message = _parse_start_line(start)
    headers = message.headers
    max_line = limits.max_line_length
    if len(text) <= max_line and "\n " not in text and "\n\t" not in text:
        # Fast path (almost every message): no folding, and no line can be over the limit.
        known = _NAMES.get
        for line in lines[1:]:
            raw_name, colon, raw_value = line.partition(":")
            if not colon:
                if not line:
                    raise RemoteProtocolError("empty line inside the header section")
                raise RemoteProtocolError(f"header line without a colon: {line[:60]!r}")
            name = known(raw_name) or _learn_name(raw_name)
            value = raw_value.strip()
            if "," in value and name in LIST_HEADERS:
                headers.extend((name, part) for part in split_list(value))
            else:
                headers.append((name, value))
    else:
        _parse_folded(lines, headers, max_line)
    if len(headers) > limits.max_headers:
        raise RemoteProtocolError(f"more than {limits.max_headers} header values")
    _check_mandatory(message)
    return message


def _parse_folded(lines: list[str], headers: list[tuple[str, str]], max_line: int) -> None:
    """The general header loop: folded (LWS) continuation lines and per-line limits."""
    name = ""
    value = ""
    for line in lines[1:]:
        if len(line) > max_line:
            raise RemoteProtocolError(f"header line longer than {max_line} characters")
        if not line:
            raise RemoteProtocolError("empty line inside the header section")
        first = line[0]
        if first == " " or first == "\t":
            # Folded continuation (LWS): joins the previous header with one space.
            if not name:
                raise RemoteProtocolError("continuation line before any header")
            value = f"{value} {line.strip()}" if value else line.strip()
            if len(value) > max_line:
                raise RemoteProtocolError(f"folded header longer than {max_line} characters")
            continue
        if name:
            if "," in value and name in LIST_HEADERS:
                headers.extend((name, part) for part in split_list(value))
            else:
                headers.append((name, value))
        raw_name, colon, raw_value = line.partition(":")
        if not colon:
            raise RemoteProtocolError(f"header line without a colon: {line[:60]!r}")
        name = CANONICAL.get(raw_name.lower()) or _check_name(raw_name)
        value = raw_value.strip()
    if name:
        if "," in value and name in LIST_HEADERS:
            headers.extend((name, part) for part in split_list(value))
        else:
            headers.append((name, value))


def _count_headers(lines: list[str]) -> int:
    return sum(1 for line in lines[1:] if line and line[0] not in " \t")


# Header names as spelled on the wire -> canonical name. Peers spell the same few names the
# same way every time, so one dict hit replaces lower() + lookup; bounded against floods.
_NAMES: dict[str, str] = {}
_NAMES_MAX = 4096


def _learn_name(raw: str) -> str:
    name = CANONICAL.get(raw.lower()) or _check_name(raw)
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[raw] = name
    return name


def _check_name(raw: str) -> str:
    name = raw.rstrip(" \t")
    canonical = CANONICAL.get(name.lower())
    if canonical is not None:
        return canonical
    if not _TOKEN.match(name):
        raise RemoteProtocolError(f"invalid header name {raw[:40]!r}")
    return name


def _parse_start_line(line: str) -> Request | Response:
    is_response = line.startswith("SIP/")
    parts = line.split(" ", 2) if is_response else line.split(" ")
    if len(parts) != 3:
        raise RemoteProtocolError(f"malformed start line {line[:80]!r}")
    if is_response:
        version, code, phrase = parts
        if version != "SIP/2.0":
            raise RemoteProtocolError(f"unsupported version {version!r}", 505)
        if len(code) != 3 or not _digits(code) or not 100 <= int(code) <= 699:
            raise RemoteProtocolError(f"bad status code {code!r}")
        response = Response.__new__(Response)
        response.status = int(code)
        response.reason = phrase
        response.headers = []
        response.body = b""
        response._cache = {}
        return response
    method, uri, version = parts
    if version != "SIP/2.0":
        if version.upper() == "SIP/2.0":
            version = "SIP/2.0"
        else:
            raise RemoteProtocolError(f"unsupported version {version[:20]!r}", 505)
    if not _TOKEN.match(method):
        raise RemoteProtocolError(f"invalid method {method[:20]!r}")
    if ":" not in uri or " " in uri or "\t" in uri or "<" in uri:
        raise RemoteProtocolError(f"malformed Request-URI {uri[:80]!r}")
    request = Request.__new__(Request)
    request.method = method
    request.uri = uri
    request.headers = []
    request.body = b""
    request._cache = {}
    return request


_SINGLE = frozenset(("Call-ID", "CSeq", "From", "To", "Content-Length", "Max-Forwards"))


def _check_mandatory(message: Request | Response) -> None:
    headers = message.headers
    seen = dict(headers)  # the last value per name: the only one, for single headers
    if len(seen) != len(headers):  # a name repeats: list headers may, single ones may not
        singles = [n for n, _ in headers if n in _SINGLE]
        if len(singles) != len(set(singles)):
            n = next(n for i, n in enumerate(singles) if n in singles[:i])
            raise RemoteProtocolError(f"{n} header appears more than once", partial=message)
    for name in _MANDATORY:
        if name not in seen:
            raise RemoteProtocolError(f"missing mandatory {name} header", partial=message)
    try:
        cseq = message._cache["CSeq"] = CSeq.parse(seen["CSeq"])
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(exc.reason, partial=message) from None
    if isinstance(message, Request):
        if cseq.method != message.method:
            raise RemoteProtocolError(
                f"CSeq method {cseq.method} does not match request method {message.method}",
                partial=message,
            )
        max_forwards = seen.get("Max-Forwards")
        if max_forwards is not None:
            max_forwards = max_forwards.strip()
            if not _digits(max_forwards) or int(max_forwards) > 255:
                raise RemoteProtocolError(
                    f"Max-Forwards: must be 0..255, got {max_forwards!r}", partial=message
                )


class StreamParser:
    """Frames messages out of a byte stream (TCP): partial reads and several per chunk.

    Keep-alive CRLFs between messages (RFC 5626 §3.5.1) are skipped. After an error the
    stream cannot be resynchronised: the caller should close the connection.
    """

    __slots__ = ("_buffer", "_limits")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Request | Response]:
        """Add received bytes; return every message now complete (maybe none)."""
        self._buffer += data
        messages: list[Request | Response] = []
        buf = self._buffer
        while True:
            skip = 0
            while skip < len(buf) and buf[skip] in (13, 10):
                skip += 1
            if skip:
                del buf[:skip]
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self._limits.max_message_size:
                    raise RemoteProtocolError(
                        f"header section exceeds {self._limits.max_message_size} bytes", 513
                    )
                return messages
            head = bytes(buf[:end])
            message = _parse_head(head, self._limits)
            length_text = message.get("Content-Length")
            if length_text is None:
                raise RemoteProtocolError(
                    "Content-Length is mandatory on stream transports", partial=message
                )
            length = _content_length(length_text, message)
            total = end + 4 + length
            if total > self._limits.max_message_size:
                raise RemoteProtocolError(
                    f"message of {total} bytes exceeds the limit of "
                    f"{self._limits.max_message_size}",
                    513,
                    partial=message,
                )
            if len(buf) < total:
                return messages
            message.body = bytes(buf[end + 4 : total])
            del buf[:total]
            messages.append(message)

    @property
    def buffered(self) -> int:
        return len(self._buffer)
