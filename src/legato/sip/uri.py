"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), parsed and serialised.

Parsing is done only when someone asks for a URI (the request-URI and header values are kept
as text on the hot path), so the cost is paid by the code that needs the parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from legato.sip.errors import RemoteProtocolError

_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9.])?\Z")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]\Z")
_TEL_NUMBER = re.compile(r"\+?[0-9A-Fa-f*#().\-]+\Z")
_USER_CHARS = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+\Z")


def parse_params(text: str) -> dict[str, str | None]:
    """Parse `;name=value;flag` parameters (leading `;` optional); quoted values kept quoted."""
    params: dict[str, str | None] = {}
    if not text:
        return params
    pieces = _split_semicolons(text) if '"' in text else text.split(";")
    for piece in pieces:
        name, eq, value = piece.partition("=")
        name = name.strip().lower()
        if not name:
            if eq:
                raise RemoteProtocolError(f"empty parameter name in {text!r}")
            continue  # an empty piece (`;;`, a leading `;`)
        params[name] = value.strip() if eq else None
    return params


def _split_semicolons(text: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    in_quotes = False
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and in_quotes:
            escaped = True
        elif ch == '"':
            in_quotes = not in_quotes
        elif ch == ";" and not in_quotes:
            pieces.append(text[start:i])
            start = i + 1
    if in_quotes:
        raise RemoteProtocolError(f"unterminated quoted string in {text!r}")
    pieces.append(text[start:])
    return pieces


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


@dataclass(slots=True)
class SipURI:
    """A `sip:`, `sips:` or `tel:` URI. For `tel:` the number is in `user` and `host` is empty."""

    scheme: str = "sip"
    user: str | None = None
    host: str = ""
    port: int | None = None
    password: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipURI:
        scheme, colon, rest = text.strip().partition(":")
        scheme = scheme.lower()
        if not colon or not rest:
            raise RemoteProtocolError(f"URI without scheme: {text!r}", 416)
        if scheme == "tel":
            number, _, ptext = rest.partition(";")
            if not _TEL_NUMBER.match(number):
                raise RemoteProtocolError(f"bad tel number in {text!r}", 416)
            return cls(scheme="tel", user=number, params=parse_params(ptext))
        if scheme not in ("sip", "sips"):
            raise RemoteProtocolError(f"unsupported URI scheme {scheme!r}", 416)
        rest, _, htext = rest.partition("?")
        headers: dict[str, str] = {}
        if htext:
            for pair in htext.split("&"):
                hname, _, hvalue = pair.partition("=")
                if not hname:
                    raise RemoteProtocolError(f"empty URI header name in {text!r}")
                headers[hname] = hvalue
        user = password = None
        at = rest.rfind("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user, _, pw = userinfo.partition(":")
            password = pw or None
            if not user or not _USER_CHARS.match(user):
                raise RemoteProtocolError(f"bad user part in URI {text!r}")
        hostport, _, ptext = rest.partition(";")
        host, port = _parse_hostport(hostport, text)
        return cls(scheme, user, host, port, password, parse_params(ptext), headers)

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out += [":", str(self.port)]
        out.append(format_params(self.params))
        if self.headers:
            out += ["?", "&".join(f"{k}={v}" for k, v in self.headers.items())]
        return "".join(out)

    @property
    def transport(self) -> str:
        """The `transport` parameter, upper-cased (compare case-insensitively: RFC 3261 §19.1.4)."""
        value = self.params.get("transport")
        return value.upper() if value else ("TLS" if self.scheme == "sips" else "UDP")

    @property
    def loose_route(self) -> bool:
        return "lr" in self.params


def _parse_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    port: int | None = None
    if hostport.startswith("["):
        end = hostport.find("]")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if end < 0 or not _IPV6.match(host):
            raise RemoteProtocolError(f"bad IPv6 reference in {text!r}")
        if rest:
            if not rest.startswith(":"):
                raise RemoteProtocolError(f"bad host:port in {text!r}")
            port = _parse_port(rest[1:], text)
        return host, port
    host, colon, port_text = hostport.partition(":")
    if colon:
        port = _parse_port(port_text, text)
    if not host or not _HOSTNAME.match(host):
        raise RemoteProtocolError(f"bad host in {text!r}")
    return host.lower(), port


def _parse_port(text: str, whole: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < (port := int(text)) < 65536:
        raise RemoteProtocolError(f"bad port in {whole!r}")
    return port


def parse_hostport(text: str) -> tuple[str, int | None]:
    """Parse `host[:port]` (a Via sent-by, a configured address)."""
    return _parse_hostport(text.strip(), text)
