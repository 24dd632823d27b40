"""A pure registrar (RFC 3261 §10.3) with digest authentication, so agents can use SIP
phones: bindings per address-of-record, expiry against a `now` passed in, contact lookup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from legato.sip.auth import DigestServer
from legato.sip.errors import RemoteProtocolError
from legato.sip.fields import NameAddr
from legato.sip.headers import digits as _digits
from legato.sip.message import Request, Response, make_response
from legato.sip.uri import SipURI


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an address-of-record."""

    uri: str
    expires_at: float
    call_id: str
    cseq: int
    q: float = 1.0


def address_of_record(uri: str) -> str:
    """Canonical AOR `sip:user@host` (scheme and host lower-cased, no port or params)."""
    parsed = SipURI.parse(uri)
    scheme = "sip" if parsed.scheme == "sips" else parsed.scheme
    if parsed.scheme == "tel":
        return f"tel:{parsed.user}"
    user = f"{parsed.user}@" if parsed.user else ""
    return f"{scheme}:{user}{parsed.host}"


class Registrar:
    """Answers REGISTER requests and keeps the bindings in memory.

    `password_for(username)` gives a user's password (None: unknown user). With
    `auth=None` every REGISTER is accepted (for tests and trusted networks only)."""

    def __init__(
        self,
        password_for: Callable[[str], str | None],
        *,
        auth: DigestServer | None,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        self.password_for = password_for
        self.auth = auth
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self._bindings: dict[str, dict[str, Binding]] = {}

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """Live bindings of an AOR, best q first."""
        bindings = self._live(address_of_record(aor), now)
        return sorted(bindings.values(), key=lambda b: -b.q)

    def _live(self, aor: str, now: float) -> dict[str, Binding]:
        bindings = self._bindings.get(aor, {})
        expired = [uri for uri, b in bindings.items() if b.expires_at <= now]
        for uri in expired:
            del bindings[uri]
        if not bindings:
            self._bindings.pop(aor, None)
        return bindings

    def handle(self, request: Request, now: float) -> Response:
        try:
            return self._handle(request, now)
        except RemoteProtocolError as exc:
            return make_response(request, exc.status_code, exc.reason[:120])

    def _handle(self, request: Request, now: float) -> Response:
        if request.method != "REGISTER":
            return make_response(request, 405, headers=[("Allow", "REGISTER")])
        to = request.to
        aor = address_of_record(to.uri)
        if self.auth is not None:
            refused = self._authenticate(request, aor, now)
            if refused is not None:
                return refused
        contacts = request.get_all("Contact")
        header_expires = request.get("Expires")
        call_id, cseq = request.call_id, request.cseq.seq
        bindings = self._live(aor, now)
        if len(contacts) == 1 and contacts[0].strip() == "*":
            if header_expires is None or header_expires.strip() != "0":
                raise RemoteProtocolError("Contact: '*' is only allowed with Expires: 0")
            bindings.clear()
            self._bindings.pop(aor, None)
            return self._ok(request, aor, now)
        updates: list[tuple[str, int, float]] = []
        for value in contacts:
            contact = NameAddr.parse(value, "Contact")
            if contact.uri == "*":
                raise RemoteProtocolError("Contact: '*' must be the only contact")
            expires = self._expires(contact, header_expires)
            if 0 < expires < self.min_expires:
                return make_response(request, 423, headers=[("Min-Expires", str(self.min_expires))])
            q = _q(contact)
            updates.append((str(SipURI.parse(contact.uri)), min(expires, self.max_expires), q))
        for uri, _, _ in updates:
            old = bindings.get(uri)
            if old is not None and old.call_id == call_id and old.cseq >= cseq:
                raise RemoteProtocolError("CSeq: not higher than the binding's last REGISTER", 500)
        for uri, expires, q in updates:
            if expires == 0:
                bindings.pop(uri, None)
            else:
                bindings[uri] = Binding(uri, now + expires, call_id, cseq, q)
        if bindings:
            self._bindings[aor] = bindings
        else:
            self._bindings.pop(aor, None)
        return self._ok(request, aor, now)

    def _authenticate(self, request: Request, aor: str, now: float) -> Response | None:
        assert self.auth is not None
        header = request.get("Authorization")
        if header is None:
            return self._challenge(request, now, stale=False)
        ok, stale, username = self.auth.verify(
            header, request.method, self.password_for, now, request.body
        )
        if stale:
            return self._challenge(request, now, stale=True)
        if not ok or username is None:
            return self._challenge(request, now, stale=False)
        if aor.split(":", 1)[1].split("@", 1)[0] != username:
            return make_response(request, 403, f"User {username} may not register {aor}")
        return None

    def _challenge(self, request: Request, now: float, *, stale: bool) -> Response:
        assert self.auth is not None
        return make_response(
            request, 401, headers=[("WWW-Authenticate", self.auth.challenge(now, stale=stale))]
        )

    def _expires(self, contact: NameAddr, header: str | None) -> int:
        text = contact.params.get("expires") or header
        if text is None:
            return self.default_expires
        text = text.strip()
        if not _digits(text):
            raise RemoteProtocolError(f"Expires: not a number of seconds: {text!r}")
        return int(text)

    def _ok(self, request: Request, aor: str, now: float) -> Response:
        response = make_response(request, 200, to_tag=None)
        for binding in self.lookup(aor, now):
            left = max(0, int(binding.expires_at - now))
            response.add("Contact", f"<{binding.uri}>;expires={left}")
        return response


def _q(contact: NameAddr) -> float:
    text = contact.params.get("q")
    if text is None:
        return 1.0
    try:
        q = float(text)
    except ValueError:
        raise RemoteProtocolError(f"Contact: q must be 0..1, got {text!r}") from None
    if not 0 <= q <= 1:
        raise RemoteProtocolError(f"Contact: q must be 0..1, got {text!r}")
    return q
