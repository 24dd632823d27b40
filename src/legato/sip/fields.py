"""Typed views of the header values the stack itself reads: Via, name-addr, CSeq, Reason.

Each has `parse(text)` (raising `RemoteProtocolError` naming the header and the rule) and
`__str__` giving the wire form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from legato.sip.errors import RemoteProtocolError
from legato.sip.headers import digits as _digits
from legato.sip.uri import SipURI, format_params, parse_hostport, parse_params

_VIA = re.compile(
    r"\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9.!%*_+`'~-]+)\s+([^;\s]+(?:\s*:\s*\d+)?)\s*(;.*)?\Z",
    re.IGNORECASE | re.DOTALL,
)
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+\Z")
MAGIC_COOKIE = "z9hG4bK"
_TRANSPORTS = frozenset(("UDP", "TCP", "TLS", "SCTP", "WS", "WSS"))


@dataclass(slots=True)
class Via:
    """One Via value: `SIP/2.0/UDP host:port;branch=...;received=...;rport`."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        if text.startswith("SIP/2.0/"):
            # Fast path for the usual `SIP/2.0/UDP host:port;params` spelling.
            transport, space, rest = text[8:].partition(" ")
            sent_by, _, ptext = rest.partition(";")
            if space and (transport in _TRANSPORTS or _TOKEN.match(transport)):
                hostport = _SENT_BY.get(sent_by)
                if hostport is None and " " not in sent_by.strip():
                    hostport = parse_hostport(sent_by)
                    if len(_SENT_BY) < _CACHE_MAX:
                        _SENT_BY[sent_by] = hostport
                if hostport is not None:
                    params = parse_params(ptext)
                    if "branch" in params and not params["branch"]:
                        raise RemoteProtocolError("Via: empty branch parameter")
                    return cls(transport.upper(), hostport[0], hostport[1], params)
        m = _VIA.match(text)
        if m is None:
            raise RemoteProtocolError(f"Via: malformed value {text!r}")
        transport, sent_by, ptext = m.groups()
        host, port = parse_hostport(sent_by.replace(" ", "").replace("\t", ""))
        params = parse_params(ptext or "")
        branch = params.get("branch")
        if "branch" in params and not branch:
            raise RemoteProtocolError("Via: empty branch parameter")
        return cls(transport.upper(), host, port, params)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int]:
        return self.host, self.port or (5061 if self.transport == "TLS" else 5060)

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value filled in by a server (None when absent or still empty)."""
        value = self.params.get("rport")
        return int(value) if value and _digits(value) else None


@dataclass(slots=True)
class NameAddr:
    """`"Display" <uri>;params` (From, To, Contact, Route, Record-Route) or a bare addr-spec.

    `uri` is kept as text (it is copied far more often than it is inspected); `parsed_uri`
    parses it on demand.
    """

    uri: str
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, header: str = "name-addr") -> NameAddr:
        # The same From/To/Contact text comes back in every message of a dialog: parse once.
        known = _NAME_ADDRS.get(text)
        if known is not None:
            return known
        parsed = cls._parse(text, header)
        if len(_NAME_ADDRS) >= _CACHE_MAX:
            _NAME_ADDRS.clear()  # bounded: the dialogs in progress refill it
        _NAME_ADDRS[text] = parsed
        return parsed

    @classmethod
    def _parse(cls, text: str, header: str) -> NameAddr:
        text = text.strip()
        display: str | None = None
        if text.startswith('"'):
            end = _closing_quote(text)
            if end < 0:
                raise RemoteProtocolError(f"{header}: unterminated display name")
            display = text[1:end]
            text = text[end + 1 :].lstrip()
            if not text.startswith("<"):
                raise RemoteProtocolError(f"{header}: quoted display name without <uri>")
        lt = text.find("<")
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise RemoteProtocolError(f"{header}: '<' without '>'")
            if display is None and lt > 0:
                display = text[:lt].strip() or None
            uri = text[lt + 1 : gt].strip()
            rest = text[gt + 1 :].strip()
            if rest and not rest.startswith(";"):
                raise RemoteProtocolError(f"{header}: unexpected text after '>'")
        else:
            if text == "*":
                return cls("*")
            uri, _, rest = text.partition(";")
            uri = uri.rstrip()
            if " " in uri or "\t" in uri:
                raise RemoteProtocolError(f"{header}: whitespace in addr-spec {uri!r}")
        if ":" not in uri:
            raise RemoteProtocolError(f"{header}: URI without scheme: {uri!r}")
        return cls(uri, display, parse_params(rest))

    def __str__(self) -> str:
        if self.display_name is not None:
            name = self.display_name
            if not _TOKEN.match(name.replace(" ", "")):
                name = f'"{name}"'
            return f"{name} <{self.uri}>{format_params(self.params)}"
        return f"<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def parsed_uri(self) -> SipURI:
        return SipURI.parse(self.uri)


def _closing_quote(text: str) -> int:
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i
        i += 1
    return -1


class CSeq(NamedTuple):
    """`CSeq: 4711 INVITE` (a tuple: parsed for every message, so it must be cheap)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        known = _CSEQS.get(text)
        if known is not None:
            return known
        parts = text.split()
        if len(parts) != 2 or not _digits(parts[0]) or not _TOKEN.match(parts[1]):
            raise RemoteProtocolError(f"CSeq: malformed value {text!r}")
        seq = int(parts[0])
        if seq >= 2**31:
            raise RemoteProtocolError("CSeq: sequence number must be below 2**31")
        cseq = cls(seq, parts[1])
        if len(_CSEQS) < _CACHE_MAX:
            _CSEQS[text] = cseq
        return cseq

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


# Parsed values that recur across messages (`1 INVITE`, `2 BYE`, a peer's `host:port`) are
# kept, immutable, for reuse: a dict hit instead of a parse on every message. Bounded, so
# a peer sending ever-new values only fills them once.
_CACHE_MAX = 4096
_CSEQS: dict[str, CSeq] = {}
_SENT_BY: dict[str, tuple[str, int | None]] = {}
_NAME_ADDRS: dict[str, NameAddr] = {}  # shared: treat parsed fields as read-only


@dataclass(slots=True, frozen=True)
class Reason:
    """`Reason: Q.850;cause=16;text="..."` (RFC 3326); also the `SIP;cause=...` form."""

    protocol: str
    cause: int
    text: str | None = None

    @classmethod
    def parse(cls, value: str) -> Reason:
        protocol, _, ptext = value.partition(";")
        protocol = protocol.strip()
        params = parse_params(ptext)
        cause = params.get("cause")
        if not protocol or cause is None or not _digits(cause.strip()):
            raise RemoteProtocolError(f"Reason: needs a protocol and a numeric cause: {value!r}")
        text = params.get("text")
        if text is not None and len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        return cls(protocol, int(cause), text)

    def __str__(self) -> str:
        out = f"{self.protocol};cause={self.cause}"
        if self.text is not None:
            escaped = self.text.replace("\\", "\\\\").replace('"', '\\"')
            out += f';text="{escaped}"'
        return out

    @classmethod
    def q850(cls, cause: int, text: str | None = None) -> Reason:
        if not 0 < cause < 128:
            raise ValueError(f"Q.850 cause must be 1..127, got {cause}")
        return cls("Q.850", cause, text)
