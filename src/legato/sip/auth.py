"""HTTP Digest for SIP (RFC 2617, RFC 7616, RFC 8760): MD5, SHA-256, SHA-512-256, their
`-sess` variants, qop `auth` and `auth-int`.

Client side: `authorization_for(challenge, credentials, ...)` answers a 401/407. Server side
(the registrar): `DigestServer` issues stateless HMAC-signed nonces and verifies answers,
including nonce age (`stale=true` when only the nonce expired) and nonce-count replays.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from legato.sip.errors import RemoteProtocolError

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    "SHA-512-256": lambda b: hashlib.new("sha512_256", b).hexdigest(),
}
ALGORITHMS = tuple([*_HASHES, *(f"{name}-sess" for name in _HASHES)])
_BY_UPPER = {name.upper(): name for name in ALGORITHMS}


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """`Digest realm="a", nonce="b", qop="auth,auth-int"` -> ("Digest", {...}), unquoted."""
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise RemoteProtocolError(f"{scheme}: parameter without '=' in {value[:80]!r}")
        name = rest[i:eq].strip().lower()
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            if i >= n:
                raise RemoteProtocolError(f"{scheme}: unterminated quoted {name}")
            i += 1
            params[name] = "".join(chars)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[name] = rest[i:end].strip()
            i = end
        if not name:
            raise RemoteProtocolError(f"{scheme}: empty parameter name")
    return scheme, params


@dataclass(frozen=True, slots=True)
class Credentials:
    """What we answer a trunk's challenge with. `realm` None: answer any realm."""

    username: str
    password: str
    realm: str | None = None


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> Challenge:
        scheme, params = parse_auth_params(value)
        if scheme.lower() != "digest":
            raise RemoteProtocolError(f"unsupported authentication scheme {scheme!r}")
        if "realm" not in params or "nonce" not in params:
            raise RemoteProtocolError("Digest challenge needs realm and nonce")
        algorithm = _BY_UPPER.get(params.get("algorithm", "MD5").upper())
        if algorithm is None:
            raise RemoteProtocolError(f"unsupported digest algorithm {params['algorithm']!r}")
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        return cls(
            params["realm"],
            params["nonce"],
            algorithm,
            qop,
            params.get("opaque"),
            params.get("stale", "").lower() == "true",
        )


def _response(
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    nonce: str,
    cnonce: str,
    nc: str,
    qop: str | None,
    method: str,
    uri: str,
    body: bytes,
) -> str:
    base = algorithm.removesuffix("-sess")
    h = _HASHES[base]
    ha1 = h(f"{username}:{realm}:{password}".encode())
    if algorithm.endswith("-sess"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += f":{h(body)}"
    ha2 = h(a2.encode())
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{ha2}".encode())


def authorization_for(
    challenge: Challenge,
    credentials: Credentials,
    method: str,
    uri: str,
    *,
    body: bytes = b"",
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The Authorization / Proxy-Authorization value answering `challenge`."""
    qop = "auth" if "auth" in challenge.qop else ("auth-int" if challenge.qop else None)
    cnonce = cnonce or secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    digest = _response(
        challenge.algorithm,
        credentials.username,
        challenge.realm,
        credentials.password,
        challenge.nonce,
        cnonce,
        nc_text,
        qop,
        method,
        uri,
        body,
    )
    parts = [
        f'username="{credentials.username}"',
        f'realm="{challenge.realm}"',
        f'nonce="{challenge.nonce}"',
        f'uri="{uri}"',
        f'response="{digest}"',
        f"algorithm={challenge.algorithm}",
    ]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)


@dataclass(slots=True)
class DigestServer:
    """Challenges and verifies digest answers without per-challenge state: the nonce is
    `<issued-at>.<hmac(secret, issued-at)>`, so any node holding the secret can check it.
    `now` is passed in; nonce-counts seen are kept (bounded by nonce lifetime) to refuse
    replays."""

    realm: str
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    algorithm: str = "SHA-256"
    nonce_lifetime: float = 300.0
    _seen_nc: dict[str, tuple[float, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported digest algorithm {self.algorithm!r}")

    def _sign(self, issued: str) -> str:
        return hmac.new(self.secret, issued.encode(), hashlib.sha256).hexdigest()[:32]

    def challenge(self, now: float, *, stale: bool = False, algorithm: str | None = None) -> str:
        issued = f"{now:.3f}"
        nonce = f"{issued}.{self._sign(issued)}"
        value = (
            f'Digest realm="{self.realm}", nonce="{nonce}", '
            f'algorithm={algorithm or self.algorithm}, qop="auth"'
        )
        return value + (", stale=true" if stale else "")

    def verify(
        self,
        header: str,
        method: str,
        password_for: Callable[[str], str | None],
        now: float,
        body: bytes = b"",
    ) -> tuple[bool, bool, str | None]:
        """-> (ok, stale, username). `stale` means: right password, expired nonce."""
        try:
            scheme, p = parse_auth_params(header)
        except RemoteProtocolError:
            return False, False, None
        required = ("username", "realm", "nonce", "uri", "response")
        if scheme.lower() != "digest" or any(k not in p for k in required):
            return False, False, None
        username, nonce = p["username"], p["nonce"]
        if p["realm"] != self.realm:
            return False, False, username
        issued, _, signature = nonce.rpartition(".")
        try:
            issued_at = float(issued)
        except ValueError:
            return False, False, username
        if not hmac.compare_digest(signature, self._sign(issued)):
            return False, False, username
        password = password_for(username)
        algorithm = _BY_UPPER.get(p.get("algorithm", "MD5").upper())
        if password is None or algorithm is None:
            return False, False, username
        qop = p.get("qop")
        nc = p.get("nc", "")
        expected = _response(
            algorithm,
            username,
            self.realm,
            password,
            nonce,
            p.get("cnonce", ""),
            nc,
            qop,
            method,
            p["uri"],
            body,
        )
        if not hmac.compare_digest(expected, p["response"]):
            return False, False, username
        if now - issued_at > self.nonce_lifetime or issued_at > now + 1:
            return False, True, username
        if qop:
            try:
                count = int(nc, 16)
            except ValueError:
                return False, False, username
            self._forget_old(now)
            _, last = self._seen_nc.get(nonce, (issued_at, 0))
            if count <= last:
                return False, False, username  # a replayed nonce-count
            self._seen_nc[nonce] = (issued_at, count)
        return True, False, username

    def _forget_old(self, now: float) -> None:
        if len(self._seen_nc) < 1024:
            return
        limit = now - self.nonce_lifetime
        for nonce in [n for n, (t, _) in self._seen_nc.items() if t < limit]:
            del self._seen_nc[nonce]
