"""SIP requests and responses (RFC 3261 §7): start line, ordered headers, body bytes.

Headers are an ordered list of `(canonical name, value)`; list headers hold one entry per
element (a line `Via: a, b` becomes two entries) so the transaction and dialog layers can
pop and push Vias and Routes without re-parsing. Typed accessors parse on demand.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from legato.sip.errors import RemoteProtocolError
from legato.sip.fields import CSeq, NameAddr, Reason, Via
from legato.sip.headers import CANONICAL, EXACT, canonical_name
from legato.sip.headers import digits as _digits
from legato.sip.uri import SipURI
from legato.sip_responses import SIP_RESPONSES

SIP_VERSION = "SIP/2.0"

def reason_phrase(status: int) -> str:
    """The IANA registry's default phrase (`legato.sip_responses`, shared with the core)."""
    return SIP_RESPONSES.get(status, "Unknown")


class Message:
    """What requests and responses share: headers, body, typed header accessors.

    Typed fields (cseq, from_, to, top_via) are parsed once and cached; edit headers through
    the methods below, which drop the cache (treat the returned field objects as read-only).
    """

    __slots__ = ("_cache", "body", "headers")

    def __init__(self, headers: Iterable[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        exact = EXACT.get
        self.headers: list[tuple[str, str]] = (
            [(exact(n) or canonical_name(n), v) for n, v in headers] if headers is not None else []
        )
        self.body = body
        self._cache: dict[str, Any] = {}

    # -- generic header access ----------------------------------------------------------
    def get(self, name: str) -> str | None:
        """First value of a header (any spelling, compact forms included), or None."""
        key = EXACT.get(name) or CANONICAL.get(name.lower())
        if key is not None:
            for n, v in self.headers:
                if n == key:
                    return v
            return None
        low = name.lower()
        for n, v in self.headers:
            if n.lower() == low:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        key = EXACT.get(name) or CANONICAL.get(name.lower())
        if key is not None:
            return [v for n, v in self.headers if n == key]
        low = name.lower()
        return [v for n, v in self.headers if n.lower() == low]

    def add(self, name: str, value: str) -> None:
        key = canonical_name(name)
        self._cache.pop(key, None)
        self.headers.append((key, value))

    def prepend(self, name: str, value: str) -> None:
        key = canonical_name(name)
        self._cache.pop(key, None)
        self.headers.insert(0, (key, value))

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first value of `name` in place (e.g. stamp the top Via)."""
        key = canonical_name(name)
        self._cache.pop(key, None)
        for i, (n, _) in enumerate(self.headers):
            if n == key:
                self.headers[i] = (key, value)
                return
        self.headers.append((key, value))

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._cache.pop(key, None)
        low = key.lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != low]

    def set(self, name: str, value: str) -> None:
        """Replace every value of `name` with one value, in the place of the first."""
        key = canonical_name(name)
        self._cache.pop(key, None)
        low = key.lower()
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self.headers:
            if n.lower() == low:
                if not placed:
                    out.append((key, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((key, value))
        self.headers = out

    def _required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise RemoteProtocolError(f"missing {name} header")
        return value

    # -- typed accessors ----------------------------------------------------------------
    @property
    def call_id(self) -> str:
        value = self._cache.get("Call-ID")
        if value is None:
            value = self._cache["Call-ID"] = self._required("Call-ID")
        return value  # type: ignore[no-any-return,unused-ignore]

    @property
    def cseq(self) -> CSeq:
        value = self._cache.get("CSeq")
        if value is None:
            value = self._cache["CSeq"] = CSeq.parse(self._required("CSeq"))
        return value  # type: ignore[no-any-return,unused-ignore]

    @property
    def from_(self) -> NameAddr:
        value = self._cache.get("From")
        if value is None:
            value = self._cache["From"] = NameAddr.parse(self._required("From"), "From")
        return value  # type: ignore[no-any-return,unused-ignore]

    @property
    def to(self) -> NameAddr:
        value = self._cache.get("To")
        if value is None:
            value = self._cache["To"] = NameAddr.parse(self._required("To"), "To")
        return value  # type: ignore[no-any-return,unused-ignore]

    @property
    def top_via(self) -> Via:
        value = self._cache.get("Via")
        if value is None:
            value = self._cache["Via"] = Via.parse(self._required("Via"))
        return value  # type: ignore[no-any-return,unused-ignore]

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.get_all("Via")]

    @property
    def contacts(self) -> list[NameAddr]:
        return [NameAddr.parse(v, "Contact") for v in self.get_all("Contact")]

    @property
    def record_route(self) -> list[NameAddr]:
        return [NameAddr.parse(v, "Record-Route") for v in self.get_all("Record-Route")]

    @property
    def route(self) -> list[NameAddr]:
        return [NameAddr.parse(v, "Route") for v in self.get_all("Route")]

    @property
    def reasons(self) -> list[Reason]:
        return [Reason.parse(v) for v in self.get_all("Reason")]

    @property
    def q850_cause(self) -> int | None:
        """The cause of the first `Reason: Q.850` value, if any (RFC 3326)."""
        for value in self.get_all("Reason"):
            if value.lstrip()[:5].upper() == "Q.850":
                return Reason.parse(value).cause
        return None

    @property
    def content_type(self) -> str | None:
        return self.get("Content-Type")

    @property
    def max_forwards(self) -> int | None:
        value = self.get("Max-Forwards")
        if value is None:
            return None
        value = value.strip()
        if not _digits(value) or int(value) > 255:
            raise RemoteProtocolError(f"Max-Forwards: must be 0..255, got {value!r}")
        return int(value)

    # -- wire form ----------------------------------------------------------------------
    def _start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialise; Content-Length is always written and always matches the body."""
        lines = [self._start_line()]
        lines += [f"{n}: {v}" for n, v in self.headers if n != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}\r\n\r\n")
        return "\r\n".join(lines).encode() + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()


class Request(Message):
    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"

    @property
    def parsed_uri(self) -> SipURI:
        return SipURI.parse(self.uri)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason if reason is not None else reason_phrase(status)

    def _start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


# Headers a response copies from its request (RFC 3261 §8.2.6.2).
_COPIED = ("Via", "From", "To", "Call-ID", "CSeq")


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to `request`: Via/From/To/Call-ID/CSeq copied, a To tag added if given."""
    copied: list[tuple[str, str]] = []
    for n, v in request.headers:
        if n in _COPIED:
            if n == "To" and to_tag is not None and ";tag=" not in v.replace(" ", "").lower():
                v = f"{v};tag={to_tag}"
            copied.append((n, v))
    if status < 300 and request.method in ("INVITE", "SUBSCRIBE"):
        copied += [("Record-Route", v) for v in request.get_all("Record-Route")]
    response = Response(status, reason, None, body)
    response.headers = copied  # names are canonical already: skip re-canonicalising
    for n, v in headers:
        response.add(n, v)
    return response
